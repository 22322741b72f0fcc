// VolumeEcShardsCopy, the supervisor's part: the gRPC worker pulls shard and
// side files from a peer with CopyFile and writes them into files created
// here and handed over write-only. Shards and the .ecx are truncated in
// place, the .ecj is written over from its start (Go's quirk: a longer local
// journal keeps its tail), and the .vif and .ecsum arrive under a temporary
// name that only a whole file leaves. Nothing is mounted.
// (upstream: weed/server/volume_grpc_erasure_coding.go; docs/erasure-coding.md §7, §17)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/collection_name.h"
#include "common/file_util.h"
#include "common/go_error.h"
#include "common/go_quote.h"
#include "common/log.h"
#include "supervisor/admin_service.h"

namespace kelp {
namespace {

constexpr int64_t kUnlimitedSlots = 1 << 30;


// Where one extension of a copied EC volume goes, and how it is opened.
struct EcCopyTarget {
  std::string path;    // written by the worker
  std::string final;   // the name it takes when whole ("" : path is final)
  int flags = 0;
  bool keep_on_failure = false;  // the journal: never removed by a failed pull
};

bool ShardExtension(const std::string& ext) {
  if (ext.size() != 5 || ext.compare(0, 3, ".ec") != 0 || ext[3] < '0' || ext[3] > '9' || ext[4] < '0' || ext[4] > '9') return false;
  return (ext[3] - '0') * 10 + (ext[4] - '0') < kMaxEcShards;
}

}  // namespace

size_t AdminService::ChooseEcLocation(const std::string& collection, VolumeId id) const {
  const auto& locations = store_->locations();
  size_t best = locations.size();
  int best_tier = -1;
  int64_t best_free = 0;
  for (size_t li = 0; li < locations.size(); ++li) {
    const DiskLocation& loc = locations[li];
    const int64_t shards = int64_t(store_->EcShardCountIn(li));
    const int64_t volumes = int64_t(store_->VolumeCountIn(li));
    const int64_t free = loc.effective_max > 0 ? (int64_t(loc.effective_max) - volumes) * 10 - shards : kUnlimitedSlots - shards;
    if (free <= 0) continue;
    const EcBases b = store_->EcBasesIn(li, collection, id);
    int tier = 0;
    if (store_->FindEc(id, li)) {
      tier = 3;
    } else if (FileSizeOf(b.data + ".ecx") > 0 || FileSizeOf(b.idx + ".ecx") > 0) {
      tier = 2;
    } else if (loc.disk_type.empty()) {
      tier = 1;
    }
    if (tier > best_tier || (tier == best_tier && free > best_free)) best = li, best_tier = tier, best_free = free;
  }
  return best;
}

void AdminService::PlaceEcCopy(const kelp_internal::EcCopyPlace& req, kelp_internal::EcCopyPlaced* resp, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  if (!IsSafeCollectionName(req.collection())) return finish(GoError("invalid collection " + GoQuote(req.collection())));
  const size_t n = store_->locations().size();
  size_t where = n;
  if (req.disk_id() > 0) {
    if (req.disk_id() >= n)
      return finish(GoError("invalid disk_id " + std::to_string(req.disk_id()) + ": only have " + std::to_string(n) + " disks"));
    where = req.disk_id();
  } else {
    where = ChooseEcLocation(req.collection(), req.volume_id());
  }
  if (where >= n) return finish(GoError("no space left"));
  resp->set_location(uint32_t(where));
  finish(grpc::Status::OK);
}

void AdminService::OpenEcCopyTarget(const kelp_internal::EcCopyOpen& req, kelp_internal::EcCopyOpened* resp, FinishFd finish) {
  if (req.location() >= store_->locations().size()) return finish(GoError("invalid disk_id " + std::to_string(req.location())), -1);
  if (!IsSafeCollectionName(req.collection())) return finish(GoError("invalid collection " + GoQuote(req.collection())), -1);
  const EcBases b = store_->EcBasesIn(req.location(), req.collection(), req.volume_id());
  const std::string& ext = req.ext();
  EcCopyTarget t;
  if (ShardExtension(ext)) {
    t.path = b.data + ext, t.flags = O_WRONLY | O_CREAT | O_TRUNC;
  } else if (ext == ".ecx") {
    t.path = b.idx + ext, t.flags = O_WRONLY | O_CREAT | O_TRUNC;
  } else if (ext == ".ecj") {
    t.path = b.idx + ext, t.flags = O_WRONLY | O_CREAT, t.keep_on_failure = true;
  } else if (ext == ".vif" || ext == ".ecsum") {
    t.final = b.data + ext, t.path = t.final + ".copying", t.flags = O_WRONLY | O_CREAT | O_TRUNC;
  } else {
    return finish(GoError("invalid file extension " + GoQuote(ext)), -1);
  }
  if (ec_copy_files_.count(t.path) || receiving_.count(t.path))
    return finish(GoError("failed to create file: " + t.path + " is being written already"), -1);
  ec_copy_files_[t.path] = EcCopyFile{t.final, caller_, t.keep_on_failure};
  auto opened = std::make_shared<std::pair<int, int>>(-1, 0);
  OnWriter(
      store_->LocationWriter(req.location()),
      [t, opened] {
        opened->first = open(t.path.c_str(), t.flags | O_CLOEXEC, 0644);
        opened->second = errno;
      },
      [this, t, opened, resp, finish = std::move(finish)] {
        if (!ec_copy_files_.count(t.path)) {  // the worker went away meanwhile
          if (opened->first >= 0) close(opened->first);
          if (opened->first >= 0 && !t.keep_on_failure) unlink(t.path.c_str());
          return finish(GoError("the copy of " + t.path + " was abandoned"), -1);
        }
        if (opened->first < 0) {
          ec_copy_files_.erase(t.path);
          return finish(GoError("open " + t.path + ": " + GoErrno(opened->second)), -1);
        }
        resp->set_path(t.path);
        finish(grpc::Status::OK, opened->first);
      });
}

void AdminService::FinishEcCopyTarget(const kelp_internal::EcCopyFinish& req, kelp_internal::EcCopyFinished*, Finish finish) {
  // Only a file this worker is copying may be named.
  auto it = ec_copy_files_.find(req.path());
  if (it == ec_copy_files_.end() || it->second.owner != caller_) return finish(GoError("no file " + req.path() + " is being copied"));
  const EcCopyFile file = it->second;
  ec_copy_files_.erase(it);
  const std::string path = req.path();
  const bool failed = req.failed(), present = req.present();
  auto error = std::make_shared<std::string>();
  OnWriter(
      store_->LocationWriter(0),
      [path, file, failed, present, error] {
        if (failed || (!present && !file.final.empty())) {
          // A partial file goes; an absent optional file leaves the existing one.
          if (!file.keep_on_failure) unlink(path.c_str());
          return;
        }
        struct stat st;
        if (path.size() > 4 && path.compare(path.size() - 4, 4, ".ecx") == 0 && stat(path.c_str(), &st) == 0 && st.st_size == 0) {
          unlink(path.c_str());  // an empty index would mount as a volume with no needles
          *error = "source .ecx is 0 bytes";
          return;
        }
        if (!file.final.empty() && rename(path.c_str(), file.final.c_str()) != 0) {
          *error = "rename " + path + " " + file.final + ": " + GoErrno(errno);
          unlink(path.c_str());
        }
      },
      [error, finish = std::move(finish)] { finish(error->empty() ? grpc::Status::OK : GoError(*error)); });
}

}  // namespace kelp
