// The VolumeServer gRPC service as the gRPC worker serves it. Requests are
// decoded and checked here; anything that reads or changes volumes is
// forwarded to the supervisor, the only process that owns them. Methods kelp
// does not provide yet answer UNIMPLEMENTED naming themselves.
#pragma once
#include <set>
#include <string>

#include "common/server_config.h"
#include "proto/master.pb.h"
#include "proto/volume_server.grpc.pb.h"
#include "worker-grpc/supervisor_client.h"

namespace kelp {

class VolumeService final : public volume_server_pb::VolumeServer::Service {
 public:
  VolumeService(SupervisorClient* supervisor, const ServerConfig* config);

#define KELP_FORWARDED(M)                                                                                 \
  grpc::Status M(grpc::ServerContext*, const volume_server_pb::M##Request* req, volume_server_pb::M##Response* resp) override { \
    return supervisor_->Call(#M, *req, resp);                                                             \
  }
  KELP_FORWARDED(AllocateVolume)
  KELP_FORWARDED(VolumeMount)
  KELP_FORWARDED(VolumeUnmount)
  KELP_FORWARDED(VolumeDelete)
  KELP_FORWARDED(VolumeConfigure)
  KELP_FORWARDED(VolumeStatus)
  KELP_FORWARDED(VolumeServerStatus)
  KELP_FORWARDED(ReadVolumeFileStatus)
  KELP_FORWARDED(VolumeNeedleStatus)
  KELP_FORWARDED(BatchDelete)
  KELP_FORWARDED(DeleteCollection)
  KELP_FORWARDED(GetState)
  KELP_FORWARDED(SetState)
  KELP_FORWARDED(VolumeServerLeave)
#undef KELP_FORWARDED

  grpc::Status VolumeMarkReadonly(grpc::ServerContext*, const volume_server_pb::VolumeMarkReadonlyRequest* req,
                                  volume_server_pb::VolumeMarkReadonlyResponse* resp) override;
  grpc::Status VolumeMarkWritable(grpc::ServerContext*, const volume_server_pb::VolumeMarkWritableRequest* req,
                                  volume_server_pb::VolumeMarkWritableResponse* resp) override;
  grpc::Status Ping(grpc::ServerContext*, const volume_server_pb::PingRequest* req, volume_server_pb::PingResponse* resp) override;

#define KELP_UNIMPLEMENTED(M)                                                                                    \
  grpc::Status M(grpc::ServerContext*, const volume_server_pb::M##Request*, volume_server_pb::M##Response*) override { \
    return Unimplemented(#M);                                                                                     \
  }
#define KELP_UNIMPLEMENTED_STREAM(M)                                                                                         \
  grpc::Status M(grpc::ServerContext*, const volume_server_pb::M##Request*, grpc::ServerWriter<volume_server_pb::M##Response>*) \
      override {                                                                                                             \
    return Unimplemented(#M);                                                                                                \
  }
  KELP_UNIMPLEMENTED(VacuumVolumeCheck)
  KELP_UNIMPLEMENTED(VacuumVolumeCommit)
  KELP_UNIMPLEMENTED(VacuumVolumeCleanup)
  KELP_UNIMPLEMENTED(VolumeSyncStatus)
  KELP_UNIMPLEMENTED(VolumeConsolidateIndex)
  KELP_UNIMPLEMENTED(ReadNeedleBlob)
  KELP_UNIMPLEMENTED(ReadNeedleMeta)
  KELP_UNIMPLEMENTED(WriteNeedleBlob)
  KELP_UNIMPLEMENTED(VolumeTailReceiver)
  KELP_UNIMPLEMENTED(VolumeEcShardsGenerate)
  KELP_UNIMPLEMENTED(VolumeEcShardsRebuild)
  KELP_UNIMPLEMENTED(VolumeEcShardsCopy)
  KELP_UNIMPLEMENTED(VolumeEcShardsDelete)
  KELP_UNIMPLEMENTED(VolumeEcShardsMount)
  KELP_UNIMPLEMENTED(VolumeEcShardsUnmount)
  KELP_UNIMPLEMENTED(VolumeEcBlobDelete)
  KELP_UNIMPLEMENTED(VolumeEcShardsToVolume)
  KELP_UNIMPLEMENTED(VolumeEcShardsInfo)
  KELP_UNIMPLEMENTED(FetchAndWriteNeedle)
  KELP_UNIMPLEMENTED(ScrubVolume)
  KELP_UNIMPLEMENTED(ScrubEcVolume)
  KELP_UNIMPLEMENTED_STREAM(VacuumVolumeCompact)
  KELP_UNIMPLEMENTED_STREAM(VolumeIncrementalCopy)
  KELP_UNIMPLEMENTED_STREAM(VolumeCopy)
  KELP_UNIMPLEMENTED_STREAM(CopyFile)
  KELP_UNIMPLEMENTED_STREAM(ReadAllNeedles)
  KELP_UNIMPLEMENTED_STREAM(VolumeTailSender)
  KELP_UNIMPLEMENTED_STREAM(VolumeEcShardRead)
  KELP_UNIMPLEMENTED_STREAM(VolumeTierMoveDatToRemote)
  KELP_UNIMPLEMENTED_STREAM(VolumeTierMoveDatFromRemote)
#undef KELP_UNIMPLEMENTED
#undef KELP_UNIMPLEMENTED_STREAM

  grpc::Status Query(grpc::ServerContext*, const volume_server_pb::QueryRequest*, grpc::ServerWriter<volume_server_pb::QueriedStripe>*) override {
    return Unimplemented("Query");
  }
  grpc::Status ReceiveFile(grpc::ServerContext*, grpc::ServerReader<volume_server_pb::ReceiveFileRequest>*,
                           volume_server_pb::ReceiveFileResponse*) override {
    return Unimplemented("ReceiveFile");
  }

 private:
  static grpc::Status Unimplemented(const char* method);
  bool IsKnownMaster(const std::string& target);
  grpc::Status NotifyMaster(const master_pb::VolumeShortInformationMessage& v, bool read_only);

  SupervisorClient* supervisor_;
  const ServerConfig* config_;
};

}  // namespace kelp
