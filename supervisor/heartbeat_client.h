// The SendHeartbeat stream to the master, run on its own thread so that a slow
// or absent master never stalls the supervisor's event loop.
//
// Threading: the public methods are called on the loop thread. The stream
// thread never touches the Store: when it needs a full report it asks the
// loop (through `async_`) and the loop queues one. Master replies travel back
// the same way. Invariant: after every (re)connection the first message sent
// is a full report, so deltas queued before it are never the master's only
// view.
#pragma once
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proto/master.grpc.pb.h"
#include "supervisor/volume_report.h"

namespace kelp {

struct MasterEvents {
  std::function<master_pb::Heartbeat()> full_report;      // loop thread
  std::function<void(uint64_t)> volume_size_limit;        // loop thread
  std::function<void(bool, const std::string&)> registered;  // loop thread; master's HTTP address
  // The master still reports these directories as another server's after
  // the retries: the server must shut down (loop thread).
  std::function<void(const std::string&)> duplicate_directories;
};

// A data directory as the master knows it: its path and its vol_dir.uuid.
struct DirectoryId {
  std::string dir;
  std::string uuid;
};

class HeartbeatClient {
 public:
  HeartbeatClient(uv_loop_t* loop, std::vector<std::string> masters, int pulse_seconds, MasterEvents events,
                  std::vector<DirectoryId> directories = {});
  ~HeartbeatClient();

  void Start();
  // Closes the stream (the master drops this server at once) without waiting:
  // the thread ends on its own, within one dial slice. Safe on the loop.
  void RequestStop();
  // RequestStop, then joins the thread and closes the loop handle. Call it
  // after the loop has stopped: the join may wait for a dial slice.
  void Stop();
  // Queues a delta; dropped while disconnected (the next full report covers it).
  void SendDelta(master_pb::Heartbeat delta);
  // Sends a report now instead of at the next pulse (the changes only, once
  // the master compares digests).
  void SendFullReportSoon();

 private:
  void Run();
  // One connection's lifetime; returns the leader to try next, if the master named one.
  std::string Session(const std::string& master);
  void PostToLoop(std::function<void()> fn);
  // On the loop: builds a report (shaped by `report_`) and queues it, `ahead`
  // of any deltas (a session's first report, a pulse) or after them.
  void QueueFullReport(bool ahead);
  static void OnAsync(uv_async_t* h);

  uv_loop_t* loop_;
  std::vector<std::string> masters_;
  int pulse_seconds_;
  MasterEvents events_;
  const std::vector<DirectoryId> directories_;
  // Sessions in a row the master ended by naming duplicate directories
  // (stream thread only); Go retries 3 times, 2, 4 and 8 s apart, then exits.
  int duplicate_retries_ = 0;
  bool duplicate_session_ = false;  // under mu_: the last session ended that way
  uv_async_t async_{};
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<master_pb::Heartbeat> outbox_;
  std::vector<std::function<void()>> to_loop_;
  bool connected_ = false;
  bool stop_ = false;
  bool want_full_ = false;
  bool session_over_ = false;
  grpc::ClientContext* context_ = nullptr;  // the live session's, for Stop()
  VolumeReportState report_;  // loop thread only
};

}  // namespace kelp
