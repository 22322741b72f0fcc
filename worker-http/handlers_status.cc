// /status: the disks and the volumes of this server, in the keys and forms of
// Go's answer (json.Marshal of its VolumeInfo structs).
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/disk_status.h"
#include "common/file_util.h"
#include "worker-http/handlers.h"
#include "worker-http/json_writer.h"

namespace kelp {
namespace {

// Go's DiskType.String(): lower-cased, and the hard-drive type is "".
std::string GoDiskType(std::string type) {
  for (char& c : type) c = char(tolower(static_cast<unsigned char>(c)));
  return type == "hdd" ? "" : type;
}

std::string RealDir(const std::string& dir) {
  char buf[PATH_MAX];
  return realpath(dir.c_str(), buf) ? std::string(buf) : AbsolutePath(dir);
}

std::string DiskJson(const std::string& dir, const std::string& disk_type) {
  JsonObject d;
  d.Str("dir", dir);
  if (const DiskStatus st = ReadDiskStatus(dir); st.ok) {
    d.UNum("all", st.all).UNum("used", st.used).UNum("free", st.free);
    if (st.all > 0) d.Raw("percent_free", GoJsonFloat32(st.percent_free)).Raw("percent_used", GoJsonFloat32(st.percent_used));
  }
  // The protobuf field is omitempty: absent for hard drives.
  if (!disk_type.empty()) d.Str("disk_type", disk_type);
  return d.Done();
}

}  // namespace

void Handlers::Status(http::Request& r, http::Respond respond) {
  std::string disks = "[";
  std::vector<std::pair<std::string, std::string>> dir_types;  // resolved location dir, Go disk type
  for (const auto& loc : config_.locations) {
    const std::string type = GoDiskType(loc.disk_type);
    dir_types.emplace_back(RealDir(loc.dir), type);
    if (disks.size() > 1) disks += ",";
    disks += DiskJson(AbsolutePath(loc.dir), type);
  }
  disks += "]";
  std::string vols = "[";
  for (const auto& [id, v] : volumes_->all()) {
    const SegmentCounters c = v->segment.Counters();
    JsonObject rp;
    if (v->replica_placement.same_rack) rp.Num("node", v->replica_placement.same_rack);
    if (v->replica_placement.diff_rack) rp.Num("rack", v->replica_placement.diff_rack);
    if (v->replica_placement.diff_data_center) rp.Num("dc", v->replica_placement.diff_data_center);
    std::string disk_type;
    for (const auto& [dir, type] : dir_types)
      if (dir == v->dir) disk_type = type;
    // Go reports the .dat file's modification time, read at each request.
    struct stat st{};
    const long long modified = v->dat_fd >= 0 && fstat(v->dat_fd, &st) == 0 ? (long long)st.st_mtime : 0;
    JsonObject o;
    o.Str("Collection", v->collection).Str("DiskType", disk_type).Str("RemoteStorageName", "");
    o.Raw("ReplicaPlacement", rp.Done());
    o.Raw("Ttl", JsonObject().Num("Count", v->ttl.count).Num("Unit", v->ttl.unit).Done());
    o.UNum("Size", c.content_size).UNum("DeletedByteCount", c.deleted_bytes).Num("ModifiedAtSecond", modified);
    o.UNum("Id", id).UNum("DiskId", 0).UNum("CompactRevision", v->compaction_revision);
    o.UNum("FileCount", std::min<uint64_t>(c.file_count, UINT32_MAX)).UNum("DeleteCount", std::min<uint64_t>(c.deleted_count, UINT32_MAX));
    // kelp has no read-only state that still takes deletes (VolumeMarkReadonly's can_delete).
    o.UNum("Version", v->version).Bool("ReadOnly", v->segment.ReadOnly()).Bool("ReadOnlyCanDelete", false);
    if (vols.size() > 1) vols += ",";
    vols += o.Done();
  }
  vols += "]";
  JsonObject top;
  top.Raw("DiskStatuses", disks).Str("Version", ServerVersion()).Raw("Volumes", vols);
  respond(JsonResponse(r, 200, top.Done()));
}

}  // namespace kelp
