// ReceiveFile, the supervisor's part: a peer pushes one file (an EC shard, a
// staged volume file, a file of a mounted volume). The supervisor decides
// where it goes with Go's rules, creates it, and hands the gRPC worker a
// write-only descriptor; the bytes never pass through here. Files a receive
// left unfinished (it failed, or the worker died) are removed.
// (upstream: weed/server/volume_grpc_copy.go ReceiveFile;
// docs/copy-and-tail.md §4, docs/scrub-query-receive.md)
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "common/collection_name.h"
#include "common/file_util.h"
#include "common/go_quote.h"
#include "common/log.h"
#include "supervisor/admin_service.h"

namespace kelp {
namespace {

grpc::Status Unknown(const std::string& message) { return grpc::Status(grpc::StatusCode::UNKNOWN, message); }

std::string BaseName(const std::string& collection, uint32_t vid) {
  return (collection.empty() ? "" : collection + "_") + std::to_string(vid);
}

// A mounted volume's own files, which its writer holds open: a peer never
// replaces them under it (Go truncates them in place).
bool IsLiveVolumeFile(const std::string& ext) {
  return ext == ".dat" || ext == ".idx" || ext == ".cpd" || ext == ".cpx" || ext == ".cpc" || ext == ".note";
}

bool HoldsEcShardFile(const std::string& dir, const std::string& base) {
  if (FileExists(dir + "/" + base + ".ecx")) return true;
  for (int shard = 0; shard < 32; ++shard) {
    const std::string ext = (shard < 10 ? ".ec0" : ".ec") + std::to_string(shard);
    if (FileExists(dir + "/" + base + ext)) return true;
  }
  return false;
}

}  // namespace

void AdminService::OpenReceivedFile(const kelp_internal::ReceiveFileOpen& req, kelp_internal::ReceiveFileOpened* resp, FinishFd finish) {
  if (auto s = CheckMaintenance(); !s.ok()) return finish(s, -1);
  if (!req.has_info()) return finish(grpc::Status::OK, -1);  // an empty stream: nothing to write
  const volume_server_pb::ReceiveFileInfo& info = req.info();
  auto refuse = [&](const std::string& why) {
    resp->set_error(why);
    finish(grpc::Status::OK, -1);
  };
  if (!IsVolumeFileExtension(info.ext())) return refuse("invalid file extension " + GoQuote(info.ext()));
  if (!IsSafeCollectionName(info.collection())) return refuse("invalid collection " + GoQuote(info.collection()));
  const auto& locations = store_->locations();
  const std::string base = BaseName(info.collection(), info.volume_id());
  std::string path;
  // A mounted volume's live files are never the target, whatever the request calls them.
  if (Volume* v = store_->Find(info.volume_id()); v && v->collection() == info.collection() && IsLiveVolumeFile(info.ext()))
    return refuse("volume " + std::to_string(info.volume_id()) + " is mounted: its " + info.ext() + " is not replaced while in use");
  // Nor a copy's files while it runs.
  if (copies_.count(info.volume_id()))
    return refuse("volume " + std::to_string(info.volume_id()) + " is being copied here");
  if (info.is_ec_volume()) {
    // kelp mounts no EC volume yet, so none is in the way.
    size_t where = locations.size();
    if (info.disk_id() > 0) {
      if (info.disk_id() >= locations.size())
        return refuse("invalid disk_id " + std::to_string(info.disk_id()) + ": only have " + std::to_string(locations.size()) + " disks");
      where = info.disk_id();
    } else {
      // Go's choice: a disk that owns the .ecx, then a hard disk, then any.
      for (size_t i = 0; i < locations.size() && where == locations.size(); ++i)
        if (FileExists(locations[i].dir + "/" + base + ".ecx") || FileExists(locations[i].idx_dir + "/" + base + ".ecx")) where = i;
      for (size_t i = 0; i < locations.size() && where == locations.size(); ++i)
        if (locations[i].disk_type.empty()) where = i;
      if (where == locations.size() && !locations.empty()) where = 0;
    }
    if (where == locations.size()) return refuse("no storage location available");
    path = locations[where].dir + "/" + base + info.ext();
  } else if (Volume* v = store_->Find(info.volume_id())) {
    if (IsLiveVolumeFile(info.ext()))
      return refuse("volume " + std::to_string(info.volume_id()) + " is mounted: its " + info.ext() + " is not replaced while in use");
    const VolumeFileNames& names = v->names();
    const bool beside_idx = info.ext() == ".ldb" || info.ext() == ".cpldb" || info.ext() == ".rdb";
    path = names.Base(beside_idx ? names.idx_dir : names.dir) + info.ext();
  } else if (info.disk_type().empty()) {
    return refuse("volume " + std::to_string(info.volume_id()) + " not found");
  } else {
    // Staged for an EC decode onto this server: a disk of that type with a
    // free slot and no shard of the volume, under a name no load picks up.
    const std::string want = info.disk_type() == "hdd" ? "" : info.disk_type();
    size_t where = locations.size();
    for (size_t i = 0; i < locations.size() && where == locations.size(); ++i) {
      const DiskLocation& l = locations[i];
      if (l.disk_type != want || int(store_->VolumeCountIn(i)) >= l.effective_max) continue;
      if (!HoldsEcShardFile(l.dir, base) && !HoldsEcShardFile(l.idx_dir, base)) where = i;
    }
    if (where == locations.size())
      return refuse("no " + info.disk_type() + " disk location with a free slot for volume " + std::to_string(info.volume_id()));
    path = locations[where].dir + "/" + base + info.ext() + ".copying";
  }
  if (receiving_.count(path)) return refuse("failed to create file: " + path + " is being received already");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::string why = std::strerror(errno);
    if (!why.empty()) why[0] = char(std::tolower(static_cast<unsigned char>(why[0])));
    return refuse("failed to create file: open " + path + ": " + why);
  }
  receiving_.insert(path);
  resp->set_path(path);
  finish(grpc::Status::OK, fd);
}

void AdminService::FinishReceivedFile(const kelp_internal::ReceiveFileFinish& req, kelp_internal::ReceiveFileFinished*, Finish finish) {
  // Only a file this server is receiving may be named: the worker cannot
  // make the supervisor remove anything else.
  if (!receiving_.erase(req.path())) return finish(Unknown("no file " + req.path() + " is being received"));
  if (req.failed() && unlink(req.path().c_str()) != 0 && errno != ENOENT)
    KLOG_WARN("receive: cannot remove %s: %s", req.path().c_str(), std::strerror(errno));
  finish(grpc::Status::OK);
}

void AdminService::AbortReceives() {
  for (const std::string& path : receiving_) {
    KLOG_WARN("receive of %s abandoned by the gRPC worker: removed", path.c_str());
    unlink(path.c_str());
  }
  receiving_.clear();
}

}  // namespace kelp
