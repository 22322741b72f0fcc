// The Store's erasure-coded volumes: the registry, and what a location's
// directories hold at start-up. (upstream: weed/storage/disk_location_ec.go;
// docs/erasure-coding.md §4.5)
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <ctime>
#include <set>

#include "common/file_util.h"
#include "common/log.h"
#include "supervisor/store.h"

namespace kelp {
namespace {

// A 0-byte shard older than this is the residue of a failed operation.
constexpr time_t kStaleEmptyShardSeconds = 3600;

struct EcGroup {
  std::string collection;
  VolumeId id = 0;
  std::set<int> shards;  // shard files in the data directory
  bool has_ecx = false;
};

// The names in `dir` that belong to EC volumes, grouped by base name.
void ScanEcFiles(const std::string& dir, bool data_dir, std::map<std::string, EcGroup>* groups) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    const size_t dot = name.rfind('.');
    if (dot == std::string::npos || dot == 0) continue;
    const std::string base = name.substr(0, dot), ext = name.substr(dot);
    int shard = -1;
    if (ext != ".ecx" && (!data_dir || (shard = EcShardIdOfName(name, base)) < 0)) continue;
    EcGroup g;
    if (!ParseVolumeFileBase(base, &g.collection, &g.id)) continue;
    EcGroup& group = groups->emplace(base, g).first->second;
    if (shard >= 0) group.shards.insert(shard);
    if (ext == ".ecx") group.has_ecx = true;
  }
  closedir(d);
}

// Size and modification time; -1 when it cannot be stat'ed.
int64_t FileSize(const std::string& path, time_t* mtime) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  if (mtime) *mtime = st.st_mtime;
  return int64_t(st.st_size);
}

}  // namespace

Status RemoveEcFiles(Env* env, const VolumeFileNames& n) {
  const std::string data_base = n.Base(n.dir), idx_base = n.Base(n.idx_dir);
  Status first;
  auto record = [&](Status s) {
    if (!s.ok() && first.ok()) first = s;
  };
  for (int i = 0; i < kMaxEcShards; i++) record(EnvRemoveIfExists(env, data_base + EcShardExt(i)));
  for (const std::string& base : {idx_base, data_base}) {
    record(EnvRemoveIfExists(env, base + ".ecx"));
    record(EnvRemoveIfExists(env, base + ".ecj"));
    record(EnvRemoveIfExists(env, base + ".ecsum"));
    if (data_base == idx_base) break;
  }
  struct stat st;
  if (stat((idx_base + ".idx").c_str(), &st) != 0 && errno == ENOENT) {
    record(EnvRemoveIfExists(env, idx_base + ".vif"));
    if (data_base != idx_base && stat((data_base + ".idx").c_str(), &st) != 0 && errno == ENOENT)
      record(EnvRemoveIfExists(env, data_base + ".vif"));
  }
  return first;
}

std::shared_ptr<EcVolume> Store::FindEc(VolumeId id, size_t location) const {
  auto it = ec_volumes_.find(id);
  if (it == ec_volumes_.end()) return nullptr;
  auto at = it->second.find(location);
  return at == it->second.end() ? nullptr : at->second;
}

Store::EcByLocation Store::EcOf(VolumeId id) const {
  auto it = ec_volumes_.find(id);
  return it == ec_volumes_.end() ? EcByLocation{} : it->second;
}

void Store::PutEc(size_t location, std::shared_ptr<EcVolume> v) { ec_volumes_[v->id()][location] = std::move(v); }

void Store::DropEc(VolumeId id, size_t location) {
  auto it = ec_volumes_.find(id);
  if (it == ec_volumes_.end()) return;
  it->second.erase(location);
  if (it->second.empty()) ec_volumes_.erase(it);
}

EcBases Store::EcBasesIn(size_t location, const std::string& collection, VolumeId id) const {
  const VolumeFileNames n = NamesIn(location, collection, id);
  return EcBases{n.Base(n.dir), n.Base(n.idx_dir)};
}

size_t Store::EcShardCountIn(size_t location) const {
  size_t n = 0;
  for (const auto& [vid, by_location] : ec_volumes_) {
    auto it = by_location.find(location);
    if (it != by_location.end()) n += it->second->shards().size();
  }
  return n;
}

Result<EcShardFile> Store::OpenEcShard(Env* env, const std::string& path) {
  EcShardFile f;
  f.fd = env->Open(path, O_RDONLY | O_CLOEXEC, 0);
  if (f.fd < 0) return errno == ENOENT ? Status::NotFound(path) : Status::IOError(GoErrno(errno));
  auto size = EnvFileSize(env, f.fd);
  if (!size.ok()) {
    env->Close(f.fd);
    return size.status();
  }
  f.size = int64_t(size.value());
  return f;
}

void Store::LoadEcLocation(size_t li) {
  const DiskLocation& loc = locations_[li];
  std::map<std::string, EcGroup> groups;
  ScanEcFiles(loc.dir, true, &groups);
  if (loc.idx_dir != loc.dir) ScanEcFiles(loc.idx_dir, false, &groups);
  const time_t now = std::time(nullptr);
  for (auto& [base_name, g] : groups) {
    const EcBases bases = EcBasesIn(li, g.collection, g.id);
    const int64_t dat_size = FileSizeOf(bases.data + ".dat");
    auto remove_ec_files = [&](const char* why) {
      KLOG_WARN("ec volume %u in %s: %s: its EC files are removed", g.id, loc.dir.c_str(), why);
      for (int shard : g.shards) EnvRemoveIfExists(env_, bases.data + EcShardExt(shard));
      for (const std::string& b : {bases.data, bases.idx})
        for (const char* ext : {".ecx", ".ecj"}) EnvRemoveIfExists(env_, b + ext);
    };
    // Empty shard files left by a failed operation go once they are old.
    for (auto it = g.shards.begin(); it != g.shards.end();) {
      const std::string path = bases.data + EcShardExt(*it);
      time_t mtime = 0;
      if (FileSize(path, &mtime) == 0 && now - mtime > kStaleEmptyShardSeconds) {
        KLOG_WARN("removed zero-sized ec shard %s (residue of a failed operation)", path.c_str());
        EnvRemoveIfExists(env_, path);
        it = g.shards.erase(it);
      } else {
        ++it;
      }
    }
    if (!g.has_ecx) {
      // Shards without an index beside a .dat: an encode that stopped before its .ecx.
      if (dat_size > 8 && !g.shards.empty()) remove_ec_files("an encode interrupted before its index");
      continue;
    }
    if (g.shards.empty()) continue;  // an index alone: left for a copy to complete
    if (dat_size > 8) {
      // Beside its .dat, an encode that did not finish writing its shards is undone.
      const uint64_t want = EcShardSize(EcLayout::Legacy(kDefaultEcData), uint64_t(dat_size));
      bool short_shard = false;
      for (int shard : g.shards)
        if (FileSizeOf(bases.data + EcShardExt(shard)) < int64_t(want)) short_shard = true;
      if (short_shard) {
        remove_ec_files("shards shorter than its .dat needs (an interrupted encode)");
        continue;
      }
    }
    LoadEcGroup(li, g.collection, g.id, g.shards);
  }
}

void Store::LoadEcGroup(size_t li, const std::string& collection, VolumeId id, const std::set<int>& shards) {
  const DiskLocation& loc = locations_[li];
  const EcBases bases = EcBasesIn(li, collection, id);
  auto opened = EcVolume::Open(env_, bases, id, collection, offset_bytes_);
  if (!opened.ok()) {
    KLOG_ERROR("load ec volume %u in %s: %s", id, loc.dir.c_str(), opened.status().message().c_str());
    return;
  }
  std::shared_ptr<EcVolume> v = opened.value();
  v->set_disk_type(loc.disk_type);
  for (int shard : shards) {
    auto f = OpenEcShard(env_, bases.data + EcShardExt(shard));
    if (!f.ok()) {
      KLOG_ERROR("load ec shard %u.%d in %s: %s", id, shard, loc.dir.c_str(), f.status().message().c_str());
      continue;
    }
    if (f.value().size == 0 && v->ecx_rows() > 0) {
      KLOG_ERROR("ec volume %u shard %d: shard file is empty (0 bytes) but the index has %llu entries: residue of a failed copy, not a mountable shard",
                 id, shard, static_cast<unsigned long long>(v->ecx_rows()));
      env_->Close(f.value().fd);
      continue;
    }
    v->AddShard(shard, f.value());
  }
  if (!v->empty()) PutEc(li, v);
}

void Store::ReconcileEcAcrossLocations() {
  if (locations_.size() < 2) return;
  // A disk with fewer shards than a rebuild needs, while another disk has
  // the whole .dat they were encoded from and the node cannot rebuild from
  // its shards anyway: leftovers of an encode or a move, removed.
  std::vector<VolumeId> ids;
  for (const auto& [vid, by_location] : ec_volumes_) ids.push_back(vid);
  for (VolumeId vid : ids) {
    const EcByLocation all = EcOf(vid);
    std::set<int> distinct;
    for (const auto& [li, v] : all)
      for (const auto& [shard, f] : v->shards()) distinct.insert(shard);
    for (const auto& [li, v] : all) {
      if (int(v->shards().size()) >= v->data_shards() || int(distinct.size()) >= v->data_shards() || v->dat_file_size() <= 0) continue;
      bool whole_dat_elsewhere = false;
      for (size_t other = 0; other < locations_.size(); ++other)
        if (other != li && FileSizeOf(NamesIn(other, v->collection(), vid).Dat()) == v->dat_file_size()) whole_dat_elsewhere = true;
      if (!whole_dat_elsewhere) continue;
      KLOG_WARN("ec volume %u in %s: %zu shard(s) beside a whole .dat on another disk: its EC files are removed", vid, locations_[li].dir.c_str(),
                v->shards().size());
      DropEc(vid, li);
      const EcBases bases = EcBasesIn(li, v->collection(), vid);
      for (const auto& [shard, f] : v->shards()) EnvRemoveIfExists(env_, bases.data + EcShardExt(shard));
      for (const std::string& b : {bases.data, bases.idx})
        for (const char* ext : {".ecx", ".ecj"}) EnvRemoveIfExists(env_, b + ext);
    }
  }
  // Shards on a disk without the volume's index (moved there by hand, or
  // copied without it): the index, journal and .vif of a disk that has the
  // volume mounted are copied beside them, and they are mounted there.
  for (size_t li = 0; li < locations_.size(); ++li) {
    const DiskLocation& loc = locations_[li];
    std::map<std::string, EcGroup> groups;
    ScanEcFiles(loc.dir, true, &groups);
    if (loc.idx_dir != loc.dir) ScanEcFiles(loc.idx_dir, false, &groups);
    for (const auto& [name, g] : groups) {
      if (g.has_ecx || g.shards.empty() || FindEc(g.id, li)) continue;
      const EcBases here = EcBasesIn(li, g.collection, g.id);
      if (FileSizeOf(here.data + ".dat") > 8) continue;
      std::shared_ptr<EcVolume> sibling;
      for (const auto& [other, v] : EcOf(g.id))
        if (v->collection() == g.collection) sibling = v;
      if (!sibling) continue;
      // The index last: a disk holds an .ecx only with the .vif and journal
      // beside it, so a failure here never leaves one that mounts alone.
      const std::vector<std::pair<std::string, std::string>> copies = {
          {sibling->bases().data + ".vif", here.data + ".vif"}, {sibling->ecj_path(), here.idx + ".ecj"}, {sibling->ecx_path(), here.idx + ".ecx"}};
      std::vector<std::string> made;
      bool copied = true;
      for (const auto& [from, to] : copies) {
        std::string content;
        if (FileSizeOf(to) >= 0 || FileSizeOf(from) < 0) continue;  // there already, or nothing to copy (.vif, .ecj)
        if (!EnvReadWholeFile(env_, from, &content).ok() || !EnvWriteFileAtomically(env_, to, content).ok()) {
          KLOG_ERROR("ec volume %u: copy %s to %s failed: orphan shards in %s not mounted", g.id, from.c_str(), to.c_str(), loc.dir.c_str());
          copied = false;
          break;
        }
        made.push_back(to);
      }
      if (!copied) {
        for (const std::string& path : made) EnvRemoveIfExists(env_, path);
        continue;
      }
      KLOG_INFO("ec volume %u: %zu shard(s) in %s mounted against the index of another disk", g.id, g.shards.size(), loc.dir.c_str());
      LoadEcGroup(li, g.collection, g.id, g.shards);
    }
  }
}

}  // namespace kelp
