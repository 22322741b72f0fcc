// BatchDelete. The supervisor deletes from regular volumes, in order; a file
// id whose volume is erasure-coded here (Go looks for an EC volume first) it
// leaves with status 0, and this worker deletes it as Go does: the needle is
// read across the shards' holders (cookie and chunk-manifest checks), then a
// holder of the shard the record starts in journals the delete. EC and
// regular file ids name different volumes, so finishing the EC ones after
// the rest leaves every outcome as Go's sequential walk would.
// (upstream: weed/server/volume_grpc_batch_delete.go, weed/storage/store_ec_delete.go)
#include "common/ec_client/ec_delete.h"
#include "common/ec_client/ec_needle_meta.h"
#include "common/file_id.h"
#include "common/needle.h"
#include "worker-grpc/volume_service.h"

namespace kelp {

grpc::Status VolumeService::BatchDelete(grpc::ServerContext* ctx, const volume_server_pb::BatchDeleteRequest* req,
                                        volume_server_pb::BatchDeleteResponse* resp) {
  if (grpc::Status denied = AdmitAdmin(ctx, "BatchDelete"); !denied.ok()) return denied;
  if (grpc::Status s = supervisor_->Call("BatchDelete", *req, resp); !s.ok()) return s;
  for (volume_server_pb::DeleteResult& r : *resp->mutable_results())
    if (r.status() == 0) DeleteEcNeedle(r.file_id(), req->skip_cookie_check(), &r);
  return grpc::Status::OK;
}

void VolumeService::DeleteEcNeedle(const std::string& fid, bool skip_cookie, volume_server_pb::DeleteResult* r) {
  // Go answers a failed read 404 when it checks the cookie, and 500 from the
  // delete itself (which reads again) when it does not. A needle deleted
  // already is a 404 "already deleted" in the first case; in the second,
  // Go 4.48's delete counts it as 0 bytes deleted: 304, no error.
  const int read_failed = skip_cookie ? 500 : 404;
  auto fail = [r](int status, const std::string& error) {
    r->set_status(status);
    r->set_error(error);
  };
  auto deleted_already = [&] { return skip_cookie ? r->set_status(304) : fail(404, "already deleted"); };
  auto split = SplitFileId(fid);
  auto vid = split.ok() ? ParseVolumeId(split.value().vid) : Result<VolumeId>(split.status());
  auto key = !split.ok() ? Result<NeedleIdCookie>(split.status())
                         : skip_cookie ? ParseNeedleIdCookie(split.value().key) : ParseFidWithDelta(split.value().key);
  if (!vid.ok() || !key.ok()) return fail(400, !vid.ok() ? vid.status().message() : key.status().message());  // the supervisor parsed it already

  EcNeedleSite site;
  if (grpc::Status s = OpenEcNeedleSite(vid.value(), key.value().id, &site); !s.ok())
    return s.error_message() == "already deleted" ? deleted_already() : fail(read_failed, s.error_message());

  EcNeedleMeta meta;
  std::string error;
  switch (ReadEcNeedleMeta(&ec_peers_, site, &meta, &error)) {
    case EcGathered::kDeleted:
      return deleted_already();
    case EcGathered::kError:
      return fail(read_failed, error);
    case EcGathered::kOk:
      break;
  }
  if (!skip_cookie) {
    if (meta.needle.header.cookie != key.value().cookie) return fail(400, "File Random Cookie does not match.");
    if (meta.needle.IsChunkManifest()) return fail(406, "ChunkManifest: not allowed in batch delete mode.");
  }
  error = DeleteOnEcHolders(&ec_peers_, site.master, site.vid, site.where.collection(), site.id, site.where.version(),
                            EcPrimaryShard(site.where));
  if (!error.empty()) return fail(500, error);
  r->set_status(202);
  r->set_size(uint32_t(GoEcDeletedSize(site.where.size(), uint8_t(site.where.version()))));
}

}  // namespace kelp
