#include "supervisor/worker_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/file_util.h"
#include "common/log.h"
#include "ipc/build_id.h"
#include "ipc/bulk.h"

namespace kelp {
namespace {

uint64_t NowMs(uv_loop_t* loop) { return uv_now(loop); }

// A crash-looping worker is never respawned faster than this.
constexpr uint64_t kMaxBackoffMs = 5000;
// A worker that lived this long is considered healthy again.
constexpr uint64_t kHealthyAfterMs = 10000;

}  // namespace

WorkerPool::WorkerPool(uv_loop_t* loop, Store* store, WorkerPoolOptions options)
    : loop_(loop), store_(store), options_(std::move(options)), slots_(size_t(std::max(1, options_.http_workers))) {
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].number = int(i + 1);
  if (options_.grpc_worker_exe >= 0) {
    slots_.emplace_back();
    slots_.back().kind = Kind::kGrpc;
  }
  for (auto& s : slots_) {
    uv_timer_init(loop_, &s.timer);
    s.timer.data = this;
  }
  uv_timer_init(loop_, &handover_watch_);
  handover_watch_.data = this;
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
  const std::string exe = "/proc/self/fd/" + std::to_string(w->kind == Kind::kGrpc ? options_.grpc_worker_exe : options_.http_worker_exe);
  opts.file = exe.c_str();
  opts.args = args;
  opts.exit_cb = &WorkerPool::OnProcessExit;
  opts.stdio = stdio;
  opts.stdio_count = 4;
  w->process.data = w;
  const int rc = uv_spawn(loop_, &w->process, &opts);
  close(fds[1]);
  if (rc != 0) {
    KLOG_ERROR("spawn %s: %s", NameOf(w).c_str(), uv_strerror(rc));
    // libuv keeps the handle until its close callback: free the worker only there.
    uv_close(reinterpret_cast<uv_handle_t*>(&w->process), [](uv_handle_t* h) { delete static_cast<Worker*>(h->data); });
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
  SendOrDrop(w, w->channel->SendStruct(ipc::MsgType::kServerState, 0, st, state_.master));
}

template <typename F>
void WorkerPool::SendToLive(bool http_only, F&& send) {
  std::vector<Worker*> live;
  for (auto& [serial, w] : workers_)
    if (!w->exited && !w->poll_closed && !(http_only && w->kind != Kind::kHttp)) live.push_back(w);
  for (Worker* w : live) {
    send(w);
    UpdatePoll(w);
  }
}

bool WorkerPool::SendOrDrop(Worker* w, bool sent) {
  if (!sent) Drop(w, "its channel cannot take more messages");
  return sent;
}

void WorkerPool::Drop(Worker* w, const char* why) {
  if (w->exited || w->poll_closed) return;
  KLOG_ERROR("%s (pid %d): %s; stopping it", NameOf(w).c_str(), w->process.pid, why);
  ++dropped_;
  uv_poll_stop(&w->poll);
  w->poll_closed = true;
  RevokeLanes(w);
  uv_process_kill(&w->process, SIGKILL);
}

void WorkerPool::RevokeLanes(Worker* w) {
  w->revoked->store(true, std::memory_order_release);
  for (int fd : w->lane_ends) {
    shutdown(fd, SHUT_RDWR);  // the writer sees the lane readable, and then revoked
    close(fd);
  }
  w->lane_ends.clear();
}

void WorkerPool::SetServerState(const SharedServerState& state) {
  state_ = state;
  SendToLive(false, [&](Worker* w) { SendState(w); });
}

void WorkerPool::BroadcastAttach(Volume* v) {
  SendToLive(true, [&](Worker* w) { AttachVolume(w, v); });
}

// A vacuumed volume replaces the one the workers read: each re-attaches it
// (new .dat, new segment) and acknowledges the generation. Until all have,
// its writes are answered only after the switch (WhenSwitched), so no
// client reads an acknowledged write through the old files.
void WorkerPool::BroadcastReattach(Volume* v) {
  Handover& h = BeginHandover(v->id(), v->DupSegmentGeneration());
  SendToLive(true, [&](Worker* w) {
    // A worker that cannot be given the new files would go on reading the
    // old ones: it is dropped, and the handover ends when it has exited.
    if (!AttachVolume(w, v)) Drop(w, "cannot be given a compacted volume's new files");
    h.waiting.insert(w->serial);
  });
  if (h.waiting.empty()) FinishHandover(v->id(), 0);
}

void WorkerPool::BroadcastDetach(VolumeId id) {
  const ipc::VolumeRef ref{id, 0, 0};
  SendToLive(true, [&](Worker* w) { SendOrDrop(w, w->channel->SendStruct(ipc::MsgType::kVolumeDetach, 0, ref)); });
  // The volume is gone: nothing is left to switch to. The held answers go
  // after the detach on each worker's channel, so no worker reads it after them.
  if (auto it = handovers_.find(id); it != handovers_.end()) EndHandover(it);
}

void WorkerPool::HandleAdmin(Worker* w, ipc::Message& m) {
  ipc::AdminRequest req;
  std::string body;
  const uint64_t request_id = m.header.request_id;
  const uint64_t serial = w->serial;
  auto send = [this, serial, request_id](ipc::MsgType type, int code, const std::string& message, const std::string& out) {
    auto it = workers_.find(serial);
    if (it == workers_.end() || it->second->exited) return;
    ipc::AdminReply r{code, uint32_t(message.size())};
    std::string fixed(reinterpret_cast<const char*>(&r), sizeof r);
    fixed.append(message);
    Worker* to = it->second;
    if (SendOrDrop(to, ipc::SendBulk(*to->channel, type, request_id, fixed, out))) UpdatePoll(to);
  };
  auto reply = [this, send, serial, request_id](int code, const std::string& message, const std::string& out, int fd) {
    if (fd >= 0) {
      auto it = workers_.find(serial);
      if (it != workers_.end() && !it->second->exited)
        SendOrDrop(it->second, it->second->channel->Send(ipc::MsgType::kAdminFd, request_id, std::string_view(), &fd, 1));
      close(fd);
    }
    send(ipc::MsgType::kAdminReply, code, message, out);
  };
  auto progress = [send](const std::string& out) { send(ipc::MsgType::kAdminProgress, 0, "", out); };
  if (!m.AsPrefix(&req) || req.method_length == 0 || req.method_length > 128 || m.payload.size() < sizeof req + req.method_length ||
      (!m.fds.empty() && m.payload.size() != sizeof req + req.method_length) ||
      !ipc::ReadBulk(m, sizeof req + req.method_length, &body))
    return Drop(w, "sent a malformed admin request");
  const std::string method = m.payload.substr(sizeof req, req.method_length);
  // HTTP workers read erasure-coded needles and nothing more through here.
  if (w->kind != Kind::kGrpc && !(w->kind == Kind::kHttp && (method == "kelp.LocateEcNeedle" || method == "kelp.OpenEcShardRead")))
    return Drop(w, ("sent an admin request (" + method.substr(0, 64) + ") it may not make").c_str());
  if (!admin_handler_) return reply(14 /* UNAVAILABLE */, "server is starting", "", -1);
  admin_handler_(serial, method, body, reply, progress);
}

void WorkerPool::SendInitialState(Worker* w) {
  const bool http = w->kind == Kind::kHttp;
  std::vector<int> fds;
  if (http) {
    fds = options_.listen_fds;
    fds.push_back(options_.gauges_fd);
  }
  ipc::Hello hello{uint32_t(w->slot), uint32_t(fds.size()), uint32_t(options_.server_args.size()), GaugeSlot(w), {}};
  std::snprintf(hello.build_id, sizeof hello.build_id, "%s", ipc::BuildId());
  std::string argv;
  for (const auto& a : options_.server_args) argv.append(a).push_back('\0');
  if (!SendOrDrop(w, w->channel->SendStruct(ipc::MsgType::kHello, 0, hello, argv, fds.data(), int(fds.size())))) return;
  if (http) {
    OpenLanes(w);  // before the attaches, which name the lanes
    for (auto& [vid, v] : store_->volumes()) AttachVolume(w, v.get());
  }
  SendState(w);
  SendOrDrop(w, w->channel->Send(ipc::MsgType::kAttachDone, 0, std::string_view()));
}

bool WorkerPool::AttachVolume(Worker* w, Volume* v) {
  const int dat = open(v->names().Dat().c_str(), O_RDONLY | O_CLOEXEC);
  if (dat < 0) {
    KLOG_ERROR("volume %u: cannot open %s for a worker: %s", v->id(), v->names().Dat().c_str(), std::strerror(errno));
    return false;
  }
  const auto [segment, generation] = v->DupSegment();
  if (segment < 0) {
    KLOG_ERROR("volume %u: cannot share its index segment: %s", v->id(), std::strerror(errno));
    close(dat);
    return false;
  }
  const SuperBlock& sb = v->super_block();
  ipc::VolumeAttach a{v->id(), sb.version, sb.replica_placement.Byte(), sb.ttl.count, sb.ttl.unit,
                      generation, uint32_t(v->collection().size()), uint32_t(store_->LocationOf(v->id())), sb.compaction_revision, 0, 0};
  const int fds[2] = {dat, segment};
  const bool sent = SendOrDrop(w, w->channel->SendStruct(ipc::MsgType::kVolumeAttach, 0, a, v->collection(), fds, 2));
  close(dat);
  close(segment);
  return sent;
}

void WorkerPool::UpdatePoll(Worker* w) {
  if (w->exited || w->poll_closed) return;
  const int events = UV_READABLE | (w->channel->WantsWrite() ? UV_WRITABLE : 0);
  if (events == w->poll_events) return;
  w->poll_events = events;
  uv_poll_start(&w->poll, events, &WorkerPool::OnPoll);
}

void WorkerPool::OnPoll(uv_poll_t* h, int status, int events) {
  auto* w = static_cast<Worker*>(h->data);
  WorkerPool* self = w->pool;
  if (status < 0) {
    uv_poll_stop(h);
    w->poll_events = 0;
    return;
  }
  if ((events & UV_WRITABLE) && !w->channel->Flush()) {
    self->Drop(w, "its channel failed");
    return;
  }
  if (events & UV_READABLE) self->OnReadable(w);
  self->UpdatePoll(w);
}

void WorkerPool::OnReadable(Worker* w) {
  struct WakeAtEnd {
    std::vector<DiskWriter*>& writers;
    ~WakeAtEnd() {
      for (DiskWriter* d : writers) d->Wake();
      writers.clear();
    }
  } wake_at_end{to_wake_};
  ipc::Message m;
  for (int i = 0; i < 256 && !w->poll_closed; ++i) {
    switch (w->channel->Recv(&m)) {
      case ipc::RecvResult::kMessage:
        OnMessage(w, m);
        m.CloseFds();
        break;
      case ipc::RecvResult::kEmpty:
        return;
      case ipc::RecvResult::kClosed:
        // The worker closed its end, or sent an empty datagram (which no
        // correct worker does: every message has a header). Either way
        // nothing more is read from it, and it is stopped: one that is
        // exiting anyway loses nothing, one that lies cannot stay.
        uv_poll_stop(&w->poll);
        w->poll_closed = true;
        RevokeLanes(w);
        uv_process_kill(&w->process, SIGKILL);
        return;
      case ipc::RecvResult::kError:
        Drop(w, "sent a malformed datagram (bad magic, version or length)");
        return;
    }
  }
}

void WorkerPool::OnMessage(Worker* w, ipc::Message& m) {
  switch (m.type()) {
    case ipc::MsgType::kWriteRequest:
    case ipc::MsgType::kDeleteRequest:
      HandleMutation(w, m);
      break;
    case ipc::MsgType::kAdminRequest:
      HandleAdmin(w, m);
      break;
    case ipc::MsgType::kSegmentAck: {
      ipc::VolumeRef ref;
      if (!m.As(&ref) || !m.fds.empty()) return Drop(w, "sent a malformed segment ack");
      auto it = handovers_.find(ref.volume_id);
      if (it != handovers_.end() && ref.generation == it->second.generation) FinishHandover(ref.volume_id, w->serial);
      break;
    }
    case ipc::MsgType::kReady:
      if (!m.payload.empty() || !m.fds.empty()) return Drop(w, "sent a malformed ready message");
      if (w->kind == Kind::kGrpc && on_grpc_ready_) on_grpc_ready_();
      break;
    default:
      Drop(w, ("sent a message of unexpected type " + std::to_string(m.header.type)).c_str());
  }
}

void WorkerPool::Reply(uint64_t serial, ipc::MsgType type, uint64_t request_id, const Status& s, uint32_t size, uint64_t offset) {
  auto it = workers_.find(serial);
  if (it == workers_.end() || it->second->exited || it->second->poll_closed) return;  // gone: nobody to answer
  Worker* w = it->second;
  if (SendOrDrop(w, w->channel->SendStruct(type, request_id, MutationReplyOf(s, size, offset)))) UpdatePoll(w);
}

void WorkerPool::AnnounceSegment(VolumeId id) {
  Volume* v = store_->Find(id);
  if (!v) return;
  auto replacement = v->TakeSegmentReplacement();
  if (!replacement) {
    // A merged segment that could not be handed out yet (its descriptor
    // could not be duplicated): answers held for it wait, and the watch
    // tries again each second.
    if (v->AnnouncePending()) {
      Handover& h = handovers_[id];
      h.unsent = true;
      ArmHandoverWatch();
    }
    return;
  }
  Handover& h = BeginHandover(id, replacement->generation);
  const ipc::VolumeRef ref{id, 0, replacement->generation};
  const int fd = replacement->fd;
  SendToLive(true, [&](Worker* w) {
    // A worker that could not be sent it is dropped; it counts until it has exited.
    SendOrDrop(w, w->channel->SendStruct(ipc::MsgType::kSegmentReplaced, 0, ref, {}, &fd, 1));
    h.waiting.insert(w->serial);
  });
  close(fd);
  if (h.waiting.empty()) FinishHandover(id, 0);
}

void WorkerPool::FinishHandover(VolumeId vid, uint64_t serial) {
  auto it = handovers_.find(vid);
  if (it == handovers_.end()) return;
  it->second.waiting.erase(serial);
  if (!it->second.waiting.empty() || it->second.unsent) return;
  const uint64_t generation = it->second.generation;
  EndHandover(it);
  // Releasing the old segment is the writer's business: it keeps updating it until then.
  if (std::shared_ptr<Volume> v = store_->Shared(vid)) {
    if (DiskWriter* writer = store_->WriterFor(vid)) writer->Post([v, generation] { v->FinishHandover(generation); });
    else v->FinishHandover(generation);
  }
}

WorkerPool::Handover& WorkerPool::BeginHandover(VolumeId vid, uint64_t generation) {
  // A handover that replaces one still under way keeps its held answers:
  // they go out when every worker reads the newer segment.
  Handover& h = handovers_[vid];
  h.generation = generation;
  h.waiting.clear();
  h.unsent = false;
  h.started_ms = NowMs(loop_);
  ArmHandoverWatch();
  return h;
}

void WorkerPool::ArmHandoverWatch() {
  if (handover_watch_armed_ || shutting_down_) return;
  handover_watch_armed_ = true;
  uv_timer_start(&handover_watch_, OnHandoverWatch, 1000, 1000);
}

void WorkerPool::EndHandover(std::map<VolumeId, Handover>::iterator it) {
  std::vector<std::function<void()>> after = std::move(it->second.after_switch);
  handovers_.erase(it);
  if (handovers_.empty() && handover_watch_armed_) {
    handover_watch_armed_ = false;
    uv_timer_stop(&handover_watch_);
  }
  for (auto& fn : after) fn();
}

void WorkerPool::WhenSwitched(VolumeId id, std::function<void()> fn) {
  auto it = handovers_.find(id);
  if (it == handovers_.end()) return fn();
  it->second.after_switch.push_back(std::move(fn));
}

void WorkerPool::OnHandoverWatch(uv_timer_t* t) {
  auto* self = static_cast<WorkerPool*>(t->data);
  const uint64_t now = NowMs(self->loop_);
  std::set<uint64_t> stuck;
  std::vector<VolumeId> unsent;
  for (auto& [vid, h] : self->handovers_) {
    if (h.unsent) unsent.push_back(vid);
    else if (now - h.started_ms >= kHandoverDeadlineMs) stuck.insert(h.waiting.begin(), h.waiting.end());
  }
  for (VolumeId vid : unsent) self->AnnounceSegment(vid);
  for (uint64_t serial : stuck) {
    auto it = self->workers_.find(serial);
    // Its exit ends its part in every handover (Forget).
    if (it != self->workers_.end()) self->Drop(it->second, "did not switch to a new index segment in time");
  }
}

void WorkerPool::HandleMutation(Worker* w, ipc::Message& m) {
  if (w->kind != Kind::kHttp) return Drop(w, "sent a mutation but is not an HTTP worker");
  const uint64_t request_id = m.header.request_id;
  Intake in = DecodeMutation(m);
  if (!in.breach.empty()) return Drop(w, in.breach.c_str());
  if (!in.refusal.ok()) return Reply(w->serial, in.reply_type, request_id, in.refusal, 0, 0);
  std::shared_ptr<Volume> v = store_->Shared(in.volume_id);
  if (!v) return Reply(w->serial, in.reply_type, request_id, VolumeNotFound(in.volume_id), 0, 0);
  DiskWriter* writer = store_->WriterFor(in.volume_id);
  Mutation* m_ptr = &in.job->m;
  DiskWriter::Done done = LoopCompletion(w->serial, in.volume_id, std::move(in.job), in.reply_type, request_id);
  if (!writer) {
    v->Apply(&m_ptr, 1);
    return done();
  }
  // Answered from the loop: the fast path is the worker's lane, this channel
  // carries only the mutations of a location it has no lane for.
  writer->Submit(std::move(v), m_ptr, std::move(done), nullptr, false);
  if (std::find(to_wake_.begin(), to_wake_.end(), writer) == to_wake_.end()) to_wake_.push_back(writer);
}

Status WorkerPool::VolumeNotFound(VolumeId vid) { return Status::NotFound("volume " + std::to_string(vid) + " not found"); }

DiskWriter::Done WorkerPool::LoopCompletion(uint64_t serial, VolumeId vid, std::shared_ptr<PendingMutation> job, ipc::MsgType reply,
                                            uint64_t request_id) {
  return [this, serial, vid, job = std::move(job), reply, request_id] {
    AnnounceSegment(vid);
    if (job->answered) return;
    if (!job->m.held_for_switch) return Reply(serial, reply, request_id, job->m.status, job->m.size, job->m.offset);
    // The answer alone waits; the job (and the record's mapping) goes now.
    WhenSwitched(vid, [this, serial, reply, request_id, status = job->m.status, size = job->m.size, offset = job->m.offset] {
      Reply(serial, reply, request_id, status, size, offset);
    });
  };
}

// The writer thread answers on the lane itself (no event-loop wake-up per
// write); the loop is needed only when that answer could not go out now, or
// when the write grew the index and a new segment must be announced. The
// loop completion holds the job, so `pending` lives as long as this does.
DiskWriter::Answer WorkerPool::LaneAnswer(std::shared_ptr<ipc::Channel> lane, PendingMutation* pending, ipc::MsgType reply,
                                          uint64_t request_id, Volume* volume) {
  return [lane = std::move(lane), pending, reply, request_id, volume] {
    const Mutation& m = pending->m;
    if (m.held_for_switch) {
      pending->answered = false;  // the loop answers, after the workers switched
      return true;
    }
    pending->answered = lane->TrySendStruct(reply, request_id, MutationReplyOf(m.status, m.size, m.offset));
    return !pending->answered || volume->AnnouncePending();
  };
}

void WorkerPool::OpenLanes(Worker* w) {
  for (size_t li = 0; li < store_->locations().size(); ++li) {
    DiskWriter* writer = store_->LocationWriter(li);
    if (!writer) return;  // writers not started: every mutation takes the main channel
    // Without a lane the worker sends this location's mutations on its main channel.
    int fds[2];
    if (!ipc::Channel::Pair(fds)) {
      KLOG_ERROR("%s: write lane %zu: socketpair: %s", NameOf(w).c_str(), li, std::strerror(errno));
      continue;
    }
    const int end = dup(fds[0]);
    if (end < 0 || !writer->AddLane(fds[0], LaneReaderFor(w, writer, fds[0]))) {
      KLOG_ERROR("%s: write lane %zu: %s", NameOf(w).c_str(), li, std::strerror(errno));
      if (end >= 0) close(end);
      close(fds[0]);
      close(fds[1]);
      continue;
    }
    w->lane_ends.push_back(end);
    const ipc::WriteLane lane{uint32_t(li), 0};
    const bool sent = SendOrDrop(w, w->channel->SendStruct(ipc::MsgType::kWriteLane, 0, lane, {}, &fds[1], 1));
    close(fds[1]);
    if (!sent) return;
  }
}

// Runs on the writer thread. It may not touch the pool's state: what needs
// the loop (a drop, an answer the lane could not take, a segment
// announcement) goes there with DiskWriter::ToLoop or the loop completion.
DiskWriter::LaneReader WorkerPool::LaneReaderFor(const Worker* w, DiskWriter* writer, int fd) {
  auto channel = std::make_shared<ipc::Channel>(fd);  // owns the socket; only this thread uses it
  const uint64_t serial = w->serial;
  return [this, serial, revoked = w->revoked, writer, channel](DiskWriter::Batch& batch) {
    auto drop = [&](std::string why) {
      writer->ToLoop([this, serial, why = std::move(why)] {
        auto it = workers_.find(serial);
        if (it != workers_.end()) Drop(it->second, why.c_str());
      });
      return false;
    };
    auto refuse = [&](ipc::MsgType type, uint64_t request_id, Status s) {
      if (channel->TrySendStruct(type, request_id, MutationReplyOf(s, 0, 0))) return;
      writer->ToLoop([this, serial, type, request_id, s = std::move(s)] { Reply(serial, type, request_id, s, 0, 0); });
    };
    for (int i = 0; i < 64; ++i) {
      if (revoked->load(std::memory_order_acquire)) return false;  // dropped or gone: nothing more
      ipc::Message m;
      switch (channel->Recv(&m)) {
        case ipc::RecvResult::kEmpty:
          return true;
        case ipc::RecvResult::kClosed:
          return false;  // the worker is gone
        case ipc::RecvResult::kError:
          return drop("sent a malformed datagram on a write lane (bad magic, version or length)");
        case ipc::RecvResult::kMessage:
          break;
      }
      const uint64_t request_id = m.header.request_id;
      Intake in = DecodeMutation(m);
      m.CloseFds();
      if (!in.breach.empty()) return drop(in.breach + " on a write lane");
      if (!in.refusal.ok()) {
        refuse(in.reply_type, request_id, in.refusal);
        continue;
      }
      std::shared_ptr<Volume> v = writer->Served(in.volume_id);
      if (!v) {
        refuse(in.reply_type, request_id, VolumeNotFound(in.volume_id));
        continue;
      }
      Mutation* m_ptr = &in.job->m;
      PendingMutation* pending = in.job.get();
      Volume* raw = v.get();
      DiskWriter::Answer answer = LaneAnswer(channel, pending, in.reply_type, request_id, raw);
      batch.Add(std::move(v), m_ptr, LoopCompletion(serial, in.volume_id, std::move(in.job), in.reply_type, request_id), std::move(answer));
    }
    return true;
  };
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
  if (w->kind == Kind::kGrpc && on_grpc_exit_) on_grpc_exit_(w->serial);
  uv_poll_stop(&w->poll);
  w->poll_closed = true;
  RevokeLanes(w);
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
    if (SendOrDrop(w, w->channel->Send(ipc::MsgType::kDrain, 0, std::string_view()))) UpdatePoll(w);
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
  uv_timer_stop(&handover_watch_);
  uv_close(reinterpret_cast<uv_handle_t*>(&handover_watch_), nullptr);
  if (workers_.empty()) {
    shutdown_done_ = nullptr;
    done(arg);
    return;
  }
  for (auto& [serial, w] : workers_) {
    w->draining = true;
    if (SendOrDrop(w, w->channel->Send(ipc::MsgType::kDrain, 0, std::string_view()))) UpdatePoll(w);
  }
}

}  // namespace kelp
