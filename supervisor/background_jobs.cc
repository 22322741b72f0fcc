#include "supervisor/background_jobs.h"

namespace kelp {

BackgroundJobs::BackgroundJobs(uv_loop_t* loop) : loop_(loop) {
  if (!loop_) return;
  uv_async_init(loop_, &async_, [](uv_async_t* h) { static_cast<BackgroundJobs*>(h->data)->RunPosted(); });
  async_.data = this;
}

BackgroundJobs::~BackgroundJobs() { Stop(); }

void BackgroundJobs::Start(std::function<void(const Post& post)> work, std::function<void()> done) {
  if (!loop_) {
    std::deque<std::function<void()>> inline_posts;
    work([&](std::function<void()> fn) { inline_posts.push_back(std::move(fn)); });
    for (auto& fn : inline_posts) fn();
    if (done) done();
    return;
  }
  const uint64_t id = next_id_++;
  threads_[id] = std::thread([this, id, work = std::move(work), done = std::move(done)]() mutable {
    work([this](std::function<void()> fn) { PostToLoop(std::move(fn)); });
    // Last: the loop joins this thread (which has nothing left to do) and reports.
    PostToLoop([this, id, done = std::move(done)] {
      auto it = threads_.find(id);
      if (it != threads_.end()) {
        if (it->second.joinable()) it->second.join();
        threads_.erase(it);
      }
      if (done) done();
    });
  });
}

void BackgroundJobs::PostToLoop(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(mu_);
    posted_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void BackgroundJobs::RunPosted() {
  std::deque<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> l(mu_);
    ready.swap(posted_);
  }
  for (auto& fn : ready) fn();
}

void BackgroundJobs::Stop() {
  if (!loop_ || closed_) return;
  stopping_ = true;
  // Each job's last post joins its thread, so run posts until none is left.
  while (!threads_.empty()) {
    for (auto& [id, t] : threads_)
      if (t.joinable()) t.join();
    RunPosted();
    threads_.clear();
  }
  RunPosted();
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

}  // namespace kelp
