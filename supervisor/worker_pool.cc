#include "supervisor/worker_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "ipc/bulk.h"

namespace kelp {
namespace {

uint64_t NowMs(uv_loop_t* loop) { return uv_now(loop); }

// A crash-looping worker is never respawned faster than this.
constexpr uint64_t kMaxBackoffMs = 5000;
// A worker that lived this long is considered healthy again.
constexpr uint64_t kHealthyAfterMs = 10000;

struct FsyncJob {
  uv_fs_t req;
  WorkerPool* pool;
  uint64_t serial;
  uint64_t request_id;
  uint32_t size;
  uint64_t offset;
  ipc::MsgType reply_type;
};

}  // namespace

WorkerPool::WorkerPool(uv_loop_t* loop, Store* store, WorkerPoolOptions options)
    : loop_(loop), store_(store), options_(std::move(options)), slots_(size_t(std::max(1, options_.http_workers))) {
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].number = int(i + 1);
  if (!options_.grpc_worker_path.empty()) {
    slots_.emplace_back();
    slots_.back().kind = Kind::kGrpc;
  }
  for (auto& s : slots_) {
    uv_timer_init(loop_, &s.timer);
    s.timer.data = this;
  }
}

WorkerPool::~WorkerPool() = default;

size_t WorkerPool::live_workers() const {
  size_t n = 0;
  for (auto& [serial, w] : workers_)
    if (!w->exited && !w->draining) ++n;
  return n;
}

void WorkerPool::Start() {
  for (size_t i = 0; i < slots_.size(); ++i) Spawn(int(i));
}

void WorkerPool::Spawn(int slot) {
  if (shutting_down_) return;
  int fds[2];
  if (!ipc::Channel::Pair(fds)) {
    KLOG_ERROR("socketpair: %s", std::strerror(errno));
    ScheduleRespawn(slot);
    return;
  }
  auto* w = new Worker;
  w->pool = this;
  w->slot = slot;
  w->kind = slots_[size_t(slot)].kind;
  w->serial = next_serial_++;
  w->channel = std::make_unique<ipc::Channel>(fds[0]);
  const std::string title = "kelp-volume: " + NameOf(w);
  char* args[] = {const_cast<char*>(title.c_str()), nullptr};
  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = 1;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = fds[1];
  uv_process_options_t opts{};
  opts.file = (w->kind == Kind::kGrpc ? options_.grpc_worker_path : options_.http_worker_path).c_str();
  opts.args = args;
  opts.exit_cb = &WorkerPool::OnProcessExit;
  opts.stdio = stdio;
  opts.stdio_count = 4;
  w->process.data = w;
  const int rc = uv_spawn(loop_, &w->process, &opts);
  close(fds[1]);
  if (rc != 0) {
    KLOG_ERROR("spawn %s: %s", opts.file, uv_strerror(rc));
    uv_close(reinterpret_cast<uv_handle_t*>(&w->process), nullptr);
    delete w;  // never started: no poll handle; process handle close needs no data
    ScheduleRespawn(slot);
    return;
  }
  w->started_ms = NowMs(loop_);
  slots_[size_t(slot)].last_start_ms = w->started_ms;
  uv_poll_init(loop_, &w->poll, w->channel->fd());
  w->poll.data = w;
  workers_[w->serial] = w;
  SendInitialState(w);
  UpdatePoll(w);
  KLOG_INFO("started %s (pid %d)", NameOf(w).c_str(), w->process.pid);
}

std::string WorkerPool::NameOf(const Worker* w) const {
  const Slot& s = slots_[size_t(w->slot)];
  return s.kind == Kind::kGrpc ? std::string("grpc worker") : "http worker " + std::to_string(s.number);
}

void WorkerPool::SendState(Worker* w) {
  ipc::ServerState st{};
  st.registered = state_.registered;
  st.maintenance = state_.maintenance;
  st.state_version = state_.state_version;
  st.volume_size_limit = state_.volume_size_limit;
  st.master_length = uint32_t(state_.master.size());
  w->channel->SendStruct(ipc::MsgType::kServerState, 0, st, state_.master);
}

template <typename F>
void WorkerPool::SendToLive(bool http_only, F&& send) {
  for (auto& [serial, w] : workers_) {
    if (w->exited || (http_only && w->kind != Kind::kHttp)) continue;
    send(w);
    UpdatePoll(w);
  }
}

void WorkerPool::SetServerState(const SharedServerState& state) {
  state_ = state;
  SendToLive(false, [&](Worker* w) { SendState(w); });
}

void WorkerPool::BroadcastAttach(Volume* v) {
  SendToLive(true, [&](Worker* w) { AttachVolume(w, v); });
}

void WorkerPool::BroadcastDetach(VolumeId id) {
  handovers_.erase(id);
  const ipc::VolumeRef ref{id, 0, 0};
  SendToLive(true, [&](Worker* w) { w->channel->SendStruct(ipc::MsgType::kVolumeDetach, 0, ref); });
}

void WorkerPool::HandleAdmin(Worker* w, ipc::Message& m) {
  ipc::AdminRequest req;
  std::string body;
  const uint64_t request_id = m.header.request_id;
  const uint64_t serial = w->serial;
  auto reply = [this, serial, request_id](int code, const std::string& message, const std::string& out) {
    auto it = workers_.find(serial);
    if (it == workers_.end() || it->second->exited) return;
    ipc::AdminReply r{code, uint32_t(message.size())};
    std::string fixed(reinterpret_cast<const char*>(&r), sizeof r);
    fixed.append(message);
    ipc::SendBulk(*it->second->channel, ipc::MsgType::kAdminReply, request_id, fixed, out);
    UpdatePoll(it->second);
  };
  if (!m.As(&req) || m.payload.size() < sizeof req + req.method_length || !ipc::ReadBulk(m, sizeof req + req.method_length, &body))
    return reply(3 /* INVALID_ARGUMENT */, "malformed admin request", "");
  const std::string method = m.payload.substr(sizeof req, req.method_length);
  if (!admin_handler_) return reply(14 /* UNAVAILABLE */, "server is starting", "");
  admin_handler_(method, body, reply);
}

void WorkerPool::SendInitialState(Worker* w) {
  const bool http = w->kind == Kind::kHttp;
  std::vector<int> fds;
  if (http) {
    fds = options_.listen_fds;
    fds.push_back(options_.gauges_fd);
  }
  ipc::Hello hello{uint32_t(w->slot), uint32_t(fds.size()), uint32_t(options_.server_args.size()), GaugeSlot(w)};
  std::string argv;
  for (const auto& a : options_.server_args) argv.append(a).push_back('\0');
  w->channel->SendStruct(ipc::MsgType::kHello, 0, hello, argv, fds.data(), int(fds.size()));
  if (http)
    for (auto& [vid, v] : store_->volumes()) AttachVolume(w, v.get());
  SendState(w);
  w->channel->Send(ipc::MsgType::kAttachDone, 0, std::string_view());
}

void WorkerPool::AttachVolume(Worker* w, Volume* v) {
  const int dat = open(v->names().Dat().c_str(), O_RDONLY | O_CLOEXEC);
  if (dat < 0) {
    KLOG_ERROR("volume %u: cannot open %s for a worker: %s", v->id(), v->names().Dat().c_str(), std::strerror(errno));
    return;
  }
  const SuperBlock& sb = v->super_block();
  ipc::VolumeAttach a{v->id(), sb.version, sb.replica_placement.Byte(), sb.ttl.count, sb.ttl.unit,
                      v->segment().generation(), uint32_t(v->collection().size()), 0};
  const int fds[2] = {dat, v->segment().fd()};
  w->channel->SendStruct(ipc::MsgType::kVolumeAttach, 0, a, v->collection(), fds, 2);
  close(dat);
}

void WorkerPool::UpdatePoll(Worker* w) {
  if (w->exited || w->poll_closed) return;
  uv_poll_start(&w->poll, UV_READABLE | (w->channel->WantsWrite() ? UV_WRITABLE : 0), &WorkerPool::OnPoll);
}

void WorkerPool::OnPoll(uv_poll_t* h, int status, int events) {
  auto* w = static_cast<Worker*>(h->data);
  WorkerPool* self = w->pool;
  if (status < 0) {
    uv_poll_stop(h);
    return;
  }
  if (events & UV_WRITABLE) w->channel->Flush();
  if (events & UV_READABLE) self->OnReadable(w);
  self->UpdatePoll(w);
}

void WorkerPool::OnReadable(Worker* w) {
  ipc::Message m;
  for (int i = 0; i < 256; ++i) {
    switch (w->channel->Recv(&m)) {
      case ipc::RecvResult::kMessage:
        OnMessage(w, m);
        m.CloseFds();
        break;
      case ipc::RecvResult::kEmpty:
        return;
      case ipc::RecvResult::kClosed:
        uv_poll_stop(&w->poll);
        return;
      case ipc::RecvResult::kError:
        KLOG_ERROR("%s sent a malformed message; stopping it", NameOf(w).c_str());
        uv_poll_stop(&w->poll);
        uv_process_kill(&w->process, SIGKILL);
        return;
    }
  }
}

void WorkerPool::OnMessage(Worker* w, ipc::Message& m) {
  switch (m.type()) {
    case ipc::MsgType::kWriteRequest:
      HandleWrite(w, m);
      break;
    case ipc::MsgType::kDeleteRequest:
      HandleDelete(w, m);
      break;
    case ipc::MsgType::kAdminRequest:
      HandleAdmin(w, m);
      break;
    case ipc::MsgType::kSegmentAck: {
      ipc::VolumeRef ref;
      if (m.As(&ref)) {
        Volume* v = store_->Find(ref.volume_id);
        if (v && ref.generation == v->segment().generation()) FinishHandover(ref.volume_id, w->serial);
      }
      break;
    }
    case ipc::MsgType::kReady:
      if (w->kind == Kind::kGrpc && on_grpc_ready_) on_grpc_ready_();
      break;
    default:
      KLOG_WARN("%s: unexpected message type %u", NameOf(w).c_str(), unsigned(m.header.type));
  }
}

void WorkerPool::Reply(Worker* w, ipc::MsgType type, uint64_t request_id, const Status& s, uint32_t size, uint64_t offset) {
  ipc::MutationReply r{};
  r.code = uint16_t(s.code());
  r.size = size;
  r.offset = offset;
  std::snprintf(r.message, sizeof r.message, "%s", s.message().c_str());
  w->channel->SendStruct(type, request_id, r);
  UpdatePoll(w);
}

void WorkerPool::MaybeGrow(Volume* v) {
  if (!v->segment().WantsGrowth() || handovers_.count(v->id())) return;
  auto old = v->GrowSegment();
  if (!old.ok()) {
    KLOG_ERROR("volume %u: cannot grow index segment: %s", v->id(), old.status().message().c_str());
    return;
  }
  Handover& h = handovers_[v->id()];
  h.old_segment = std::move(old.value());
  v->AddTrailingSegment(&h.old_segment);
  const ipc::VolumeRef ref{v->id(), 0, v->segment().generation()};
  const int fd = v->segment().fd();
  SendToLive(true, [&](Worker* w) {
    h.waiting.insert(w->serial);
    w->channel->SendStruct(ipc::MsgType::kSegmentReplaced, 0, ref, {}, &fd, 1);
  });
  if (h.waiting.empty()) FinishHandover(v->id(), 0);
}

void WorkerPool::FinishHandover(VolumeId vid, uint64_t serial) {
  auto it = handovers_.find(vid);
  if (it == handovers_.end()) return;
  it->second.waiting.erase(serial);
  if (!it->second.waiting.empty()) return;
  if (Volume* v = store_->Find(vid)) v->ClearTrailingSegment();
  it->second.old_segment.MarkSuperseded();
  handovers_.erase(it);
}

void WorkerPool::HandleWrite(Worker* w, ipc::Message& m) {
  ipc::WriteRequest req;
  if (!m.As(&req)) return Reply(w, ipc::MsgType::kWriteReply, m.header.request_id, Status::Invalid("short write request"), 0, 0);
  uint8_t* record = nullptr;
  void* mapping = nullptr;
  if (req.inline_record) {
    if (m.payload.size() - sizeof req != req.record_length)
      return Reply(w, ipc::MsgType::kWriteReply, m.header.request_id, Status::Invalid("write request length mismatch"), 0, 0);
    record = reinterpret_cast<uint8_t*>(m.payload.data()) + sizeof req;
  } else {
    struct stat st;
    if (m.fds.size() != 1 || fstat(m.fds[0], &st) != 0 || uint64_t(st.st_size) < req.record_length || req.record_length == 0)
      return Reply(w, ipc::MsgType::kWriteReply, m.header.request_id, Status::Invalid("write request buffer missing"), 0, 0);
    mapping = mmap(nullptr, req.record_length, PROT_READ | PROT_WRITE, MAP_SHARED, m.fds[0], 0);
    if (mapping == MAP_FAILED)
      return Reply(w, ipc::MsgType::kWriteReply, m.header.request_id, Status::IOError("mmap write buffer"), 0, 0);
    record = static_cast<uint8_t*>(mapping);
  }
  Volume* v = store_->Find(req.volume_id);
  Result<AppendOutcome> r = Status::NotFound("volume " + std::to_string(req.volume_id) + " not found");
  if (v) {
    MaybeGrow(v);
    // Like Go, writes are bounded by what the offset width can address, not by
    // the master's volume size limit: the master stops assigning to a full
    // volume, and writes it already assigned must still succeed.
    r = v->Append(record, req.record_length, MaxVolumeSizeFor(kBuildOffsetBytes));
  }
  if (mapping) munmap(mapping, req.record_length);
  if (!r.ok()) return Reply(w, ipc::MsgType::kWriteReply, m.header.request_id, r.status(), 0, 0);
  if (req.fsync) {
    auto* job = new FsyncJob{{}, this, w->serial, m.header.request_id, r.value().size, r.value().offset, ipc::MsgType::kWriteReply};
    job->req.data = job;
    uv_fs_fdatasync(loop_, &job->req, v->dat_fd(), [](uv_fs_t* req) {
      auto* job = static_cast<FsyncJob*>(req->data);
      const Status s = req->result < 0 ? Status::IOError(std::string("fsync: ") + uv_strerror(int(req->result))) : Status::Ok();
      auto it = job->pool->workers_.find(job->serial);
      if (it != job->pool->workers_.end() && !it->second->exited)
        job->pool->Reply(it->second, job->reply_type, job->request_id, s, job->size, job->offset);
      uv_fs_req_cleanup(req);
      delete job;
    });
    return;
  }
  Reply(w, ipc::MsgType::kWriteReply, m.header.request_id, Status::Ok(), r.value().size, r.value().offset);
}

void WorkerPool::HandleDelete(Worker* w, ipc::Message& m) {
  ipc::DeleteRequest req;
  if (!m.As(&req)) return Reply(w, ipc::MsgType::kDeleteReply, m.header.request_id, Status::Invalid("short delete request"), 0, 0);
  Volume* v = store_->Find(req.volume_id);
  if (!v) return Reply(w, ipc::MsgType::kDeleteReply, m.header.request_id, Status::NotFound("volume " + std::to_string(req.volume_id) + " not found"), 0, 0);
  MaybeGrow(v);
  auto r = v->Delete(req.needle_id, req.cookie, req.append_at_ns);
  if (!r.ok()) return Reply(w, ipc::MsgType::kDeleteReply, m.header.request_id, r.status(), 0, 0);
  Reply(w, ipc::MsgType::kDeleteReply, m.header.request_id, Status::Ok(), r.value(), 0);
}

void WorkerPool::Forget(Worker* w) {
  std::vector<VolumeId> vids;
  for (auto& [vid, h] : handovers_)
    if (h.waiting.count(w->serial)) vids.push_back(vid);
  for (VolumeId vid : vids) FinishHandover(vid, w->serial);
}

void WorkerPool::OnProcessExit(uv_process_t* p, int64_t status, int term_signal) {
  auto* w = static_cast<Worker*>(p->data);
  w->pool->OnExit(w, status, term_signal);
}

void WorkerPool::OnExit(Worker* w, int64_t status, int signal) {
  w->exited = true;
  // What it had in flight is gone with it.
  if (options_.gauges && w->kind == Kind::kHttp) options_.gauges->ResetSlot(int(GaugeSlot(w)));
  const uint64_t lived = NowMs(loop_) - w->started_ms;
  if (w->draining)
    KLOG_INFO("%s (pid %d) finished draining", NameOf(w).c_str(), w->process.pid);
  else
    KLOG_WARN("%s (pid %d) exited: status %lld, signal %d, after %llu ms", NameOf(w).c_str(), w->process.pid,
              static_cast<long long>(status), signal, static_cast<unsigned long long>(lived));
  workers_.erase(w->serial);
  Forget(w);
  uv_poll_stop(&w->poll);
  w->poll_closed = true;
  const bool respawn = !w->draining && !shutting_down_;
  Slot& slot = slots_[size_t(w->slot)];
  if (respawn) {
    slot.failures = lived >= kHealthyAfterMs ? 1 : slot.failures + 1;
    ++restarts_;
  }
  // Both handles must be closed before the Worker is freed.
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), [](uv_handle_t* h) {
    auto* w = static_cast<Worker*>(h->data);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->process), [](uv_handle_t* h) { delete static_cast<Worker*>(h->data); });
  });
  if (respawn) ScheduleRespawn(w->slot);
  if (shutting_down_ && workers_.empty() && shutdown_done_) {
    auto done = shutdown_done_;
    shutdown_done_ = nullptr;
    done(shutdown_arg_);
  }
}

void WorkerPool::ScheduleRespawn(int slot_index) {
  Slot& slot = slots_[size_t(slot_index)];
  if (slot.timer_armed || shutting_down_) return;
  // First restart is immediate; a crash loop backs off exponentially to kMaxBackoffMs.
  uint64_t delay = 0;
  if (slot.failures > 1) delay = std::min<uint64_t>(kMaxBackoffMs, 100ull << std::min(slot.failures - 2, 10));
  if (delay >= kMaxBackoffMs)
    KLOG_ERROR("%s worker slot %d is crash-looping; next start in %llu ms", slot.kind == Kind::kGrpc ? "grpc" : "http", slot.number,
               static_cast<unsigned long long>(delay));
  slot.timer_armed = true;
  // timer.data is the pool; the slot is recovered from the timer's address.
  uv_timer_start(&slot.timer, [](uv_timer_t* t) {
    auto* pool = static_cast<WorkerPool*>(t->data);
    for (size_t i = 0; i < pool->slots_.size(); ++i) {
      if (&pool->slots_[i].timer == t) {
        pool->slots_[i].timer_armed = false;
        pool->Spawn(int(i));
        return;
      }
    }
  }, delay, 0);
}

void WorkerPool::Reload() {
  std::vector<Worker*> old;
  for (auto& [serial, w] : workers_)
    if (!w->exited && !w->draining) old.push_back(w);
  for (size_t i = 0; i < slots_.size(); ++i) Spawn(int(i));
  for (Worker* w : old) {
    w->draining = true;
    w->channel->Send(ipc::MsgType::kDrain, 0, std::string_view());
    UpdatePoll(w);
  }
  KLOG_INFO("reload: %zu new worker(s), %zu draining", slots_.size(), old.size());
}

void WorkerPool::Shutdown(void (*done)(void*), void* arg) {
  shutting_down_ = true;
  shutdown_done_ = done;
  shutdown_arg_ = arg;
  for (auto& s : slots_) {
    uv_timer_stop(&s.timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&s.timer), nullptr);
  }
  if (workers_.empty()) {
    shutdown_done_ = nullptr;
    done(arg);
    return;
  }
  for (auto& [serial, w] : workers_) {
    w->draining = true;
    w->channel->Send(ipc::MsgType::kDrain, 0, std::string_view());
    UpdatePoll(w);
  }
}

}  // namespace kelp
