// The VolumeServer gRPC service as the gRPC worker serves it. Requests are
// decoded and checked here; anything that reads or changes volumes is
// forwarded to the supervisor, the only process that owns them. Methods kelp
// does not provide yet answer UNIMPLEMENTED naming themselves.
//
// Administrative methods (the ADMIN macros) first check the caller against
// the -whiteList / guard.white_list, as Go 4.48's checkGrpcAdminAuth does, and
// answer PERMISSION_DENIED "not authorized: HOST" to anyone else, before
// anything else is looked at. The ungated ones are those Go 4.48 leaves open:
// calls volume servers make to each other (replica sync, copy and tail
// sources, EC shard reads) and read-only status.
#pragma once
#include <set>
#include <string>

#include "common/ec_client/ec_gather.h"
#include "common/ec_client/ec_peers.h"
#include "common/ip_white_list.h"
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
#define KELP_FORWARDED_ADMIN(M)                                                                                         \
  grpc::Status M(grpc::ServerContext* ctx, const volume_server_pb::M##Request* req, volume_server_pb::M##Response* resp) \
      override {                                                                                                        \
    if (grpc::Status denied = AdmitAdmin(ctx, #M); !denied.ok()) return denied;                                        \
    return supervisor_->Call(#M, *req, resp);                                                                           \
  }
  KELP_FORWARDED_ADMIN(AllocateVolume)
  KELP_FORWARDED_ADMIN(VolumeMount)
  KELP_FORWARDED_ADMIN(VolumeUnmount)
  KELP_FORWARDED_ADMIN(VolumeDelete)
  KELP_FORWARDED_ADMIN(VolumeConfigure)
  KELP_FORWARDED(VolumeStatus)
  KELP_FORWARDED(VolumeServerStatus)
  KELP_FORWARDED(ReadVolumeFileStatus)
  KELP_FORWARDED_ADMIN(DeleteCollection)
  KELP_FORWARDED(GetState)
  KELP_FORWARDED(VolumeSyncStatus)
  KELP_FORWARDED(VacuumVolumeCheck)
  KELP_FORWARDED_ADMIN(VacuumVolumeCommit)
  KELP_FORWARDED_ADMIN(VacuumVolumeCleanup)
  KELP_FORWARDED(ReadNeedleBlob)
  KELP_FORWARDED(ReadNeedleMeta)
  KELP_FORWARDED(WriteNeedleBlob)
  KELP_FORWARDED_ADMIN(SetState)
  KELP_FORWARDED_ADMIN(VolumeServerLeave)
  KELP_FORWARDED_ADMIN(VolumeConsolidateIndex)
  KELP_FORWARDED(VolumeEcShardsMount)
  KELP_FORWARDED_ADMIN(VolumeEcShardsUnmount)
  KELP_FORWARDED_ADMIN(VolumeEcShardsDelete)
  KELP_FORWARDED(VolumeEcShardsInfo)
  KELP_FORWARDED(VolumeEcBlobDelete)
#undef KELP_FORWARDED
#undef KELP_FORWARDED_ADMIN

  grpc::Status VolumeMarkReadonly(grpc::ServerContext* ctx, const volume_server_pb::VolumeMarkReadonlyRequest* req,
                                  volume_server_pb::VolumeMarkReadonlyResponse* resp) override;
  grpc::Status VolumeMarkWritable(grpc::ServerContext* ctx, const volume_server_pb::VolumeMarkWritableRequest* req,
                                  volume_server_pb::VolumeMarkWritableResponse* resp) override;
  grpc::Status Ping(grpc::ServerContext*, const volume_server_pb::PingRequest* req, volume_server_pb::PingResponse* resp) override;
  grpc::Status VacuumVolumeCompact(grpc::ServerContext* ctx, const volume_server_pb::VacuumVolumeCompactRequest* req,
                                   grpc::ServerWriter<volume_server_pb::VacuumVolumeCompactResponse>* writer) override;
  grpc::Status CopyFile(grpc::ServerContext* ctx, const volume_server_pb::CopyFileRequest* req,
                        grpc::ServerWriter<volume_server_pb::CopyFileResponse>* writer) override;
  // ec_needles.cc
  grpc::Status VolumeNeedleStatus(grpc::ServerContext* ctx, const volume_server_pb::VolumeNeedleStatusRequest* req,
                                  volume_server_pb::VolumeNeedleStatusResponse* resp) override;
  // batch_delete.cc
  grpc::Status BatchDelete(grpc::ServerContext* ctx, const volume_server_pb::BatchDeleteRequest* req,
                           volume_server_pb::BatchDeleteResponse* resp) override;
  // volume_copy.cc
  grpc::Status VolumeCopy(grpc::ServerContext* ctx, const volume_server_pb::VolumeCopyRequest* req,
                          grpc::ServerWriter<volume_server_pb::VolumeCopyResponse>* writer) override;
  // volume_streams.cc
  grpc::Status ReadAllNeedles(grpc::ServerContext* ctx, const volume_server_pb::ReadAllNeedlesRequest* req,
                              grpc::ServerWriter<volume_server_pb::ReadAllNeedlesResponse>* writer) override;
  grpc::Status VolumeIncrementalCopy(grpc::ServerContext* ctx, const volume_server_pb::VolumeIncrementalCopyRequest* req,
                                     grpc::ServerWriter<volume_server_pb::VolumeIncrementalCopyResponse>* writer) override;
  // volume_scrub.cc
  grpc::Status ScrubVolume(grpc::ServerContext* ctx, const volume_server_pb::ScrubVolumeRequest* req,
                           volume_server_pb::ScrubVolumeResponse* resp) override;
  grpc::Status ScrubEcVolume(grpc::ServerContext* ctx, const volume_server_pb::ScrubEcVolumeRequest* req,
                             volume_server_pb::ScrubEcVolumeResponse* resp) override;
  // volume_ec.cc
  grpc::Status VolumeEcShardsGenerate(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsGenerateRequest* req,
                                      volume_server_pb::VolumeEcShardsGenerateResponse* resp) override;
  grpc::Status VolumeEcShardsRebuild(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsRebuildRequest* req,
                                     volume_server_pb::VolumeEcShardsRebuildResponse* resp) override;
  grpc::Status VolumeEcShardsToVolume(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsToVolumeRequest* req,
                                      volume_server_pb::VolumeEcShardsToVolumeResponse* resp) override;
  grpc::Status VolumeEcShardRead(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardReadRequest* req,
                                 grpc::ServerWriter<volume_server_pb::VolumeEcShardReadResponse>* writer) override;
  grpc::Status VolumeEcShardsCopy(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsCopyRequest* req,
                                  volume_server_pb::VolumeEcShardsCopyResponse* resp) override;
  // volume_tail.cc
  grpc::Status VolumeTailSender(grpc::ServerContext* ctx, const volume_server_pb::VolumeTailSenderRequest* req,
                                grpc::ServerWriter<volume_server_pb::VolumeTailSenderResponse>* writer) override;
  grpc::Status VolumeTailReceiver(grpc::ServerContext* ctx, const volume_server_pb::VolumeTailReceiverRequest* req,
                                  volume_server_pb::VolumeTailReceiverResponse* resp) override;

#define KELP_UNIMPLEMENTED(M)                                                                                    \
  grpc::Status M(grpc::ServerContext*, const volume_server_pb::M##Request*, volume_server_pb::M##Response*) override { \
    return Unimplemented(#M);                                                                                     \
  }
#define KELP_UNIMPLEMENTED_STREAM(M)                                                                                         \
  grpc::Status M(grpc::ServerContext*, const volume_server_pb::M##Request*, grpc::ServerWriter<volume_server_pb::M##Response>*) \
      override {                                                                                                             \
    return Unimplemented(#M);                                                                                                \
  }
#define KELP_UNIMPLEMENTED_ADMIN(M)                                                                                      \
  grpc::Status M(grpc::ServerContext* ctx, const volume_server_pb::M##Request*, volume_server_pb::M##Response*) override { \
    if (grpc::Status denied = AdmitAdmin(ctx, #M); !denied.ok()) return denied;                                         \
    return Unimplemented(#M);                                                                                            \
  }
#define KELP_UNIMPLEMENTED_ADMIN_STREAM(M)                                                                                  \
  grpc::Status M(grpc::ServerContext* ctx, const volume_server_pb::M##Request*,                                            \
                 grpc::ServerWriter<volume_server_pb::M##Response>*) override {                                            \
    if (grpc::Status denied = AdmitAdmin(ctx, #M); !denied.ok()) return denied;                                            \
    return Unimplemented(#M);                                                                                               \
  }
  KELP_UNIMPLEMENTED_ADMIN(FetchAndWriteNeedle)
  KELP_UNIMPLEMENTED_ADMIN_STREAM(VolumeTierMoveDatToRemote)
  KELP_UNIMPLEMENTED_ADMIN_STREAM(VolumeTierMoveDatFromRemote)
#undef KELP_UNIMPLEMENTED
#undef KELP_UNIMPLEMENTED_STREAM
#undef KELP_UNIMPLEMENTED_ADMIN
#undef KELP_UNIMPLEMENTED_ADMIN_STREAM

  // volume_query.cc
  grpc::Status Query(grpc::ServerContext* ctx, const volume_server_pb::QueryRequest* req,
                     grpc::ServerWriter<volume_server_pb::QueriedStripe>* writer) override;
  // receive_file.cc
  grpc::Status ReceiveFile(grpc::ServerContext* ctx, grpc::ServerReader<volume_server_pb::ReceiveFileRequest>* reader,
                           volume_server_pb::ReceiveFileResponse* resp) override;

 private:
  static grpc::Status Unimplemented(const char* method);
  // A stub for a copy or tail source, once Go 4.48's guard lets it be dialled
  // (else "invalid source <what> <node>: <why>").
  grpc::Status DialSource(const std::string& node, const char* what, std::unique_ptr<volume_server_pb::VolumeServer::Stub>* stub) const;
  // OK for a caller on the white list (everyone when it is empty).
  grpc::Status AdmitAdmin(const grpc::ServerContext* ctx, const char* method) const;
  bool IsKnownMaster(const std::string& target);
  grpc::Status NotifyMaster(const master_pb::VolumeShortInformationMessage& v, bool read_only);
  // batch_delete.cc: one file id of a batch that names an EC volume here.
  void DeleteEcNeedle(const std::string& fid, bool skip_cookie, volume_server_pb::DeleteResult* result);
  // ec_needles.cc: where needle `id` of EC volume `vid` is, with the local
  // shards opened (the supervisor's texts on failure: "already deleted", ...).
  grpc::Status OpenEcNeedleSite(VolumeId vid, NeedleId id, EcNeedleSite* site);

  SupervisorClient* supervisor_;
  const ServerConfig* config_;
  const IpWhiteList admin_white_list_;
  EcPeers ec_peers_;  // thread-safe: gRPC handler threads share it
};

}  // namespace kelp
