// Erasure coding calls. The work is the supervisor's (a job process does the
// encoding); these wait for it without a deadline, since an encode takes as
// long as reading the volume does. Shard reads stream here from a descriptor
// the supervisor hands over after its checks, and shard copies pull from the
// peer here into files the supervisor created.
// (upstream: weed/server/volume_grpc_erasure_coding.go; docs/erasure-coding.md §7, §10)
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/ec_layout.h"
#include "common/rs_codec.h"
#include "common/file_util.h"
#include "common/go_error.h"
#include "common/throttle.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/peer_guard.h"
#include "worker-grpc/volume_files.h"
#include "worker-grpc/volume_service.h"

namespace kelp {
namespace {

constexpr int64_t kShardReadPiece = 2 << 20;  // Go's BufferSizeLimit

}  // namespace

grpc::Status VolumeService::VolumeEcShardsGenerate(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsGenerateRequest* req,
                                                   volume_server_pb::VolumeEcShardsGenerateResponse*) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeEcShardsGenerate"); !denied.ok()) return denied;
  return supervisor_->CallStream("VolumeEcShardsGenerate", *req, [](const std::string&) { return true; });
}

grpc::Status VolumeService::VolumeEcShardsRebuild(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsRebuildRequest* req,
                                                  volume_server_pb::VolumeEcShardsRebuildResponse* resp) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeEcShardsRebuild"); !denied.ok()) return denied;
  return supervisor_->CallStream("VolumeEcShardsRebuild", *req, [](const std::string&) { return true; }, resp);
}

grpc::Status VolumeService::VolumeEcShardsToVolume(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsToVolumeRequest* req,
                                                   volume_server_pb::VolumeEcShardsToVolumeResponse* resp) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeEcShardsToVolume"); !denied.ok()) return denied;
  return supervisor_->CallStream("VolumeEcShardsToVolume", *req, [](const std::string&) { return true; }, resp);
}

grpc::Status VolumeService::VolumeEcShardRead(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardReadRequest* req,
                                              grpc::ServerWriter<volume_server_pb::VolumeEcShardReadResponse>* writer) {
  volume_server_pb::VolumeEcShardReadResponse opened;
  OwnedFd shard;
  if (grpc::Status s = supervisor_->CallForFd("kelp.OpenEcShardRead", *req, &opened, &shard.fd); !s.ok()) return s;
  if (opened.is_deleted()) {
    writer->Write(opened);
    return grpc::Status::OK;
  }
  if (shard.fd < 0 || req->size() <= 0) return grpc::Status::OK;
  int64_t offset = req->offset(), left = req->size();
  volume_server_pb::VolumeEcShardReadResponse piece;
  piece.set_encode_ts_ns(opened.encode_ts_ns());
  std::string& buf = *piece.mutable_data();
  while (left > 0 && !ctx->IsCancelled()) {
    buf.resize(size_t(std::min(left, kShardReadPiece)));
    size_t got = 0;
    while (got < buf.size()) {
      const ssize_t n = pread(shard.fd, buf.data() + got, buf.size() - got, off_t(offset) + off_t(got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return GoError(std::string("read ec shard: ") + std::strerror(errno));
      if (n == 0) break;
      got += size_t(n);
    }
    if (got == 0) break;  // past the end: what was read is all there is
    buf.resize(got);
    if (!writer->Write(piece)) break;
    if (got < size_t(std::min(left, kShardReadPiece))) break;
    offset += int64_t(got), left -= int64_t(got);
  }
  return grpc::Status::OK;
}

grpc::Status VolumeService::VolumeEcShardsCopy(grpc::ServerContext* ctx, const volume_server_pb::VolumeEcShardsCopyRequest* req,
                                               volume_server_pb::VolumeEcShardsCopyResponse*) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeEcShardsCopy"); !denied.ok()) return denied;
  const uint32_t vid = req->volume_id();
  const std::string prefix = "VolumeEcShardsCopy volume " + std::to_string(vid) + ": ";
  kelp_internal::EcCopyPlace place;
  place.set_volume_id(vid);
  place.set_collection(req->collection());
  place.set_disk_id(req->disk_id());
  kelp_internal::EcCopyPlaced placed;
  if (grpc::Status s = supervisor_->Call("kelp.PlaceEcCopy", place, &placed); !s.ok()) return s;
  std::unique_ptr<volume_server_pb::VolumeServer::Stub> stub;
  if (grpc::Status s = DialSource(req->source_data_node(), "data node", &stub); !s.ok()) return GoError(prefix + s.error_message());
  Throttle throttle(req->io_byte_per_second() > 0 ? req->io_byte_per_second() : config_->maintenance_bytes_per_second);

  // One file: "" when pulled (or absent at the source and optional), else Go's text.
  auto pull = [&](const std::string& ext, bool optional) -> std::string {
    kelp_internal::EcCopyOpen open_req;
    open_req.set_volume_id(vid);
    open_req.set_collection(req->collection());
    open_req.set_location(placed.location());
    open_req.set_ext(ext);
    kelp_internal::EcCopyOpened opened;
    OwnedFd file;
    if (grpc::Status s = supervisor_->CallForFd("kelp.OpenEcCopyTarget", open_req, &opened, &file.fd); !s.ok() || file.fd < 0)
      return s.ok() ? "no file to write for " + ext : s.error_message();
    bool present = false, failed = true;
    auto finish = [&] {
      file.Reset();
      kelp_internal::EcCopyFinish f;
      f.set_path(opened.path());
      f.set_failed(failed);
      f.set_present(present);
      kelp_internal::EcCopyFinished ignored;
      return supervisor_->Call("kelp.FinishEcCopyTarget", f, &ignored);
    };
    volume_server_pb::CopyFileRequest copy;
    copy.set_volume_id(vid);
    copy.set_ext(ext);
    copy.set_collection(req->collection());
    copy.set_is_ec_volume(true);
    copy.set_compaction_revision(UINT32_MAX);
    copy.set_stop_offset(uint64_t(INT64_MAX));
    copy.set_ignore_source_file_not_found(optional);
    grpc::ClientContext c;
    auto reader = stub->CopyFile(&c, copy);
    volume_server_pb::CopyFileResponse msg;
    uint64_t at = 0;
    while (reader->Read(&msg)) {
      if (msg.modified_ts_ns() != 0) present = true;
      const std::string& bytes = msg.file_content();
      if (bytes.empty()) continue;
      present = true;
      if (Status w = PwriteFull(file.fd, bytes.data(), bytes.size(), off_t(at)); !w.ok()) {
        c.TryCancel();
        reader->Finish();
        finish();
        return "failed to copy " + opened.path() + " file: write " + opened.path() + ": " + w.message();
      }
      at += bytes.size();
      throttle.Add(bytes.size());
      if (ctx->IsCancelled()) {
        c.TryCancel();
        reader->Finish();
        finish();
        return "failed to copy " + opened.path() + " file: interrupted copy operation";
      }
    }
    if (grpc::Status s = reader->Finish(); !s.ok()) {
      finish();
      if (at == 0 && !present) return "failed to start copying volume " + std::to_string(vid) + " " + ext + " file: " + GoRpcError(s);
      return "failed to copy " + opened.path() + " file: receiving " + opened.path() + ": " + GoRpcError(s);
    }
    if (present && fdatasync(file.fd) != 0) {
      const std::string why = std::strerror(errno);
      finish();
      return "failed to copy " + opened.path() + " file: sync " + opened.path() + ": " + why;
    }
    failed = false;
    if (grpc::Status s = finish(); !s.ok()) return s.error_message();
    return "";
  };
  for (uint32_t shard : req->shard_ids()) {
    if (shard >= uint32_t(kMaxEcShards)) return GoError(prefix + "invalid shard id " + std::to_string(shard));
    if (std::string e = pull(EcShardExt(int(shard)), false); !e.empty()) return GoError(prefix + e);
  }
  if (req->copy_ecx_file()) {
    if (std::string e = pull(".ecx", false); !e.empty()) return GoError(prefix + e);
  }
  if (req->copy_ecj_file()) {
    if (std::string e = pull(".ecj", true); !e.empty()) return GoError(prefix + e);
  }
  if (req->copy_vif_file()) {
    if (std::string e = pull(".vif", true); !e.empty()) return GoError(prefix + e);
  }
  if (req->copy_ecsum_file()) {
    if (std::string e = pull(".ecsum", true); !e.empty()) return GoError(prefix + "copy .ecsum sidecar: " + e);
  }
  return grpc::Status::OK;
}

}  // namespace kelp
