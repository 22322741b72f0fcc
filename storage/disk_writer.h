// One writer thread per disk location: every append, tombstone and sync of the
// volumes in that location runs here, off the event loop, so a slow or stalled
// disk delays only the writes that go to it.
//
// Ordering: work runs in submission order. Consecutive mutations are applied
// as one batch per volume (one .idx write, one sync for all fsync=true writes
// in it); a posted task is a barrier between batches. Completions run on the
// event loop, in order, after the work they follow.
//
// Lanes: sockets the writer thread reads itself, so that a mutation from a
// worker reaches the thread that applies it without passing the event loop.
// Each pass of the thread first runs what was submitted, then reads its ready
// lanes; what they decoded is applied as one batch. The writer sleeps in
// epoll_wait on its lanes and an eventfd that Submit, Post and Wake signal.
#pragma once
#include <sys/epoll.h>
#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
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
  // What a lane reader hands to the pass that called it.
  class Batch {
   public:
    // As Submit, from the writer thread.
    void Add(std::shared_ptr<Volume> volume, Mutation* m, Done done, Answer answer);

   private:
    friend class DiskWriter;
    explicit Batch(DiskWriter* w) : writer_(w) {}
    DiskWriter* writer_;
  };
  // Called on the writer thread when the lane's socket is readable: reads what
  // is there and adds the mutations to `batch`. Returns false when the lane is
  // finished (its peer closed it, or broke the protocol); the lane is then
  // unwatched and the reader destroyed, on the writer thread. The reader owns
  // the socket; the writer only watches `fd`. False when `fd` cannot be
  // watched: the reader is then destroyed at once.
  using LaneReader = std::function<bool(Batch& batch)>;
  bool AddLane(int fd, LaneReader read);
  // From the writer thread: runs `done` on the loop, in order with completions.
  void ToLoop(Done done);

  // The volumes this writer serves, for lane readers (any thread). A volume
  // that left the store stays safe to find: it is retired, and mutations of
  // it fail as "not found".
  void Serve(std::shared_ptr<Volume> v);
  void Unserve(VolumeId id);
  std::shared_ptr<Volume> Served(VolumeId id) const;

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
  // Waits for submissions or ready lanes; returns the number of ready events.
  int WaitForWork();
  void RunQueued(std::deque<Item>& taken);
  void ReadLanes(int ready);
  void ApplyBatch(std::vector<Item>& batch);
  void Complete(std::vector<Item>& items);
  void DrainCompletions();
  void Signal();  // called with mu_ held

  uv_loop_t* loop_;
  const std::string name_;
  uv_async_t async_{};
  int epoll_fd_ = -1;
  int event_fd_ = -1;  // in epoll_fd_; signalled while the thread sleeps
  std::mutex mu_;
  std::deque<Item> queue_;
  std::vector<Done> completed_;
  bool sleeping_ = false;  // the thread is in, or about to enter, a blocking wait
  bool signalled_ = false;
  // Writer-thread state: the lanes, and the events of the last wait.
  std::map<int, LaneReader> lanes_;
  std::vector<Item> lane_items_;
  static constexpr int kMaxEvents = 32;
  epoll_event events_[kMaxEvents];
  mutable std::mutex served_mu_;
  std::unordered_map<VolumeId, std::shared_ptr<Volume>> served_;
  bool stopping_ = false;
  bool stopped_ = false;
  bool closed_ = false;  // the async handle's close callback ran
  std::thread thread_;
};

}  // namespace kelp
