// VolumeCopy, the target side: this worker reads the source's status, pulls
// its .dat, .idx and .vif with CopyFile, and writes them into files the
// supervisor created and handed over write-only. The supervisor checks the
// result and mounts it; nothing the peer sends is parsed in the supervisor
// before its own load checks. (upstream: weed/server/volume_grpc_copy.go;
// docs/copy-and-tail.md §3)
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "common/file_util.h"
#include "common/go_error.h"
#include "common/log.h"
#include "common/throttle.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/peer_guard.h"
#include "worker-grpc/volume_service.h"

namespace kelp {
namespace {

constexpr uint64_t kProgressStep = 128ull << 20;

}  // namespace

grpc::Status VolumeService::VolumeCopy(grpc::ServerContext* ctx, const volume_server_pb::VolumeCopyRequest* req,
                                       grpc::ServerWriter<volume_server_pb::VolumeCopyResponse>* writer) {
  if (grpc::Status denied = AdmitAdmin(ctx, "VolumeCopy"); !denied.ok()) return denied;
  // Maintenance mode refuses before the source is looked at (Go's order).
  {
    kelp_internal::Nothing none;
    if (grpc::Status s = supervisor_->Call("kelp.CheckMaintenance", none, &none); !s.ok()) return s;
  }
  const uint32_t vid = req->volume_id();
  const std::string& node = req->source_data_node();
  std::unique_ptr<volume_server_pb::VolumeServer::Stub> stub;
  if (grpc::Status s = DialSource(node, "data node", &stub); !s.ok()) return s;
  volume_server_pb::ReadVolumeFileStatusRequest status_req;
  status_req.set_volume_id(vid);
  volume_server_pb::ReadVolumeFileStatusResponse status;
  {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(1));
    if (grpc::Status s = stub->ReadVolumeFileStatus(&c, status_req, &status); !s.ok())
      return GoError("read volume file status failed, " + GoRpcError(s));
  }
  if (status.volume_info().files_size() > 0) return GoError("volume " + std::to_string(vid) + " is tiered to remote storage, which kelp does not copy");

  kelp_internal::VolumeCopyBegin begin;
  begin.set_volume_id(vid);
  begin.set_collection(status.collection());
  begin.set_disk_type(req->disk_type().empty() ? status.disk_type() : req->disk_type());
  begin.set_dat_size(status.dat_file_size());
  begin.set_idx_size(status.idx_file_size());
  begin.set_source(node);
  kelp_internal::VolumeCopyPlaced placed;
  if (grpc::Status s = supervisor_->Call("kelp.BeginVolumeCopy", begin, &placed); !s.ok()) return s;

  kelp_internal::VolumeCopyFinish finish;
  finish.set_volume_id(vid);
  auto undo = [&](const std::string& why) {
    finish.set_error(why);
    volume_server_pb::VolumeCopyResponse ignored;
    supervisor_->Call("kelp.FinishVolumeCopy", finish, &ignored);
    return GoError(why);
  };
  Throttle throttle(req->io_byte_per_second() > 0 ? req->io_byte_per_second() : config_->maintenance_bytes_per_second);
  uint64_t threshold = kProgressStep;
  // One file: "" when pulled (or absent at the source), else Go's text.
  auto pull = [&](const std::string& ext, uint64_t stop_offset, bool ignore_missing, bool* present) -> std::string {
    const std::string base = (ext == ".idx" ? placed.idx_base() : placed.data_base()) + ext;
    kelp_internal::VolumeCopyOpen open_req;
    open_req.set_volume_id(vid);
    open_req.set_ext(ext);
    kelp_internal::VolumeCopyOpened opened;
    int fd = -1;
    if (grpc::Status s = supervisor_->CallForFd("kelp.OpenCopyTarget", open_req, &opened, &fd); !s.ok() || fd < 0)
      return s.ok() ? "no file to write " + base : s.error_message();
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{fd};
    volume_server_pb::CopyFileRequest copy;
    copy.set_volume_id(vid);
    copy.set_ext(ext);
    copy.set_compaction_revision(status.compaction_revision());
    copy.set_stop_offset(stop_offset);
    copy.set_collection(status.collection());
    copy.set_ignore_source_file_not_found(ignore_missing);
    grpc::ClientContext c;
    auto reader = stub->CopyFile(&c, copy);
    volume_server_pb::CopyFileResponse msg;
    uint64_t at = 0;
    int64_t modified_ns = 0;
    while (reader->Read(&msg)) {
      if (msg.modified_ts_ns() != 0) modified_ns = msg.modified_ts_ns();
      const std::string& bytes = msg.file_content();
      if (!bytes.empty()) {
        if (Status w = PwriteFull(fd, bytes.data(), bytes.size(), off_t(at)); !w.ok()) {
          c.TryCancel();
          return "failed to copy " + base + " file: write file " + opened.path() + ": " + w.message();
        }
        at += bytes.size();
        throttle.Add(bytes.size());
      }
      if (ext == ".dat" && at > threshold) {
        threshold = at + kProgressStep;
        volume_server_pb::VolumeCopyResponse progress;
        progress.set_processed_bytes(int64_t(at));
        if (!writer->Write(progress) || ctx->IsCancelled()) {
          c.TryCancel();
          return "failed to copy " + base + " file: interrupted copy operation";
        }
      }
    }
    if (grpc::Status s = reader->Finish(); !s.ok()) return "failed to copy " + base + " file: receiving " + opened.path() + ": " + GoRpcError(s);
    *present = modified_ns != 0;  // Go: a file no message dated was not at the source
    if (*present) {
      const timespec times[2] = {{modified_ns / 1000000000, modified_ns % 1000000000}, {modified_ns / 1000000000, modified_ns % 1000000000}};
      futimens(fd, times);
    }
    if (fdatasync(fd) != 0) return "failed to copy " + base + " file: sync " + opened.path() + ": " + std::strerror(errno);
    return "";
  };
  bool has_dat = false, has_idx = false, has_vif = false;
  if (std::string e = pull(".dat", status.dat_file_size(), true, &has_dat); !e.empty()) return undo(e);
  if (std::string e = pull(".idx", status.idx_file_size(), false, &has_idx); !e.empty()) return undo(e);
  if (std::string e = pull(".vif", 1 << 20, true, &has_vif); !e.empty()) return undo(e);

  finish.set_has_dat(has_dat);
  finish.set_has_idx(has_idx);
  finish.set_has_vif(has_vif);
  finish.set_dat_size(status.dat_file_size());
  finish.set_idx_size(status.idx_file_size());
  finish.set_dat_timestamp_seconds(status.dat_file_timestamp_seconds());
  volume_server_pb::VolumeCopyResponse done;
  if (grpc::Status s = supervisor_->Call("kelp.FinishVolumeCopy", finish, &done); !s.ok()) return s;
  writer->Write(done);
  return grpc::Status::OK;
}

}  // namespace kelp
