#include "worker-grpc/supervisor_client.h"

#include <unistd.h>

#include <poll.h>

#include "common/log.h"
#include "ipc/bulk.h"

namespace kelp {
namespace {

// A supervisor call that takes longer than this has hung; the client gets UNAVAILABLE.
constexpr auto kCallTimeout = std::chrono::minutes(5);

}  // namespace

SupervisorClient::~SupervisorClient() {
  if (reader_.joinable()) reader_.detach();
}

bool SupervisorClient::SendBlocking(ipc::MsgType type, uint64_t id, std::string_view fixed, std::string_view body) {
  std::lock_guard lk(send_mu_);
  if (!ipc::SendBulk(channel_, type, id, fixed, body)) return false;
  while (channel_.WantsWrite()) {
    pollfd p{channel_.fd(), POLLOUT, 0};
    if (poll(&p, 1, 1000) < 0 && errno != EINTR) return false;
    if (!channel_.Flush()) return false;
  }
  return true;
}

bool SupervisorClient::ReceiveBlocking(ipc::Message* m, int timeout_ms) {
  while (true) {
    switch (channel_.Recv(m)) {
      case ipc::RecvResult::kMessage:
        return true;
      case ipc::RecvResult::kClosed:
      case ipc::RecvResult::kError:
        return false;
      case ipc::RecvResult::kEmpty: {
        pollfd p{channel_.fd(), POLLIN, 0};
        const int n = poll(&p, 1, timeout_ms);
        if (n == 0 && timeout_ms >= 0) return false;
        if (n < 0 && errno != EINTR) return false;
        break;
      }
    }
  }
}

Result<ServerConfig> SupervisorClient::WaitConfig() {
  ipc::Message m;
  if (!ReceiveBlocking(&m, 30000)) return Status::Unavailable("no configuration from the supervisor");
  m.CloseFds();
  return ipc::ConfigFromHello(m);
}

void SupervisorClient::Start(std::function<void()> on_drain, std::function<void()> on_lost) {
  on_drain_ = std::move(on_drain);
  on_lost_ = std::move(on_lost);
  reader_ = std::thread([this] { ReadLoop(); });
}

void SupervisorClient::SendReady() { SendBlocking(ipc::MsgType::kReady, 0, {}, {}); }

void SupervisorClient::ReadLoop() {
  ipc::Message m;
  while (ReceiveBlocking(&m, -1)) {
    OnMessage(m);
    m.CloseFds();
  }
  {
    std::lock_guard lk(mu_);
    lost_ = true;
    for (auto& [id, p] : pending_) {
      p->done = true;
      p->code = int(grpc::StatusCode::UNAVAILABLE);
      p->message = "volume server supervisor is gone";
    }
  }
  cv_.notify_all();
  if (on_lost_) on_lost_();
}

void SupervisorClient::OnMessage(ipc::Message& m) {
  switch (m.type()) {
    case ipc::MsgType::kAdminReply:
    case ipc::MsgType::kAdminProgress: {
      // Both: AdminReply, the error message, then the bulk body.
      ipc::AdminReply r;
      std::string body;
      if (!m.AsPrefix(&r) || m.payload.size() < sizeof r + r.message_length || !ipc::ReadBulk(m, sizeof r + r.message_length, &body)) {
        KLOG_ERROR("malformed reply from the supervisor");
        return;
      }
      std::lock_guard lk(mu_);
      auto it = pending_.find(m.header.request_id);
      if (it == pending_.end()) return;
      Pending* p = it->second;
      if (m.type() == ipc::MsgType::kAdminProgress) {
        p->streamed.push_back(std::move(body));
      } else {
        p->done = true;
        p->code = r.grpc_code;
        p->message = m.payload.substr(sizeof r, r.message_length);
        p->body = std::move(body);
      }
      cv_.notify_all();
      return;
    }
    case ipc::MsgType::kAdminFd: {
      if (m.fds.size() != 1 || !m.payload.empty()) {
        KLOG_ERROR("malformed descriptor message from the supervisor");
        return;
      }
      std::lock_guard lk(mu_);
      auto it = pending_.find(m.header.request_id);
      if (it == pending_.end() || it->second->fd >= 0) return;  // closed with the message
      it->second->fd = m.fds[0];
      m.fds.clear();
      return;
    }
    case ipc::MsgType::kServerState: {
      ipc::ServerStateView decoded;
      if (!ipc::DecodeServerState(m, &decoded)) return;
      std::lock_guard lk(mu_);
      state_ = std::move(decoded);
      return;
    }
    case ipc::MsgType::kAttachDone:
    case ipc::MsgType::kVolumeAttach:
    case ipc::MsgType::kVolumeDetach:
      return;
    case ipc::MsgType::kDrain:
      if (on_drain_) on_drain_();
      return;
    default:
      KLOG_WARN("unexpected message type %u from supervisor", unsigned(m.header.type));
  }
}

uint64_t SupervisorClient::Begin(const std::string& method, const google::protobuf::Message& request, Pending* p) {
  std::string body;
  if (!request.SerializeToString(&body)) return 0;
  uint64_t id;
  {
    std::lock_guard lk(mu_);
    if (lost_) return 0;
    id = next_id_++;
    pending_[id] = p;
  }
  ipc::AdminRequest req{uint32_t(method.size()), 0};
  std::string fixed(reinterpret_cast<const char*>(&req), sizeof req);
  fixed.append(method);
  if (SendBlocking(ipc::MsgType::kAdminRequest, id, fixed, body)) return id;
  std::lock_guard lk(mu_);
  pending_.erase(id);
  return 0;
}

grpc::Status SupervisorClient::CallStream(const std::string& method, const google::protobuf::Message& request,
                                          const std::function<bool(const std::string&)>& on_message,
                                          google::protobuf::Message* response) {
  Pending p;
  const uint64_t id = Begin(method, request, &p);
  if (id == 0) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "volume server supervisor is gone");
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return p.done || !p.streamed.empty(); });
    while (!p.streamed.empty()) {
      std::string body = std::move(p.streamed.front());
      p.streamed.pop_front();
      lk.unlock();
      const bool more = on_message(body);
      lk.lock();
      if (!more) {
        // The caller went away; the supervisor's remaining answers are dropped.
        pending_.erase(id);
        return grpc::Status(grpc::StatusCode::CANCELLED, "the stream was abandoned");
      }
    }
    if (p.done) break;
  }
  pending_.erase(id);
  if (p.code != 0) return grpc::Status(grpc::StatusCode(p.code), p.message);
  if (response && !response->ParseFromString(p.body)) return grpc::Status(grpc::StatusCode::INTERNAL, "malformed answer from the supervisor");
  return grpc::Status::OK;
}

grpc::Status SupervisorClient::Call(const std::string& method, const google::protobuf::Message& request,
                                    google::protobuf::Message* response) {
  return CallForFd(method, request, response, nullptr);
}

grpc::Status SupervisorClient::CallForFd(const std::string& method, const google::protobuf::Message& request,
                                         google::protobuf::Message* response, int* fd) {
  if (fd) *fd = -1;
  Pending p;
  // Whatever happens, a descriptor nobody takes is closed.
  struct CloseUntaken {
    Pending& p;
    ~CloseUntaken() {
      if (p.fd >= 0) close(p.fd);
    }
  } close_untaken{p};
  const uint64_t id = Begin(method, request, &p);
  if (id == 0) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "volume server supervisor is gone");
  std::unique_lock lk(mu_);
  const bool answered = cv_.wait_for(lk, kCallTimeout, [&] { return p.done; });
  pending_.erase(id);
  if (!answered) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "volume server supervisor did not answer");
  if (p.code != 0) return grpc::Status(grpc::StatusCode(p.code), p.message);
  if (!response->ParseFromString(p.body)) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot decode supervisor reply");
  if (fd) std::swap(*fd, p.fd);
  return grpc::Status::OK;
}

ipc::ServerStateView SupervisorClient::state() {
  std::lock_guard lk(mu_);
  return state_;
}

}  // namespace kelp
