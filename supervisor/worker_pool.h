// Spawns, feeds and replaces the worker processes.
//
// Each worker gets: fd 3 = its end of a SOCK_SEQPACKET pair; a Hello with the
// server's flags and the listening sockets; one VolumeAttach per volume with a
// read-only .dat fd and the volume's index segment; then AttachDone.
// An HTTP worker also gets a write lane per disk location (ipc/messages.h):
// its WriteRequest / DeleteRequest go down the lane of the volume's location,
// where that location's disk writer thread checks, applies and answers them
// without the event loop. Those that come on the main channel are checked
// here and handed to the same writer. A worker is untrusted: any message that breaks the
// protocol (wrong length, unknown type, a record that is not one valid
// needle, an fd of the wrong kind) drops it, and nothing it sent is applied.
// A worker that dies is respawned with back-off; its in-flight requests fail
// on its own connections only.
#pragma once
#include <uv.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ipc/channel.h"
#include "ipc/shared_gauges.h"
#include "supervisor/mutation_intake.h"
#include "supervisor/store.h"

namespace kelp {

struct WorkerPoolOptions {
  // Workers are exec'd from these descriptors, opened once at start, so they
  // always run the image the supervisor started with, whatever an upgrade
  // later puts at the same path. -1: no such worker.
  int http_worker_exe = -1;
  int grpc_worker_exe = -1;
  std::vector<std::string> server_args;  // forwarded to workers verbatim
  std::vector<int> listen_fds;
  int http_workers = 1;
  int gauges_fd = -1;                  // shared by the HTTP workers (ipc/shared_gauges.h)
  ipc::SharedGauges* gauges = nullptr;  // the supervisor's mapping of it
};

// A decoded gRPC call from the gRPC worker, and the way to answer it.
// `fd` (or -1) goes to the caller first, in a kAdminFd message; it is closed here.
using AdminReplyFn = std::function<void(int grpc_code, const std::string& message, const std::string& body, int fd)>;
// One streamed response of a call that is still running (before its reply).
using AdminProgressFn = std::function<void(const std::string& body)>;
// `caller` is the serial of the worker that sent the request.
using AdminHandler =
    std::function<void(uint64_t caller, const std::string& method, const std::string& body, AdminReplyFn reply, AdminProgressFn progress)>;

// What every worker is told about the server as a whole.
struct SharedServerState {
  bool registered = false;
  bool maintenance = false;
  uint32_t state_version = 0;
  uint64_t volume_size_limit = 0;
  std::string master;
};

class WorkerPool {
 public:
  WorkerPool(uv_loop_t* loop, Store* store, WorkerPoolOptions options);
  ~WorkerPool();

  void Start();
  // Zero-downtime replacement: new workers first, then the old ones drain.
  void Reload();
  // Asks every worker to drain; `done` runs when all have exited.
  void Shutdown(void (*done)(void*), void* arg);

  size_t live_workers() const;
  void set_admin_handler(AdminHandler h) { admin_handler_ = std::move(h); }
  // Runs each time a gRPC worker is listening.
  void set_on_grpc_ready(std::function<void()> fn) { on_grpc_ready_ = std::move(fn); }
  void set_on_grpc_exit(std::function<void(uint64_t serial)> fn) { on_grpc_exit_ = std::move(fn); }
  // Volumes that appear or go away after start-up.
  void BroadcastAttach(Volume* v);
  void BroadcastReattach(Volume* v);
  void BroadcastDetach(VolumeId id);
  void SetServerState(const SharedServerState& state);
  // Announces a volume's grown index segment to the workers, if it has one.
  void AnnounceSegment(VolumeId id);
  // Runs `fn` once no worker may still read an older segment of the volume
  // than the one published now: at once when no handover is under way, else
  // when the handover ends (every worker answered, died or was dropped).
  // A write is acknowledged through this when the volume answers via the loop.
  void WhenSwitched(VolumeId id, std::function<void()> fn);
  int restarts() const { return restarts_; }
  // Workers dropped for breaking the protocol.
  int dropped() const { return dropped_; }

 private:
  enum class Kind { kHttp, kGrpc };
  struct Worker {
    WorkerPool* pool = nullptr;
    int slot = 0;
    Kind kind = Kind::kHttp;
    uint64_t serial = 0;
    uv_process_t process{};
    uv_poll_t poll{};
    std::unique_ptr<ipc::Channel> channel;
    // Set when the worker is dropped, closes its channel or exits: its lane
    // readers then apply nothing more, whatever is still queued on the lanes
    // (or sent by a process that inherited one).
    std::shared_ptr<std::atomic<bool>> revoked = std::make_shared<std::atomic<bool>>(false);
    // Dups of the supervisor's ends of the worker's lanes: shut down on
    // revocation, so that the writers wake and see it.
    std::vector<int> lane_ends;
    bool exited = false;
    bool draining = false;
    bool poll_closed = false;
    // What the poll handle watches now: restarting it costs two epoll_ctl
    // calls in libuv, so it is restarted only when this must change.
    int poll_events = 0;
    uint64_t started_ms = 0;
  };
  struct Handover {
    uint64_t generation = 0;
    std::set<uint64_t> waiting;  // worker serials still reading the old segment
    uint64_t started_ms = 0;
    std::vector<std::function<void()>> after_switch;  // see WhenSwitched
    // The new segment is not announced yet (AnnounceSegment retries): the
    // handover cannot end, and no worker is late for it.
    bool unsent = false;
  };
  // A worker that has not switched this long after an announcement is stuck
  // (a healthy one answers within its next loop turn); it is dropped, so that
  // the writes held for the switch are answered and the next merge can run.
  static constexpr uint64_t kHandoverDeadlineMs = 10000;
  struct Slot {
    Kind kind = Kind::kHttp;
    int number = 1;  // 1-based within its kind, for titles and logs
    uint64_t last_start_ms = 0;
    int failures = 0;
    uv_timer_t timer{};
    bool timer_armed = false;
  };

  void Spawn(int slot);
  void SendInitialState(Worker* w);
  bool AttachVolume(Worker* w, Volume* v);  // true when sent
  void OnReadable(Worker* w);
  void OnMessage(Worker* w, ipc::Message& m);
  // A write or delete on the main channel: checked here, then handed to the
  // volume's disk writer; the reply follows.
  void HandleMutation(Worker* w, ipc::Message& m);
  void HandleAdmin(Worker* w, ipc::Message& m);
  // One write lane per disk location, sent to a new HTTP worker after Hello.
  void OpenLanes(Worker* w);
  // Reads a lane on its writer's thread: the same checks as HandleMutation.
  DiskWriter::LaneReader LaneReaderFor(const Worker* w, DiskWriter* writer, int fd);
  DiskWriter::Done LoopCompletion(uint64_t serial, VolumeId vid, std::shared_ptr<PendingMutation> job, ipc::MsgType reply,
                                  uint64_t request_id);
  static DiskWriter::Answer LaneAnswer(std::shared_ptr<ipc::Channel> lane, PendingMutation* pending, ipc::MsgType reply,
                                       uint64_t request_id, Volume* volume);
  static Status VolumeNotFound(VolumeId vid);
  void SendState(Worker* w);
  std::string NameOf(const Worker* w) const;
  void Reply(uint64_t serial, ipc::MsgType type, uint64_t request_id, const Status& s, uint32_t size, uint64_t offset);
  // Stops a worker that broke the protocol or whose channel failed.
  void Drop(Worker* w, const char* why);
  // Its lanes apply nothing more (see Worker::revoked).
  void RevokeLanes(Worker* w);
  // Sends, or drops the worker when the message cannot be sent or queued.
  bool SendOrDrop(Worker* w, bool sent);
  void FinishHandover(VolumeId vid, uint64_t serial);
  // Starts a handover of `vid` to `generation` (waiting filled by the caller).
  Handover& BeginHandover(VolumeId vid, uint64_t generation);
  void EndHandover(std::map<VolumeId, Handover>::iterator it);
  void ArmHandoverWatch();
  static void OnHandoverWatch(uv_timer_t* t);
  void OnExit(Worker* w, int64_t status, int signal);
  // Serials advance with every spawn, so a slot is reused only long after its worker is gone.
  static uint32_t GaugeSlot(const Worker* w) { return uint32_t(w->serial % ipc::kMaxWorkers); }
  void Forget(Worker* w);
  void UpdatePoll(Worker* w);
  // Sends to every live worker (only the HTTP ones if `http_only`), then polls for writability.
  template <typename F>
  void SendToLive(bool http_only, F&& send);
  void ScheduleRespawn(int slot);
  static void OnPoll(uv_poll_t* h, int status, int events);
  static void OnProcessExit(uv_process_t* p, int64_t status, int term_signal);

  uv_loop_t* loop_;
  Store* store_;
  WorkerPoolOptions options_;
  std::map<uint64_t, Worker*> workers_;  // by serial
  std::vector<Slot> slots_;
  std::map<VolumeId, Handover> handovers_;
  uv_timer_t handover_watch_{};  // runs while a handover is under way
  bool handover_watch_armed_ = false;
  // Writers given work during the current read pass, woken once at its end.
  std::vector<DiskWriter*> to_wake_;
  AdminHandler admin_handler_;
  std::function<void()> on_grpc_ready_;
  std::function<void(uint64_t serial)> on_grpc_exit_;  // what it drove (copies) is undone
  SharedServerState state_;
  uint64_t next_serial_ = 1;
  int restarts_ = 0;
  int dropped_ = 0;
  bool shutting_down_ = false;
  void (*shutdown_done_)(void*) = nullptr;
  void* shutdown_arg_ = nullptr;
};

}  // namespace kelp
