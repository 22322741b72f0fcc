// Needles of erasure-coded volumes seen from the gRPC worker: where one is
// (the supervisor's .ecx lookup and the local shards it hands over), and
// VolumeNeedleStatus when the supervisor cannot answer from local shards
// alone (a piece of the record is on another server): the needle is then
// read across the holders, as Go does for every EC needle.
// (upstream: weed/server/volume_grpc_admin.go VolumeNeedleStatus, weed/storage/store_ec.go)
#include <memory>

#include "common/ec_client/ec_needle_meta.h"
#include "common/crc32c.h"
#include "common/go_error.h"
#include "common/needle_status.h"
#include "ipc/wire_code.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/volume_service.h"

namespace kelp {

grpc::Status VolumeService::OpenEcNeedleSite(VolumeId vid, NeedleId id, EcNeedleSite* site) {
  site->master = supervisor_->state().master;
  site->vid = vid;
  site->id = id;
  kelp_internal::EcNeedleLocate locate;
  locate.set_volume_id(vid);
  locate.set_needle_id(id);
  if (grpc::Status s = supervisor_->Call("kelp.LocateEcNeedle", locate, &site->where); !s.ok()) return s;
  for (uint32_t shard : site->where.local_shards()) {
    volume_server_pb::VolumeEcShardReadRequest open;
    open.set_volume_id(vid);
    open.set_shard_id(shard);
    open.set_file_key(id);
    open.set_encode_ts_ns(site->where.encode_ts_ns());
    volume_server_pb::VolumeEcShardReadResponse opened;
    int fd = -1;
    const grpc::Status s = supervisor_->CallForFd("kelp.OpenEcShardRead", open, &opened, &fd);
    if (fd >= 0) {
      auto owned = std::make_shared<const OwnedShardFd>(fd);
      site->held[int(shard)] = owned;
      site->local_fd[int(shard)] = fd;
    }
    if (s.ok() && opened.is_deleted()) return GoError("already deleted");
  }  // a shard that would not open is read from its holders
  return grpc::Status::OK;
}

grpc::Status VolumeService::VolumeNeedleStatus(grpc::ServerContext* ctx, const volume_server_pb::VolumeNeedleStatusRequest* req,
                                               volume_server_pb::VolumeNeedleStatusResponse* resp) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeNeedleStatus"); !denied.ok()) return denied;
  grpc::Status s = supervisor_->Call("VolumeNeedleStatus", *req, resp);
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE || s.error_message() != ipc::kEcNeedleElsewhere) return s;
  EcNeedleSite site;
  if (grpc::Status opened = OpenEcNeedleSite(req->volume_id(), req->needle_id(), &site); !opened.ok()) return opened;
  EcNeedleMeta meta;
  std::string error;
  switch (ReadEcNeedleMeta(&ec_peers_, site, &meta, &error)) {
    case EcGathered::kDeleted:
      return GoError("already deleted");
    case EcGathered::kError:
      return GoError(error);
    case EcGathered::kOk:
      break;
  }
  FillNeedleStatus(meta.needle, resp);
  return grpc::Status::OK;
}

}  // namespace kelp
