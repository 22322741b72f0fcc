#include "worker-http/supervisor_link.h"

#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "ipc/bulk.h"
#include "ipc/wire_code.h"

namespace kelp {

SupervisorLink::SupervisorLink(uv_loop_t* loop, int fd, std::function<void(ipc::Message&)> on_control)
    : loop_(loop), main_(std::make_unique<Endpoint>(fd)), on_control_(std::move(on_control)) {
  main_->control = true;
  main_->link = this;
  uv_poll_init(loop_, &main_->poll, fd);
  main_->poll.data = main_.get();
  Poll(main_.get());
}

void SupervisorLink::Poll(Endpoint* e) {
  const int events = UV_READABLE | (e->channel.WantsWrite() ? UV_WRITABLE : 0);
  if (events == e->poll_events) return;
  e->poll_events = events;
  uv_poll_start(&e->poll, events, [](uv_poll_t* h, int status, int events) {
    auto* e = static_cast<Endpoint*>(h->data);
    if (status < 0) {
      KLOG_ERROR("supervisor channel error: %s; exiting", uv_strerror(status));
      _exit(1);
    }
    e->link->OnEvents(e, events);
  });
}

void SupervisorLink::OnEvents(Endpoint* e, int events) {
  if ((events & UV_WRITABLE) && !e->channel.Flush()) {
    KLOG_ERROR("supervisor is gone; exiting");
    _exit(0);
  }
  if (events & UV_READABLE) {
    for (int i = 0; i < 256; ++i) {
      ipc::Message m;
      const ipc::RecvResult r = e->channel.Recv(&m);
      if (r == ipc::RecvResult::kEmpty) break;
      if (r != ipc::RecvResult::kMessage) {
        // No supervisor, no writes: exit and let a new supervisor start fresh
        // workers. (A lane closes only with its supervisor, or when the
        // supervisor drops this worker.)
        KLOG_INFO("supervisor %s closed; exiting", e->control ? "channel" : "write lane");
        _exit(0);
      }
      OnMessage(e, m);
      m.CloseFds();
    }
  }
  Poll(e);
}

void SupervisorLink::OnMessage(Endpoint* e, ipc::Message& m) {
  const auto type = m.type();
  if (type == ipc::MsgType::kWriteReply || type == ipc::MsgType::kDeleteReply) {
    auto it = pending_.find(m.header.request_id);
    if (it == pending_.end()) return;
    Done done = std::move(it->second);
    pending_.erase(it);
    MutationResult res;
    ipc::MutationReply reply{};
    if (m.As(&reply)) {
      reply.message[sizeof reply.message - 1] = '\0';
      res.size = reply.size;
      res.status = ipc::FromWire(reply.code, reply.message);
    } else {
      res.status = Status::IOError("malformed reply from supervisor");
    }
    return done(res);
  }
  if (e->control && (type == ipc::MsgType::kAdminReply || type == ipc::MsgType::kAdminFd)) return OnAdminMessage(m);
  if (!e->control) {
    KLOG_WARN("unexpected message type %u on a write lane", unsigned(m.header.type));
    return;
  }
  if (type == ipc::MsgType::kWriteLane) return AddLane(m);
  if (type == ipc::MsgType::kVolumeAttach) {
    ipc::VolumeAttach a;
    if (m.AsPrefix(&a)) lane_of_[a.volume_id] = a.lane;
  } else if (type == ipc::MsgType::kVolumeDetach) {
    ipc::VolumeRef ref;
    if (m.As(&ref)) lane_of_.erase(ref.volume_id);
  }
  on_control_(m);
}

void SupervisorLink::AdminCall(const std::string& method, const std::string& request, AdminDone done) {
  const uint64_t id = next_id_++;
  ipc::AdminRequest req{uint32_t(method.size()), 0};
  std::string fixed(reinterpret_cast<const char*>(&req), sizeof req);
  fixed.append(method);
  if (!ipc::SendBulk(main_->channel, ipc::MsgType::kAdminRequest, id, fixed, request)) return done(14, "volume server supervisor is gone", "", -1);
  admin_pending_[id] = AdminPending{std::move(done), -1};
  Poll(main_.get());
}

void SupervisorLink::OnAdminMessage(ipc::Message& m) {
  auto it = admin_pending_.find(m.header.request_id);
  if (it == admin_pending_.end()) return m.CloseFds();
  if (m.type() == ipc::MsgType::kAdminFd) {
    if (m.fds.size() == 1 && it->second.fd < 0) {
      it->second.fd = m.fds[0];
      m.fds.clear();
    }
    return m.CloseFds();
  }
  AdminPending p = std::move(it->second);
  admin_pending_.erase(it);
  ipc::AdminReply reply{};
  std::string body;
  if (!m.AsPrefix(&reply) || m.payload.size() < sizeof reply + reply.message_length || !ipc::ReadBulk(m, sizeof reply + reply.message_length, &body)) {
    if (p.fd >= 0) close(p.fd);
    return p.done(13, "malformed answer from the supervisor", "", -1);
  }
  p.done(reply.grpc_code, m.payload.substr(sizeof reply, reply.message_length), body, p.fd);
}

void SupervisorLink::AddLane(ipc::Message& m) {
  ipc::WriteLane lane;
  if (!m.As(&lane) || m.fds.size() != 1 || lane.lane > 4096) {
    KLOG_WARN("malformed write lane from supervisor; its location's writes take the main channel");
    return;
  }
  if (lanes_.size() <= lane.lane) lanes_.resize(lane.lane + 1);
  if (lanes_[lane.lane]) return;  // one per location
  auto e = std::make_unique<Endpoint>(m.fds[0]);
  m.fds.clear();  // the endpoint owns it now
  e->link = this;
  uv_poll_init(loop_, &e->poll, e->channel.fd());
  e->poll.data = e.get();
  Poll(e.get());
  lanes_[lane.lane] = std::move(e);
}

SupervisorLink::Endpoint* SupervisorLink::RouteOf(VolumeId vid) {
  auto it = lane_of_.find(vid);
  if (it != lane_of_.end() && it->second < lanes_.size() && lanes_[it->second]) return lanes_[it->second].get();
  return main_.get();
}

void SupervisorLink::Write(VolumeId vid, const NeedleFields& fields, uint32_t data_checksum, bool fsync, Done done) {
  const uint64_t id = next_id_++;
  Endpoint* route = RouteOf(vid);
  const EncodedLayout plan = PlanNeedleV3(fields);
  ipc::WriteRequest req{vid, uint8_t(fsync ? 1 : 0), 0, 0, plan.total};
  bool sent;
  if (plan.total <= ipc::kInlineRecordLimit) {
    req.inline_record = 1;
    std::string payload(sizeof req + plan.total, '\0');
    std::memcpy(payload.data(), &req, sizeof req);
    EncodeNeedleV3(fields, data_checksum, reinterpret_cast<uint8_t*>(payload.data()) + sizeof req);
    sent = route->channel.Send(ipc::MsgType::kWriteRequest, id, payload);
  } else {
    // Large records cross in a sealed memfd: the data is copied in once, by
    // the kernel, from where the request holds it, and the buffer's pages are
    // filled as they are allocated (no faults, no zeroing). The supervisor
    // refuses a buffer this worker could still change or cut short.
    const NeedlePieces pieces = EncodeNeedleV3Pieces(fields, data_checksum);
    const int fd = ipc::SealedMemfd("kelp-upload", {pieces.head, fields.data, pieces.tail});
    if (fd < 0) {
      done(MutationResult{Status::IOError(std::string("upload buffer: ") + std::strerror(errno)), 0});
      return;
    }
    sent = route->channel.SendStruct(ipc::MsgType::kWriteRequest, id, req, {}, &fd, 1);
    close(fd);
  }
  if (!sent) {
    done(MutationResult{Status::Unavailable("supervisor unavailable"), 0});
    return;
  }
  pending_.emplace(id, std::move(done));
  Poll(route);
}

void SupervisorLink::Delete(VolumeId vid, NeedleId nid, Cookie cookie, uint64_t append_at_ns, Done done) {
  const uint64_t id = next_id_++;
  ipc::DeleteRequest req{vid, cookie, nid, append_at_ns};
  Endpoint* route = RouteOf(vid);
  if (!route->channel.SendStruct(ipc::MsgType::kDeleteRequest, id, req)) {
    done(MutationResult{Status::Unavailable("supervisor unavailable"), 0});
    return;
  }
  pending_.emplace(id, std::move(done));
  Poll(route);
}

}  // namespace kelp
