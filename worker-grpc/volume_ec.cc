// Erasure coding calls. The work is the supervisor's (a job process does the
// encoding); these wait for it without a deadline, since an encode takes as
// long as reading the volume does.
#include "worker-grpc/volume_service.h"

namespace kelp {

grpc::Status VolumeService::VolumeEcShardsGenerate(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsGenerateRequest* req,
                                                   volume_server_pb::VolumeEcShardsGenerateResponse*) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeEcShardsGenerate"); !denied.ok()) return denied;
  return supervisor_->CallStream("VolumeEcShardsGenerate", *req, [](const std::string&) { return true; });
}

}  // namespace kelp
