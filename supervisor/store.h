// The volumes this server holds, across its -dir locations. Owned by the
// supervisor, the only process that opens volume files for writing.
// (upstream: weed/storage/store.go, disk_location.go)
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/volume.h"

namespace kelp {

struct DiskLocation {
  std::string dir;
  std::string idx_dir;
  int max_volumes = 8;
  std::string disk_type;  // "" is hdd
};

// Splits "collection_vid" (collection may itself contain '_') like Go does.
bool ParseVolumeFileBase(const std::string& base, std::string* collection, VolumeId* id);

class Store {
 public:
  explicit Store(std::vector<DiskLocation> locations, int offset_bytes)
      : locations_(std::move(locations)), offset_bytes_(offset_bytes) {}

  // Loads every volume found; a volume that fails to load is logged and skipped.
  Status LoadAll();
  Volume* Find(VolumeId id) const;
  const std::map<VolumeId, std::unique_ptr<Volume>>& volumes() const { return volumes_; }
  const std::vector<DiskLocation>& locations() const { return locations_; }
  uint64_t volume_size_limit() const { return volume_size_limit_; }
  void set_volume_size_limit(uint64_t v) { volume_size_limit_ = v; }

 private:
  std::vector<DiskLocation> locations_;
  int offset_bytes_;
  std::map<VolumeId, std::unique_ptr<Volume>> volumes_;
  std::map<VolumeId, size_t> location_of_;
  uint64_t volume_size_limit_ = 0;  // 0 until a master tells us
};

}  // namespace kelp
