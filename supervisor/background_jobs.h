// Long maintenance work (a vacuum's copy) on threads of its own, so that
// neither the event loop nor a location's disk writer waits for it. What a
// job posts runs on the loop, in the order posted, and its `done` after all
// of them.
#pragma once
#include <uv.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace kelp {

class BackgroundJobs {
 public:
  // Without a loop (tests), a job runs inline: Start returns when it is done.
  explicit BackgroundJobs(uv_loop_t* loop);
  ~BackgroundJobs();
  BackgroundJobs(const BackgroundJobs&) = delete;
  BackgroundJobs& operator=(const BackgroundJobs&) = delete;

  using Post = std::function<void(std::function<void()>)>;
  void Start(std::function<void(const Post& post)> work, std::function<void()> done);
  // Set by Stop: long work checks it and ends early.
  bool stopping() const { return stopping_; }
  // Asks the jobs to end, waits for them and runs what they posted. On the loop.
  void Stop();

 private:
  void PostToLoop(std::function<void()> fn);
  void RunPosted();

  uv_loop_t* loop_;
  uv_async_t async_{};
  std::mutex mu_;
  std::deque<std::function<void()>> posted_;
  std::map<uint64_t, std::thread> threads_;  // loop thread only
  uint64_t next_id_ = 1;
  std::atomic<bool> stopping_{false};
  bool closed_ = false;
};

}  // namespace kelp
