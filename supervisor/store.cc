#include "supervisor/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

#include "common/disk_status.h"
#include "common/file_id.h"
#include "common/file_util.h"
#include "common/log.h"
#include "storage/compaction.h"
#include "storage/env.h"

namespace kelp {
namespace {

constexpr const char* kUuidFile = "vol_dir.uuid";

// A random RFC 4122 version-4 UUID, the form Go's google/uuid writes.
std::string NewUuid() {
  uint8_t b[16];
  randombytes_buf(b, sizeof b);
  b[6] = uint8_t((b[6] & 0x0f) | 0x40);
  b[8] = uint8_t((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

Result<std::string> DirUuid(const std::string& dir) {
  const std::string path = dir + "/" + kUuidFile;
  if (std::string existing; ReadWholeFile(path, &existing) && !existing.empty()) return existing;
  const std::string id = NewUuid();
  if (Status s = EnvWriteFileAtomically(Env::Default(), path, id); !s.ok()) return s;
  return id;
}

// The volumes whose .dat files are in a location, by the names of those files.
Result<std::vector<VolumeFileNames>> VolumeFilesIn(const DiskLocation& loc) {
  DIR* d = opendir(loc.dir.c_str());
  if (!d) return Status::IOError("cannot read directory " + loc.dir + ": " + std::strerror(errno));
  std::vector<VolumeFileNames> found;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".dat") != 0) continue;
    VolumeFileNames names;
    if (!ParseVolumeFileBase(name.substr(0, name.size() - 4), &names.collection, &names.id)) continue;
    names.dir = loc.dir;
    names.idx_dir = loc.idx_dir;
    found.push_back(std::move(names));
  }
  closedir(d);
  // In name order, so that which copy of a repeated id loads first does not
  // depend on the directory's hash order.
  std::sort(found.begin(), found.end(),
            [](const VolumeFileNames& a, const VolumeFileNames& b) { return a.Base(a.dir) < b.Base(b.dir); });
  return found;
}

// The files a volume may have besides .dat/.idx/.vif (compaction leftovers, notes).
const char* const kDataSideFiles[] = {".dat", ".vif", ".cpd", ".note"};
const char* const kIndexSideFiles[] = {".idx", ".cpx", ".ldb"};

}  // namespace

bool ParseVolumeFileBase(const std::string& base, std::string* collection, VolumeId* id) {
  const size_t us = base.rfind('_');
  const std::string num = us == std::string::npos ? base : base.substr(us + 1);
  auto vid = ParseVolumeId(num);
  if (!vid.ok()) return false;
  *collection = us == std::string::npos ? "" : base.substr(0, us);
  *id = vid.value();
  return true;
}

Status Store::LoadAll() {
  for (size_t li = 0; li < locations_.size(); ++li) {
    if (Status s = LoadLocation(li); !s.ok()) return s;
  }
  ReconcileEcAcrossLocations();
  // Sorting an unsorted .idx merges through heap buffers of up to 12 bytes
  // per entry; hand the freed heap back rather than keep it for the
  // server's lifetime.
  malloc_trim(0);
  return Status::Ok();
}

Status Store::LoadLocation(size_t li) {
  DiskLocation& loc = locations_[li];
  if (mkdir(loc.dir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::IOError("cannot create directory " + loc.dir + ": " + std::strerror(errno));
  if (loc.idx_dir != loc.dir && mkdir(loc.idx_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::IOError("cannot create directory " + loc.idx_dir + ": " + std::strerror(errno));
  auto uuid = DirUuid(loc.dir);
  if (!uuid.ok()) return uuid.status();
  loc.uuid = uuid.value();
  loc.effective_max = loc.max_volumes;
  auto files = VolumeFilesIn(loc);
  if (!files.ok()) return files.status();
  std::vector<VolumeFileNames> todo;
  std::set<VolumeId> taken;
  std::vector<VolumeFileNames> again;  // later copies of an id this location loads too
  for (const VolumeFileNames& names : files.value()) {
    if (volumes_.count(names.id)) {
      KLOG_WARN("volume %u found again in %s; keeping the first copy", names.id, loc.dir.c_str());
      continue;
    }
    if (FileExists(names.Base(names.dir) + ".note")) {
      // A copy into this server that never finished: not a volume (Go does not load it either).
      KLOG_WARN("volume %u in %s is an unfinished copy (%s.note): not loaded", names.id, loc.dir.c_str(), names.Base(names.dir).c_str());
      continue;
    }
    FinishInterruptedCompaction(names);
    if (taken.count(names.id)) {
      again.push_back(names);
      continue;
    }
    taken.insert(names.id);
    todo.push_back(names);
  }
  // Volumes share nothing while they load (each has its own files and
  // segment), so they load on one thread per core, at most four: a volume
  // holds about 24 bytes per out-of-order .idx entry while it loads (its side
  // array, plus the buffer of its sort), and four of those at once bound what
  // a start-up adds to the index.
  // The store takes them in directory order afterwards.
  std::vector<std::optional<Result<std::unique_ptr<Volume>>>> loaded(todo.size());
  std::atomic<size_t> next{0};
  auto load = [&] {
    for (size_t i; (i = next.fetch_add(1)) < todo.size();) loaded[i].emplace(Volume::Load(todo[i], offset_bytes_, env_));
  };
  const size_t threads = std::min<size_t>({todo.size(), 4, std::max(1u, std::thread::hardware_concurrency())});
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(load);
    } catch (const std::system_error& e) {
      // This thread takes what the missing ones would have.
      KLOG_WARN("disk location %s: cannot start a loading thread (%s); loading on fewer", loc.dir.c_str(), e.what());
      break;
    }
  }
  load();
  for (std::thread& t : pool) t.join();
  auto adopt = [&](const VolumeFileNames& names, Result<std::unique_ptr<Volume>>& v) {
    if (!v.ok()) {
      KLOG_ERROR("load volume %s: %s", names.Base(loc.dir).c_str(), v.status().message().c_str());
      return;
    }
    if (!v.value()->load_warning().empty())
      KLOG_WARN("volume %u loaded read-only: %s", names.id, v.value()->load_warning().c_str());
    location_of_[names.id] = li;
    volumes_[names.id] = std::move(v.value());
  };
  for (size_t i = 0; i < todo.size(); ++i) adopt(todo[i], *loaded[i]);
  // A copy whose first one did not load gets its turn, in directory order.
  for (const VolumeFileNames& names : again) {
    if (volumes_.count(names.id)) {
      KLOG_WARN("volume %u found again in %s; keeping the first copy", names.id, loc.dir.c_str());
      continue;
    }
    auto v = Volume::Load(names, offset_bytes_, env_);
    adopt(names, v);
  }
  LoadEcLocation(li);
  KLOG_INFO("disk location %s: %zu volume(s), %zu EC shard(s)", loc.dir.c_str(), VolumeCountIn(li), EcShardCountIn(li));
  return Status::Ok();
}

Volume* Store::Find(VolumeId id) const {
  auto it = volumes_.find(id);
  return it == volumes_.end() ? nullptr : it->second.get();
}

size_t Store::LocationOf(VolumeId id) const {
  auto it = location_of_.find(id);
  return it == location_of_.end() ? 0 : it->second;
}

size_t Store::VolumeCountIn(size_t location) const {
  size_t n = 0;
  for (const auto& [vid, li] : location_of_)
    if (li == location) ++n;
  for (const auto& [vid, b] : busy_)
    if (b.counts && b.location == location && !location_of_.count(vid)) ++n;
  return n;
}

Result<size_t> Store::PickLocation(const NewVolumeSpec& spec) const {
  size_t best = locations_.size();
  for (size_t li = 0; li < locations_.size(); ++li) {
    const DiskLocation& loc = locations_[li];
    if (loc.disk_type != spec.disk_type) continue;
    const size_t count = VolumeCountIn(li);
    if (loc.max_volumes != 0 && count >= size_t(std::max(0, loc.effective_max))) continue;
    if (loc.max_volumes == 0 && loc.effective_max > 0 && count >= size_t(loc.effective_max)) continue;
    if (best == locations_.size() || count < VolumeCountIn(best)) best = li;
  }
  if (best == locations_.size()) return Status::Full("No more free space left");
  return best;
}

VolumeFileNames Store::NamesIn(size_t location, const std::string& collection, VolumeId id) const {
  VolumeFileNames names;
  names.dir = locations_[location].dir;
  names.idx_dir = locations_[location].idx_dir;
  names.collection = collection;
  names.id = id;
  return names;
}

Result<std::shared_ptr<Volume>> Store::CreateFiles(const VolumeFileNames& names, const NewVolumeSpec& spec) const {
  auto v = Volume::Create(names, spec.super_block, offset_bytes_, env_);
  if (!v.ok()) return v.status();
  if (spec.preallocate > 0) {
    // Reserve the space like Go's preallocate; a filesystem without fallocate just skips it.
    if (fallocate(v.value()->dat_fd(), FALLOC_FL_KEEP_SIZE, 0, spec.preallocate) != 0)
      KLOG_WARN("volume %u: preallocate %lld bytes: %s", spec.id, static_cast<long long>(spec.preallocate), std::strerror(errno));
  }
  KLOG_INFO("in dir %s adds volume:%u collection:%s replicaPlacement:%s ttl:%s", names.dir.c_str(), spec.id, spec.collection.c_str(),
            spec.super_block.replica_placement.String().c_str(), spec.super_block.ttl.String().c_str());
  return std::shared_ptr<Volume>(std::move(v.value()));
}

Result<Volume*> Store::AddVolume(const NewVolumeSpec& spec) {
  if (Find(spec.id) || Busy(spec.id)) return Status::AlreadyExists("Volume Id " + std::to_string(spec.id) + " already exists!");
  auto where = PickLocation(spec);
  if (!where.ok()) return where.status();
  auto v = CreateFiles(NamesIn(where.value(), spec.collection, spec.id), spec);
  if (!v.ok()) return v.status();
  bool adopted = false;
  return Adopt(std::move(v.value()), where.value(), &adopted);
}

void Store::BeginBusy(VolumeId id, size_t location, bool counts) { busy_[id] = BusyVolume{location, counts}; }

void Store::EndBusy(VolumeId id) { busy_.erase(id); }

Result<Store::Located> Store::Locate(VolumeId id) const {
  if (Busy(id)) return Status::Unavailable("volume " + std::to_string(id) + " is being created, changed or deleted");
  for (size_t li = 0; li < locations_.size(); ++li) {
    auto files = VolumeFilesIn(locations_[li]);
    if (!files.ok()) continue;
    for (const VolumeFileNames& names : files.value())
      if (names.id == id) return Located{li, names};
  }
  return Status::NotFound("volume " + std::to_string(id) + " not found on disk");
}

void Store::FinishInterruptedCompaction(const VolumeFileNames& names) const {
  if (auto r = ReconcileCompaction(names, env_); !r.ok())
    KLOG_ERROR("volume %u: reconcile interrupted compaction failed: %s", names.id, r.status().message().c_str());
}

void Store::ReplaceCompacted(std::shared_ptr<Volume> next) {
  auto it = volumes_.find(next->id());
  if (it == volumes_.end()) return;
  it->second = std::move(next);
}

Result<std::shared_ptr<Volume>> Store::LoadLocated(const Located& where) const {
  if (FileExists(where.names.Base(where.names.dir) + ".note"))
    return Status::Unavailable("volume " + std::to_string(where.names.id) + " is an unfinished copy");
  FinishInterruptedCompaction(where.names);
  auto v = Volume::Load(where.names, offset_bytes_, env_);
  if (!v.ok()) return v.status();
  return std::shared_ptr<Volume>(std::move(v.value()));
}

Volume* Store::Adopt(std::shared_ptr<Volume> v, size_t location, bool* adopted) {
  const VolumeId id = v->id();
  if (Volume* existing = Find(id)) {
    *adopted = false;
    return existing;
  }
  *adopted = true;
  location_of_[id] = location;
  Volume* raw = v.get();
  if (location < writers_.size()) writers_[location]->Serve(v);
  volumes_[id] = std::move(v);
  return raw;
}

Status Store::UnmountVolume(VolumeId id) {
  auto it = volumes_.find(id);
  if (it == volumes_.end()) return Status::Ok();  // Go: unmounting an absent volume is not an error
  std::shared_ptr<Volume> v = std::move(it->second);
  const size_t li = LocationOf(id);
  if (li < writers_.size()) writers_[li]->Unserve(id);
  volumes_.erase(it);
  location_of_.erase(id);
  Release(std::move(v), li, true);
  return Status::Ok();
}

void Store::Release(std::shared_ptr<Volume> v, size_t location, bool sync) {
  v->Retire();
  auto finish = [v = std::move(v), sync]() mutable {
    if (sync)
      if (Status s = v->Sync(); !s.ok()) KLOG_WARN("volume %u: %s", v->id(), s.message().c_str());
    v.reset();
  };
  if (location < writers_.size()) writers_[location]->Post(std::move(finish));
  else finish();
}

Store::~Store() { StopWriters(); }

void Store::StartWriters(uv_loop_t* loop) {
  for (const DiskLocation& loc : locations_) writers_.push_back(std::make_unique<DiskWriter>(loop, loc.dir));
  for (auto& [vid, v] : volumes_) writers_[LocationOf(vid)]->Serve(v);
}

void Store::StopWriters() {
  for (auto& [vid, v] : volumes_) {
    auto sync = [v = v] {
      if (Status s = v->Sync(); !s.ok()) KLOG_WARN("volume %u: %s", v->id(), s.message().c_str());
    };
    if (DiskWriter* w = WriterFor(vid)) w->Post(sync);
  }
  for (auto& w : writers_) w->Stop();
  writers_.clear();
}

DiskWriter* Store::WriterFor(VolumeId id) const {
  auto it = location_of_.find(id);
  if (it == location_of_.end() || it->second >= writers_.size()) return nullptr;
  return writers_[it->second].get();
}

std::shared_ptr<Volume> Store::Shared(VolumeId id) const {
  auto it = volumes_.find(id);
  return it == volumes_.end() ? nullptr : it->second;
}

Result<Store::Removal> Store::BeginDelete(VolumeId id, bool only_empty) {
  Volume* v = Find(id);
  if (!v) return Status::NotFound("delete volume " + std::to_string(id) + " not found on disk: volume not found");
  if (only_empty && (v->dat_size() > uint64_t(kSuperBlockSize) || v->counters().content_size > 0))
    return Status::Invalid("DeleteVolume " + std::to_string(id) + ": volume not empty");
  Removal removal{std::move(volumes_[id]), LocationOf(id), FindEc(id, LocationOf(id)) != nullptr};
  if (removal.location < writers_.size()) writers_[removal.location]->Unserve(id);
  volumes_.erase(id);
  location_of_.erase(id);
  removal.volume->Retire();  // mutations still queued for it fail as "not found"
  BeginBusy(id, removal.location, false);
  return removal;
}

void Store::RemoveFiles(Removal removal) const {
  const VolumeFileNames names = removal.volume->names();
  // Workers may still hold the .dat open; their reads finish on the unlinked inode.
  // An EC volume of the id in this location shares the .vif: it stays (Go 4.48).
  const bool keep_vif = removal.ec_mounted || FileExists(names.Base(names.dir) + ".ecx") || FileExists(names.Base(names.idx_dir) + ".ecx");
  for (const char* ext : kDataSideFiles)
    if (!(keep_vif && std::string(ext) == ".vif")) env_->Unlink(names.Base(names.dir) + ext);
  for (const char* ext : kIndexSideFiles) env_->Unlink(names.Base(names.idx_dir) + ext);
  if (env_->SyncDir(names.dir) != 0) KLOG_WARN("volume %u: fsync %s: %s", names.id, names.dir.c_str(), std::strerror(errno));
  if (names.idx_dir != names.dir && env_->SyncDir(names.idx_dir) != 0)
    KLOG_WARN("volume %u: fsync %s: %s", names.id, names.idx_dir.c_str(), std::strerror(errno));
  removal.volume.reset();
  KLOG_INFO("deleted volume %u", names.id);
}

DiskUsage Store::UsageOf(const std::string& dir) {
  const DiskStatus d = ReadDiskStatus(dir);
  return DiskUsage{d.all, d.used, d.free};
}

void Store::set_volume_size_limit(uint64_t limit) {
  volume_size_limit_ = limit;
  if (limit == 0) return;
  for (size_t li = 0; li < locations_.size(); ++li) {
    DiskLocation& loc = locations_[li];
    if (loc.max_volumes != 0) continue;
    // -max 0: the volumes here plus as many full-size ones as the free space holds.
    const DiskUsage u = UsageOf(loc.dir);
    loc.effective_max = int(VolumeCountIn(li) + u.free / limit);
  }
}

}  // namespace kelp
