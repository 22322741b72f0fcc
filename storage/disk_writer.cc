#include "storage/disk_writer.h"

#include <pthread.h>

#include <map>

namespace kelp {

DiskWriter::DiskWriter(uv_loop_t* loop, std::string name) : loop_(loop), name_(std::move(name)) {
  uv_async_init(loop_, &async_, [](uv_async_t* a) { static_cast<DiskWriter*>(a->data)->DrainCompletions(); });
  async_.data = this;
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
}

void DiskWriter::Submit(std::shared_ptr<Volume> volume, Mutation* m, Done done, Answer answer, bool wake) {
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(Item{std::move(volume), m, nullptr, std::move(done), std::move(answer)});
  }
  if (wake) cv_.notify_one();
}

// A notify with no thread waiting costs no system call.
void DiskWriter::Wake() { cv_.notify_one(); }

void DiskWriter::Post(std::function<void()> work, Done done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(Item{nullptr, nullptr, std::move(work), std::move(done)});
  }
  cv_.notify_one();
}

void DiskWriter::Run() {
  for (;;) {
    std::deque<Item> taken;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      taken.swap(queue_);
    }
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
}

void DiskWriter::ApplyBatch(std::vector<Item>& batch) {
  // Per volume, in arrival order.
  std::map<Volume*, std::vector<Mutation*>> by_volume;
  for (Item& item : batch) by_volume[item.volume.get()].push_back(item.mutation);
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
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  DrainCompletions();
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) { static_cast<DiskWriter*>(h->data)->closed_ = true; });
}

}  // namespace kelp
