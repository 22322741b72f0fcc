#include "storage/disk_writer.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/log.h"

namespace kelp {

DiskWriter::DiskWriter(uv_loop_t* loop, std::string name) : loop_(loop), name_(std::move(name)) {
  uv_async_init(loop_, &async_, [](uv_async_t* a) { static_cast<DiskWriter*>(a->data)->DrainCompletions(); });
  async_.data = this;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = event_fd_;
  // Without these the writer cannot sleep or be woken: nothing can run safely.
  if (epoll_fd_ < 0 || event_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev) != 0) {
    KLOG_ERROR("disk writer %s: epoll/eventfd: %s", name_.c_str(), std::strerror(errno));
    std::abort();
  }
  thread_ = std::thread([this] {
    const std::string title = ("kelp-w:" + name_).substr(0, 15);
    pthread_setname_np(pthread_self(), title.c_str());
    Run();
  });
}

DiskWriter::~DiskWriter() {
  Stop();
  // libuv touches a closing handle until its close callback has run: wait for
  // it (closing handles make the loop iteration non-blocking).
  while (!closed_) uv_run(loop_, UV_RUN_ONCE);
  close(event_fd_);
  close(epoll_fd_);
}

void DiskWriter::Signal() {
  if (!sleeping_ || signalled_) return;
  signalled_ = true;
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the thread wakes anyway.
  [[maybe_unused]] ssize_t n = write(event_fd_, &one, sizeof one);
}

void DiskWriter::Submit(std::shared_ptr<Volume> volume, Mutation* m, Done done, Answer answer, bool wake) {
  std::lock_guard<std::mutex> l(mu_);
  queue_.push_back(Item{std::move(volume), m, nullptr, std::move(done), std::move(answer)});
  if (wake) Signal();
}

// A wake of a thread that is not sleeping costs no system call.
void DiskWriter::Wake() {
  std::lock_guard<std::mutex> l(mu_);
  if (!queue_.empty()) Signal();
}

void DiskWriter::Post(std::function<void()> work, Done done) {
  std::lock_guard<std::mutex> l(mu_);
  queue_.push_back(Item{nullptr, nullptr, std::move(work), std::move(done)});
  Signal();
}

bool DiskWriter::AddLane(int fd, LaneReader read) {
  // Watched at once (epoll_ctl may run beside epoll_wait); the reader joins
  // lanes_ in queue order, which is before the pass that reads the lane's
  // first event: that pass runs its queued work first.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return false;
  auto reader = std::make_shared<LaneReader>(std::move(read));
  Post([this, fd, reader] { lanes_[fd] = std::move(*reader); });
  return true;
}

void DiskWriter::ToLoop(Done done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    completed_.push_back(std::move(done));
  }
  uv_async_send(&async_);
}

void DiskWriter::Serve(std::shared_ptr<Volume> v) {
  std::lock_guard<std::mutex> l(served_mu_);
  const VolumeId id = v->id();
  served_[id] = std::move(v);
}

void DiskWriter::Unserve(VolumeId id) {
  std::shared_ptr<Volume> last;  // released outside the lock
  std::lock_guard<std::mutex> l(served_mu_);
  auto it = served_.find(id);
  if (it == served_.end()) return;
  last = std::move(it->second);
  served_.erase(it);
}

std::shared_ptr<Volume> DiskWriter::Served(VolumeId id) const {
  std::lock_guard<std::mutex> l(served_mu_);
  auto it = served_.find(id);
  return it == served_.end() ? nullptr : it->second;
}

void DiskWriter::Batch::Add(std::shared_ptr<Volume> volume, Mutation* m, Done done, Answer answer) {
  writer_->lane_items_.push_back(Item{std::move(volume), m, nullptr, std::move(done), std::move(answer)});
}

int DiskWriter::WaitForWork() {
  // Blocks only when nothing is queued; a submission after this check sees
  // sleeping_ and signals the eventfd, so the wait returns at once.
  bool block;
  {
    std::lock_guard<std::mutex> l(mu_);
    sleeping_ = queue_.empty() && !stopping_;
    block = sleeping_;
  }
  int n;
  do n = epoll_wait(epoll_fd_, events_, kMaxEvents, block ? -1 : 0);
  while (n < 0 && errno == EINTR);
  bool drain;
  {
    std::lock_guard<std::mutex> l(mu_);
    sleeping_ = false;
    drain = signalled_;
    signalled_ = false;
  }
  if (drain) {
    uint64_t count;
    [[maybe_unused]] ssize_t r = read(event_fd_, &count, sizeof count);
  }
  return n < 0 ? 0 : n;
}

void DiskWriter::Run() {
  for (;;) {
    const int ready = WaitForWork();
    std::deque<Item> taken;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_ && queue_.empty()) return;  // stopping, and nothing left
      taken.swap(queue_);
    }
    RunQueued(taken);
    ReadLanes(ready);
  }
}

void DiskWriter::RunQueued(std::deque<Item>& taken) {
  std::vector<Item> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    ApplyBatch(batch);
    Complete(batch);
    batch.clear();
  };
  for (Item& item : taken) {
    if (item.volume) {
      batch.push_back(std::move(item));
      continue;
    }
    flush();
    if (item.work) item.work();
    item.work = nullptr;  // released here, on this thread
    std::vector<Item> one;
    one.push_back(std::move(item));
    Complete(one);
  }
  flush();
}

void DiskWriter::ReadLanes(int ready) {
  Batch batch(this);
  for (int i = 0; i < ready; ++i) {
    const int fd = events_[i].data.fd;
    if (fd == event_fd_) continue;
    auto it = lanes_.find(fd);
    if (it == lanes_.end()) continue;
    if (!it->second(batch)) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      lanes_.erase(it);  // the reader closes its socket
    }
  }
  if (lane_items_.empty()) return;
  std::vector<Item> items;
  items.swap(lane_items_);
  ApplyBatch(items);
  Complete(items);
}

void DiskWriter::ApplyBatch(std::vector<Item>& batch) {
  // Per volume, in arrival order.
  std::map<Volume*, std::vector<Mutation*>> by_volume;
  for (Item& item : batch) {
    // A volume replaced while this was queued (a vacuum commit) is written
    // through its successor; one that left the store stays retired and fails.
    if (item.volume->retired())
      if (std::shared_ptr<Volume> now = Served(item.volume->id()); now && now != item.volume) item.volume = std::move(now);
    by_volume[item.volume.get()].push_back(item.mutation);
  }
  for (auto& [v, ms] : by_volume) v->Apply(ms.data(), ms.size());
}

void DiskWriter::Complete(std::vector<Item>& items) {
  // Answers first, outside the lock: they may make a system call each.
  std::vector<Done> for_loop;
  for (Item& item : items) {
    const bool loop_needed = !item.answer || item.answer();
    item.answer = nullptr;
    item.volume.reset();  // the writer thread drops its reference first
    if (loop_needed) for_loop.push_back(std::move(item.done));
    item.done = nullptr;  // an answered one is released here, on this thread
  }
  if (for_loop.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (Done& d : for_loop) completed_.push_back(std::move(d));
  }
  uv_async_send(&async_);
}

void DiskWriter::DrainCompletions() {
  std::vector<Done> ready;
  {
    std::lock_guard<std::mutex> l(mu_);
    ready.swap(completed_);
  }
  for (Done& d : ready)
    if (d) d();
}

void DiskWriter::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  // Wakes a sleeping thread; one between waits sees stopping_ and does not block.
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(event_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  lanes_.clear();  // the readers close their sockets
  {
    std::lock_guard<std::mutex> l(served_mu_);
    served_.clear();
  }
  DrainCompletions();
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) { static_cast<DiskWriter*>(h->data)->closed_ = true; });
}

}  // namespace kelp
