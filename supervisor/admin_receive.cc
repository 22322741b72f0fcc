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
#include "common/ec_layout.h"
#include "common/rs_codec.h"
#include "common/file_util.h"
#include "common/go_error.h"
#include "common/go_quote.h"
#include "common/log.h"
#include "supervisor/admin_service.h"

namespace kelp {
namespace {

// A mounted volume's own files, which its writer holds open: a peer never
// replaces them under it (Go truncates them in place).
bool IsLiveVolumeFile(const std::string& ext) {
  return ext == ".dat" || ext == ".idx" || ext == ".cpd" || ext == ".cpx" || ext == ".cpc" || ext == ".note";
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
  const VolumeId vid = info.volume_id();
  // <dir>/<collection>_<vid><ext> in location `i` (Go's names for shards and staged files).
  auto named = [&](size_t i, const std::string& ext) { return store_->NamesIn(i, info.collection(), vid).Base(locations[i].dir) + ext; };
  // Location `i` holds a shard or the .ecx of the volume, beside its data or its index.
  auto holds_shard = [&](size_t i) {
    const VolumeFileNames n = store_->NamesIn(i, info.collection(), vid);
    for (const std::string& dir : {n.dir, n.idx_dir}) {
      if (FileExists(n.Base(dir) + ".ecx")) return true;
      for (int shard = 0; shard < kMaxEcShards; ++shard)
        if (FileExists(n.Base(dir) + EcShardExt(shard))) return true;
    }
    return false;
  };
  Volume* mounted = store_->Find(vid);
  // A mounted volume's live files are never the target, whatever the request
  // calls them (an EC push of the same collection names them too).
  if (mounted && IsLiveVolumeFile(info.ext()) && (!info.is_ec_volume() || mounted->collection() == info.collection()))
    return refuse("volume " + std::to_string(vid) + " is mounted: its " + info.ext() + " is not replaced while in use");
  // Nor a copy's files while it runs.
  if (copies_.count(vid)) return refuse("volume " + std::to_string(vid) + " is being copied here");
  size_t where = locations.size();
  std::string path;
  if (info.is_ec_volume()) {
    // A mounted EC volume's files are not replaced under it.
    if (const Store::EcByLocation mounted_ec = store_->EcOf(vid); !mounted_ec.empty()) {
      std::string ids;
      for (const auto& [li, v] : mounted_ec) ids += (ids.empty() ? "" : " ") + std::to_string(li);
      return refuse("ec volume " + std::to_string(vid) + " is mounted on disk_ids:[" + ids + "]; unmount before ReceiveFile");
    }
    if (info.disk_id() > 0) {
      if (info.disk_id() >= locations.size())
        return refuse("invalid disk_id " + std::to_string(info.disk_id()) + ": only have " + std::to_string(locations.size()) + " disks");
      where = info.disk_id();
    } else {
      where = ChooseEcLocation(info.collection(), vid);
    }
    if (where == locations.size()) return refuse("no storage location available");
    path = named(where, info.ext());
  } else if (mounted) {
    where = store_->LocationOf(vid);
    path = mounted->names().File(info.ext());
  } else if (info.disk_type().empty()) {
    return refuse("volume " + std::to_string(vid) + " not found");
  } else {
    // Staged for an EC decode onto this server: a disk of that type with a
    // free slot and no shard of the volume, under a name no load picks up.
    const std::string want = info.disk_type() == "hdd" ? "" : info.disk_type();
    for (size_t i = 0; i < locations.size() && where == locations.size(); ++i)
      if (locations[i].disk_type == want && int(store_->VolumeCountIn(i)) < locations[i].effective_max && !holds_shard(i)) where = i;
    if (where == locations.size())
      return refuse("no " + info.disk_type() + " disk location with a free slot for volume " + std::to_string(vid));
    path = named(where, info.ext() + ".copying");
  }
  if (receiving_.count(path)) return refuse("failed to create file: " + path + " is being received already");
  // Reserved now, created on the location's writer thread (file work stays off the loop).
  receiving_.emplace(path, caller_);
  auto opened = std::make_shared<std::pair<int, int>>(-1, 0);  // fd, errno
  OnWriter(
      store_->LocationWriter(where),
      [path, opened] {
        opened->first = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        opened->second = errno;
      },
      [this, path, opened, resp, finish = std::move(finish)] {
        if (!receiving_.count(path)) {  // the gRPC worker went away meanwhile
          if (opened->first >= 0) close(opened->first), unlink(path.c_str());
          return finish(GoError("the receive of " + path + " was abandoned"), -1);
        }
        if (opened->first < 0) {
          receiving_.erase(path);
          resp->set_error("failed to create file: open " + path + ": " + GoErrno(opened->second));
          return finish(grpc::Status::OK, -1);
        }
        resp->set_path(path);
        finish(grpc::Status::OK, opened->first);
      });
}

void AdminService::FinishReceivedFile(const kelp_internal::ReceiveFileFinish& req, kelp_internal::ReceiveFileFinished*, Finish finish) {
  // Only a file this server is receiving may be named: the worker cannot
  // make the supervisor remove anything else.
  auto it = receiving_.find(req.path());
  if (it == receiving_.end() || it->second != caller_) return finish(GoError("no file " + req.path() + " is being received"));
  receiving_.erase(it);
  if (req.failed() && unlink(req.path().c_str()) != 0 && errno != ENOENT)
    KLOG_WARN("receive: cannot remove %s: %s", req.path().c_str(), std::strerror(errno));
  finish(grpc::Status::OK);
}

void AdminService::AbortReceives(uint64_t caller) {
  for (auto it = ec_copy_files_.begin(); it != ec_copy_files_.end();) {
    if (it->second.owner != caller) {
      ++it;
      continue;
    }
    KLOG_WARN("EC copy of %s abandoned by the gRPC worker%s", it->first.c_str(), it->second.keep_on_failure ? "" : ": removed");
    if (!it->second.keep_on_failure) unlink(it->first.c_str());
    it = ec_copy_files_.erase(it);
  }
  for (auto it = receiving_.begin(); it != receiving_.end();) {
    if (it->second != caller) {
      ++it;
      continue;
    }
    KLOG_WARN("receive of %s abandoned by the gRPC worker: removed", it->first.c_str());
    unlink(it->first.c_str());
    it = receiving_.erase(it);
  }
}

}  // namespace kelp
