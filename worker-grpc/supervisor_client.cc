#include "worker-grpc/supervisor_client.h"

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
    case ipc::MsgType::kAdminReply: {
      ipc::AdminReply r;
      std::string body;
      if (!m.AsPrefix(&r) || m.payload.size() < sizeof r + r.message_length || !ipc::ReadBulk(m, sizeof r + r.message_length, &body)) {
        KLOG_ERROR("malformed reply from the supervisor");
        return;
      }
      std::lock_guard lk(mu_);
      auto it = pending_.find(m.header.request_id);
      if (it == pending_.end()) return;
      it->second->done = true;
      it->second->code = r.grpc_code;
      it->second->message = m.payload.substr(sizeof r, r.message_length);
      it->second->body = std::move(body);
      cv_.notify_all();
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

grpc::Status SupervisorClient::Call(const std::string& method, const google::protobuf::Message& request,
                                    google::protobuf::Message* response) {
  std::string body;
  if (!request.SerializeToString(&body)) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot encode request");
  Pending p;
  uint64_t id;
  {
    std::lock_guard lk(mu_);
    if (lost_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "volume server supervisor is gone");
    id = next_id_++;
    pending_[id] = &p;
  }
  ipc::AdminRequest req{uint32_t(method.size()), 0};
  std::string fixed(reinterpret_cast<const char*>(&req), sizeof req);
  fixed.append(method);
  const bool sent = SendBlocking(ipc::MsgType::kAdminRequest, id, fixed, body);
  std::unique_lock lk(mu_);
  const bool answered = sent && cv_.wait_for(lk, kCallTimeout, [&] { return p.done; });
  pending_.erase(id);
  if (!answered) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "volume server supervisor did not answer");
  if (p.code != 0) return grpc::Status(grpc::StatusCode(p.code), p.message);
  if (!response->ParseFromString(p.body)) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot decode supervisor reply");
  return grpc::Status::OK;
}

ipc::ServerStateView SupervisorClient::state() {
  std::lock_guard lk(mu_);
  return state_;
}

}  // namespace kelp
