// One writer thread per disk location: every append, tombstone and sync of the
// volumes in that location runs here, off the event loop, so a slow or stalled
// disk delays only the writes that go to it.
//
// Ordering: work runs in submission order. Consecutive mutations are applied
// as one batch per volume (one .idx write, one sync for all fsync=true writes
// in it); a posted task is a barrier between batches. Completions run on the
// event loop, in order, after the work they follow.
#pragma once
#include <uv.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/volume.h"

namespace kelp {

class DiskWriter {
 public:
  using Done = std::function<void()>;

  DiskWriter(uv_loop_t* loop, std::string name);
  ~DiskWriter();
  DiskWriter(const DiskWriter&) = delete;
  DiskWriter& operator=(const DiskWriter&) = delete;

  // Applies `m` to `volume`. Then `answer`, if given, runs on the writer
  // thread (it may answer the client from there) and says whether `done` is
  // still needed; `done` then runs on the loop with m->status set, or is
  // destroyed on the writer thread. `m` must stay valid until then.
  // With wake false the writer is not woken: call Wake() after a burst of
  // submissions, so that they make one batch and cost one wake-up.
  using Answer = std::function<bool()>;
  void Submit(std::shared_ptr<Volume> volume, Mutation* m, Done done, Answer answer = nullptr, bool wake = true);
  void Wake();
  // Runs `work` on the writer thread in order with the mutations, then `done`
  // on the loop. `work` is destroyed on the writer thread, so it may hold the
  // last reference to a volume.
  void Post(std::function<void()> work, Done done = nullptr);
  // Finishes what is queued, stops the thread and closes the loop handle.
  // Call on the loop thread; completions still pending run before it returns.
  void Stop();

  const std::string& name() const { return name_; }

 private:
  struct Item {
    std::shared_ptr<Volume> volume;  // null for a task
    Mutation* mutation = nullptr;
    std::function<void()> work;
    Done done;
    Answer answer;
  };
  void Run();
  void ApplyBatch(std::vector<Item>& batch);
  void Complete(std::vector<Item>& items);
  void DrainCompletions();

  uv_loop_t* loop_;
  const std::string name_;
  uv_async_t async_{};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::vector<Done> completed_;
  bool stopping_ = false;
  bool stopped_ = false;
  bool closed_ = false;  // the async handle's close callback ran
  std::thread thread_;
};

}  // namespace kelp
