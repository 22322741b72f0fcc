#include "worker-grpc/volume_service.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "common/collection_name.h"
#include "common/go_error.h"
#include "common/go_quote.h"
#include "common/grpc_peer.h"
#include "common/log.h"
#include "proto/master.grpc.pb.h"
#include "worker-grpc/peer_guard.h"

namespace kelp {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr auto kPingTimeout = std::chrono::seconds(10);



}  // namespace

VolumeService::VolumeService(SupervisorClient* supervisor, const ServerConfig* config)
    : supervisor_(supervisor), config_(config), admin_white_list_(config->security.white_list) {}

grpc::Status VolumeService::AdmitAdmin(const grpc::ServerContext* ctx, const char* method) const {
  if (admin_white_list_.empty()) return grpc::Status::OK;
  const std::string peer = ctx->peer();
  if (peer.empty()) {
    KLOG_WARN("gRPC %s refused: no peer info", method);
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no peer info");
  }
  const std::string host = GrpcPeerHost(peer);
  if (admin_white_list_.Allows(host)) return grpc::Status::OK;
  KLOG_WARN("gRPC %s refused: %s is not white-listed (peer %s)", method, host.c_str(), peer.c_str());
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not authorized: " + host);
}

grpc::Status VolumeService::Unimplemented(const char* method) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, std::string("kelp does not implement VolumeServer/") + method + " yet");
}

grpc::Status VolumeService::NotifyMaster(const master_pb::VolumeShortInformationMessage& v, bool read_only) {
  const std::string master = supervisor_->state().master;
  auto fail = [&](const std::string& why) {
    return grpc::Status(grpc::StatusCode::UNKNOWN, "grpc VolumeMarkReadonly with master " + master + ": set volume " +
                                                       std::to_string(v.id()) + " to read only on master: " + why);
  };
  if (master.empty()) return fail("no master");
  auto stub = master_pb::Seaweed::NewStub(grpc::CreateChannel(MasterGrpcAddress(master), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kPingTimeout);
  master_pb::VolumeMarkReadonlyRequest req;
  req.set_ip(config_->ip);
  req.set_port(uint32_t(config_->port));
  req.set_volume_id(v.id());
  req.set_collection(v.collection());
  req.set_replica_placement(v.replica_placement());
  req.set_ttl(v.ttl());
  req.set_disk_type(v.disk_type());
  req.set_is_readonly(read_only);
  master_pb::VolumeMarkReadonlyResponse resp;
  const grpc::Status s = stub->VolumeMarkReadonly(&ctx, req, &resp);
  return s.ok() ? s : fail(s.error_message());
}

// Go's order: the master first stops assigning writes to the volume, then the
// volume turns read-only here, then the master is told again (it may have
// heard an older heartbeat in between).
grpc::Status VolumeService::VolumeMarkReadonly(grpc::ServerContext* ctx, const volume_server_pb::VolumeMarkReadonlyRequest* req,
                                               volume_server_pb::VolumeMarkReadonlyResponse* resp) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeMarkReadonly"); !denied.ok()) return denied;
  volume_server_pb::VolumeStatusRequest which;
  which.set_volume_id(req->volume_id());
  master_pb::VolumeShortInformationMessage info;
  if (grpc::Status s = supervisor_->Call("kelp.VolumeShortInfo", which, &info); !s.ok()) return s;
  // Go 4.48 marks volumes read-only in maintenance mode too.
  if (grpc::Status s = NotifyMaster(info, true); !s.ok()) return s;
  if (grpc::Status s = supervisor_->Call("VolumeMarkReadonly", *req, resp); !s.ok()) return s;
  return NotifyMaster(info, true);
}

grpc::Status VolumeService::VolumeMarkWritable(grpc::ServerContext* ctx, const volume_server_pb::VolumeMarkWritableRequest* req,
                                               volume_server_pb::VolumeMarkWritableResponse* resp) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeMarkWritable"); !denied.ok()) return denied;
  volume_server_pb::VolumeStatusRequest which;
  which.set_volume_id(req->volume_id());
  master_pb::VolumeShortInformationMessage info;
  if (grpc::Status s = supervisor_->Call("kelp.VolumeShortInfo", which, &info); !s.ok()) return s;
  if (grpc::Status s = supervisor_->Call("VolumeMarkWritable", *req, resp); !s.ok()) return s;
  return NotifyMaster(info, false);
}

bool VolumeService::IsKnownMaster(const std::string& target) {
  if (target.empty()) return false;
  const ipc::ServerStateView st = supervisor_->state();
  if (!st.master.empty() && st.master == target) return true;
  for (const auto& m : config_->masters)
    if (m == target) return true;
  return false;
}

grpc::Status VolumeService::Ping(grpc::ServerContext*, const volume_server_pb::PingRequest* req, volume_server_pb::PingResponse* resp) {
  resp->set_start_time_ns(NowNs());
  if (req->target().empty()) {
    resp->set_stop_time_ns(NowNs());
    return grpc::Status::OK;
  }
  // Only masters this server knows may be pinged: the call must not become a
  // way to make the server connect to arbitrary addresses.
  if (req->target_type() != "master" || !IsKnownMaster(req->target())) {
    resp->set_stop_time_ns(NowNs());
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "unknown ping target " + req->target() + " of type " + req->target_type());
  }
  auto channel = grpc::CreateChannel(MasterGrpcAddress(req->target()), grpc::InsecureChannelCredentials());
  auto stub = master_pb::Seaweed::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kPingTimeout);
  master_pb::PingRequest mreq;
  master_pb::PingResponse mresp;
  const grpc::Status s = stub->Ping(&ctx, mreq, &mresp);
  resp->set_remote_time_ns(mresp.start_time_ns());
  resp->set_stop_time_ns(NowNs());
  if (!s.ok()) return grpc::Status(grpc::StatusCode::UNKNOWN, "ping " + req->target_type() + " " + req->target() + ": " + s.error_message());
  return grpc::Status::OK;
}

// The copy runs in the supervisor; its progress messages are relayed as they
// come. A caller that goes away stops the relay, not the copy.
grpc::Status VolumeService::VacuumVolumeCompact(grpc::ServerContext* ctx, const volume_server_pb::VacuumVolumeCompactRequest* req,
                                                grpc::ServerWriter<volume_server_pb::VacuumVolumeCompactResponse>* writer) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VacuumVolumeCompact"); !denied.ok()) return denied;
  return supervisor_->CallStream("VacuumVolumeCompact", *req, [&](const std::string& body) {
    volume_server_pb::VacuumVolumeCompactResponse msg;
    if (!msg.ParseFromString(body)) return true;
    return writer->Write(msg);
  });
}

// A copy source: the supervisor checks and opens the file read-only, this
// worker streams it in Go's 2 MiB chunks. Open to every caller, as in Go:
// volume servers call it on each other.
grpc::Status VolumeService::DialSource(const std::string& node, const char* what,
                                       std::unique_ptr<volume_server_pb::VolumeServer::Stub>* stub) const {
  if (!config_->allow_untrusted_remote_endpoints)
    if (const std::string why = BlockedPeerAddress(node); !why.empty())
      return GoError(std::string("invalid source ") + what + " " + node + ": " + why);
  *stub = volume_server_pb::VolumeServer::NewStub(grpc::CreateChannel(MasterGrpcAddress(node), grpc::InsecureChannelCredentials()));
  return grpc::Status::OK;
}

grpc::Status VolumeService::CopyFile(grpc::ServerContext*, const volume_server_pb::CopyFileRequest* req,
                                     grpc::ServerWriter<volume_server_pb::CopyFileResponse>* writer) {
  if (!IsVolumeFileExtension(req->ext())) return grpc::Status(grpc::StatusCode::UNKNOWN, "invalid file extension " + GoQuote(req->ext()));
  if (!IsSafeCollectionName(req->collection()))
    return grpc::Status(grpc::StatusCode::UNKNOWN, "invalid collection " + GoQuote(req->collection()));
  volume_server_pb::CopyFileResponse opened;
  int fd = -1;
  if (grpc::Status s = supervisor_->CallForFd("kelp.OpenVolumeFile", *req, &opened, &fd); !s.ok()) return s;
  if (fd < 0) return grpc::Status::OK;  // absent, and the caller said that is fine
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  // Go converts stop_offset to a signed count: 2^63 and above sends no content.
  const uint64_t want = req->stop_offset() > uint64_t(INT64_MAX) ? 0 : req->stop_offset();
  constexpr size_t kChunk = 2 << 20;
  std::string buf(kChunk, '\0');
  uint64_t sent = 0;
  bool first = true;
  while (sent < want) {
    const ssize_t n = pread(fd, buf.data(), kChunk, off_t(sent));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return grpc::Status(grpc::StatusCode::UNKNOWN, std::string("read: ") + std::strerror(errno));
    if (n == 0) break;  // the end of the file before stop_offset: the caller checks the size
    const size_t take = size_t(std::min<uint64_t>(uint64_t(n), want - sent));
    volume_server_pb::CopyFileResponse msg;
    msg.set_file_content(buf.data(), take);
    if (first) msg.set_modified_ts_ns(opened.modified_ts_ns());
    first = false;
    if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "the receiver went away");
    sent += take;
  }
  if (first) {
    // Nothing to send: one message still says the file exists, and when it changed.
    volume_server_pb::CopyFileResponse msg;
    msg.set_modified_ts_ns(opened.modified_ts_ns());
    writer->Write(msg);
  }
  return grpc::Status::OK;
}

}  // namespace kelp
