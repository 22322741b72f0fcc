#include "worker-http/supervisor_link.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "ipc/wire_code.h"

namespace kelp {

SupervisorLink::SupervisorLink(uv_loop_t* loop, int fd, std::function<void(ipc::Message&)> on_control)
    : loop_(loop), channel_(fd), on_control_(std::move(on_control)) {
  uv_poll_init(loop_, &poll_, fd);
  poll_.data = this;
  Poll();
}

void SupervisorLink::Poll() {
  uv_poll_start(&poll_, UV_READABLE | (channel_.WantsWrite() ? UV_WRITABLE : 0), [](uv_poll_t* h, int status, int events) {
    auto* self = static_cast<SupervisorLink*>(h->data);
    if (status < 0) {
      KLOG_ERROR("supervisor channel error: %s; exiting", uv_strerror(status));
      _exit(1);
    }
    self->OnEvents(events);
  });
}

void SupervisorLink::OnEvents(int events) {
  if ((events & UV_WRITABLE) && !channel_.Flush()) {
    KLOG_ERROR("supervisor is gone; exiting");
    _exit(0);
  }
  if (events & UV_READABLE) {
    ipc::Message m;
    for (int i = 0; i < 256; ++i) {
      const ipc::RecvResult r = channel_.Recv(&m);
      if (r == ipc::RecvResult::kEmpty) break;
      if (r != ipc::RecvResult::kMessage) {
        // No supervisor, no writes: exit and let a new supervisor start fresh workers.
        KLOG_INFO("supervisor channel closed; exiting");
        _exit(0);
      }
      const auto type = m.type();
      if (type == ipc::MsgType::kWriteReply || type == ipc::MsgType::kDeleteReply) {
        ipc::MutationReply reply{};
        auto it = pending_.find(m.header.request_id);
        if (it != pending_.end()) {
          Done done = std::move(it->second);
          pending_.erase(it);
          MutationResult res;
          if (m.As(&reply)) {
            reply.message[sizeof reply.message - 1] = '\0';
            res.size = reply.size;
            res.status = ipc::FromWire(reply.code, reply.message);
          } else {
            res.status = Status::IOError("malformed reply from supervisor");
          }
          done(res);
        }
      } else {
        on_control_(m);
      }
      m.CloseFds();
    }
  }
  Poll();
}

void SupervisorLink::Write(VolumeId vid, const NeedleFields& fields, bool fsync, Done done) {
  const EncodedLayout plan = PlanNeedleV3(fields);
  const uint64_t id = next_id_++;
  ipc::WriteRequest req{vid, uint8_t(fsync ? 1 : 0), 0, 0, plan.total};
  bool sent;
  if (plan.total <= ipc::kInlineRecordLimit) {
    req.inline_record = 1;
    std::string payload(sizeof req + plan.total, '\0');
    std::memcpy(payload.data(), &req, sizeof req);
    EncodeNeedleV3(fields, reinterpret_cast<uint8_t*>(payload.data()) + sizeof req);
    sent = channel_.Send(ipc::MsgType::kWriteRequest, id, payload);
  } else {
    // Large records cross in a memfd: one copy into shared memory, one pwrite out of it.
    // It is sealed before it is sent: the supervisor refuses a buffer this
    // worker could still change or cut short.
    const int fd = memfd_create("kelp-upload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void* p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, off_t(plan.total)) == 0)
      p = mmap(nullptr, plan.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      if (fd >= 0) close(fd);
      done(MutationResult{Status::IOError(std::string("upload buffer: ") + std::strerror(errno)), 0});
      return;
    }
    EncodeNeedleV3(fields, static_cast<uint8_t*>(p));
    munmap(p, plan.total);  // F_SEAL_WRITE needs no writable mapping left
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
      close(fd);
      done(MutationResult{Status::IOError(std::string("seal upload buffer: ") + std::strerror(errno)), 0});
      return;
    }
    sent = channel_.SendStruct(ipc::MsgType::kWriteRequest, id, req, {}, &fd, 1);
    close(fd);
  }
  if (!sent) {
    done(MutationResult{Status::Unavailable("supervisor unavailable"), 0});
    return;
  }
  pending_.emplace(id, std::move(done));
  Poll();
}

void SupervisorLink::Delete(VolumeId vid, NeedleId nid, Cookie cookie, uint64_t append_at_ns, Done done) {
  const uint64_t id = next_id_++;
  ipc::DeleteRequest req{vid, cookie, nid, append_at_ns};
  if (!channel_.SendStruct(ipc::MsgType::kDeleteRequest, id, req)) {
    done(MutationResult{Status::Unavailable("supervisor unavailable"), 0});
    return;
  }
  pending_.emplace(id, std::move(done));
  Poll();
}

}  // namespace kelp
