// Copy sources: the files of a mounted volume, opened read-only and handed to
// the gRPC worker, which streams them (CopyFile). The supervisor decides
// which file and checks Go's preconditions; the bytes never pass through it.
// (upstream: weed/server/volume_grpc_copy.go; docs/copy-and-tail.md §2)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "supervisor/admin_service.h"

namespace kelp {
namespace {

grpc::Status Unknown(const std::string& message) { return grpc::Status(grpc::StatusCode::UNKNOWN, message); }

// Go keeps these beside the .idx (in -dir.idx); every other file beside the .dat.
bool LivesInIdxDir(const std::string& ext) {
  return ext == ".idx" || ext == ".cpx" || ext == ".ldb" || ext == ".cpldb" || ext == ".rdb";
}

constexpr uint32_t kAnyRevision = 0xFFFFFFFFu;

}  // namespace

void AdminService::OpenVolumeFile(const volume_server_pb::CopyFileRequest& req, volume_server_pb::CopyFileResponse* resp,
                                  FinishFd finish) {
  // The gRPC worker has checked the extension and collection (Go's texts).
  const VolumeId id = req.volume_id();
  if (req.is_ec_volume()) return OpenEcVolumeFile(req, resp, std::move(finish));
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(Unknown("not found volume id " + std::to_string(id)), -1);
  if (req.compaction_revision() != kAnyRevision && req.compaction_revision() != v->super_block().compaction_revision)
    return finish(Unknown("volume " + std::to_string(id) + " is compacted"), -1);
  const VolumeFileNames names = v->names();
  const std::string path = names.Base(LivesInIdxDir(req.ext()) ? names.idx_dir : names.dir) + req.ext();
  const bool missing_is_empty = req.ignore_source_file_not_found() || req.stop_offset() == 0;
  struct Opened {
    int fd = -1;
    int error = 0;
    int64_t mtime_ns = 0;
  };
  auto opened = std::make_shared<Opened>();
  // On the writer: the sync is ordered after every write acknowledged so far,
  // so the copy holds all of them; then the file is opened, read-only.
  OnWriter(
      store_->WriterFor(id),
      [v, path, opened] {
        if (Status s = v->Sync(); !s.ok()) KLOG_WARN("volume %u: sync before copy: %s", v->id(), s.message().c_str());
        opened->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (opened->fd < 0) {
          opened->error = errno;
          return;
        }
        struct stat st;
        if (fstat(opened->fd, &st) == 0) opened->mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      },
      [opened, path, missing_is_empty, resp, finish = std::move(finish)] {
        if (opened->fd < 0) {
          if (opened->error == ENOENT && missing_is_empty) return finish(grpc::Status::OK, -1);
          std::string why = std::strerror(opened->error);
          if (!why.empty()) why[0] = char(std::tolower(static_cast<unsigned char>(why[0])));
          return finish(Unknown("open " + path + ": " + why), -1);
        }
        resp->set_modified_ts_ns(opened->mtime_ns);
        finish(grpc::Status::OK, opened->fd);
      });
}

// Erasure-coded files are found by name: every location, its data directory
// then its index directory, and the last one found wins (Go's search).
void AdminService::OpenEcVolumeFile(const volume_server_pb::CopyFileRequest& req, volume_server_pb::CopyFileResponse* resp,
                                    FinishFd finish) {
  const VolumeId id = req.volume_id();
  const std::string name = (req.collection().empty() ? std::to_string(id) : req.collection() + "_" + std::to_string(id)) + req.ext();
  std::vector<std::string> candidates;
  for (const DiskLocation& loc : store_->locations()) {
    candidates.push_back(loc.dir + "/" + name);
    if (loc.idx_dir != loc.dir) candidates.push_back(loc.idx_dir + "/" + name);
  }
  struct Opened {
    int fd = -1;
    int64_t mtime_ns = 0;
  };
  auto opened = std::make_shared<Opened>();
  const bool ignore_missing = req.ignore_source_file_not_found();
  auto work = [candidates, opened] {
    for (const std::string& path : candidates) {
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      if (opened->fd >= 0) close(opened->fd);
      opened->fd = fd;
    }
    struct stat st;
    if (opened->fd >= 0 && fstat(opened->fd, &st) == 0) opened->mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  };
  // Off the loop: the writer of the first location (the opens touch disks).
  OnWriter(store_->LocationWriter(0), std::move(work), [id, opened, ignore_missing, resp, finish = std::move(finish)] {
    if (opened->fd < 0) {
      if (ignore_missing) return finish(grpc::Status::OK, -1);
      return finish(Unknown("CopyFile not found ec volume id " + std::to_string(id)), -1);
    }
    resp->set_modified_ts_ns(opened->mtime_ns);
    finish(grpc::Status::OK, opened->fd);
  });
}

}  // namespace kelp
