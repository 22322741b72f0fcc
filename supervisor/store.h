// The volumes this server holds, across its -dir locations. Owned by the
// supervisor, the only process that opens volume files for writing.
// (upstream: weed/storage/store.go, disk_location.go)
#pragma once
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/disk_writer.h"
#include "storage/ec_volume.h"
#include "storage/volume.h"

namespace kelp {

struct DiskLocation {
  std::string dir;
  std::string idx_dir;
  int max_volumes = 8;    // 0: derived from free space once the size limit is known
  std::string disk_type;  // "" is hdd
  std::string uuid;       // vol_dir.uuid, shared with the Go server
  int effective_max = 8;  // max_volumes, or the derived count for -max 0
};

struct NewVolumeSpec {
  VolumeId id = 0;
  std::string collection;
  SuperBlock super_block;
  std::string disk_type;
  int64_t preallocate = 0;
};

struct DiskUsage {
  uint64_t all = 0, used = 0, free = 0;
};

// Splits "collection_vid" (collection may itself contain '_') like Go does.
bool ParseVolumeFileBase(const std::string& base, std::string* collection, VolumeId* id);

// Removes every EC file an encode of the volume may have left in one
// location (shards, .ecx, .ecj, .ecsum in both directories) and the .vif
// where no .idx says the regular volume lives there. Absent files are fine.
Status RemoveEcFiles(Env* env, const VolumeFileNames& names);

class Store {
 public:
  Store(std::vector<DiskLocation> locations, int offset_bytes, Env* env = Env::Default())
      : locations_(std::move(locations)), offset_bytes_(offset_bytes), env_(env) {}
  ~Store();

  // One disk writer per location; until started, mutations run inline.
  void StartWriters(uv_loop_t* loop);
  // Syncs every volume and stops the writers (shutdown).
  void StopWriters();
  DiskWriter* WriterFor(VolumeId id) const;
  Env* env() const { return env_; }
  int offset_bytes() const { return offset_bytes_; }
  DiskWriter* LocationWriter(size_t location) const { return location < writers_.size() ? writers_[location].get() : nullptr; }
  std::shared_ptr<Volume> Shared(VolumeId id) const;

  // Loads every volume found; a volume that fails to load is logged and skipped.
  Status LoadAll();
  Volume* Find(VolumeId id) const;
  const std::map<VolumeId, std::shared_ptr<Volume>>& volumes() const { return volumes_; }
  const std::vector<DiskLocation>& locations() const { return locations_; }
  size_t LocationOf(VolumeId id) const;
  size_t VolumeCountIn(size_t location) const;

  // Creates a volume in the location of its disk type with the most room:
  // PickLocation, CreateFiles and Adopt in one call.
  Result<Volume*> AddVolume(const NewVolumeSpec& spec);
  // The location of the spec's disk type with room and the fewest volumes
  // (volumes being created there count).
  Result<size_t> PickLocation(const NewVolumeSpec& spec) const;
  VolumeFileNames NamesIn(size_t location, const std::string& collection, VolumeId id) const;
  // Creates the files of a new volume. Touches no Store state, so it may run
  // on the location's writer thread.
  Result<std::shared_ptr<Volume>> CreateFiles(const VolumeFileNames& names, const NewVolumeSpec& spec) const;

  // A volume whose files are being created, rewritten or removed on a writer
  // thread is busy: not mountable and not allocatable until EndBusy. One that
  // will be mounted in `location` counts toward that location's volumes.
  void BeginBusy(VolumeId id, size_t location, bool counts);
  void EndBusy(VolumeId id);
  bool Busy(VolumeId id) const { return busy_.count(id) != 0; }
  // Mounting is Locate (on the loop), LoadLocated (on the writer), then Adopt.
  struct Located {
    size_t location = 0;
    VolumeFileNames names;
  };
  // Where volume `id`'s files are (a scan of the location directories).
  Result<Located> Locate(VolumeId id) const;
  // Opens and loads located files. Touches no Store state, so it may run on
  // the location's writer thread.
  Result<std::shared_ptr<Volume>> LoadLocated(const Located& where) const;
  // Adds a loaded volume. If one with its id was mounted meanwhile, that one
  // stays and is returned; `adopted` says which happened.
  Volume* Adopt(std::shared_ptr<Volume> v, size_t location, bool* adopted);
  // Closes a volume, keeping its files. An absent volume is not an error.
  Status UnmountVolume(VolumeId id);
  // On the loop, after a vacuum commit: `next` takes its predecessor's place
  // (its writer already serves it).
  void ReplaceCompacted(std::shared_ptr<Volume> next);
  // Deleting is BeginDelete, RemoveFiles (on the writer), then EndBusy.
  // A volume taken out of the Store whose files are still to be removed.
  struct Removal {
    std::shared_ptr<Volume> volume;
    size_t location = 0;
    bool ec_mounted = false;  // an EC volume of the id is mounted in that location
  };
  // Takes the volume out (it is busy until EndBusy); RemoveFiles then runs on
  // the location's writer thread, after the mutations already queued there.
  Result<Removal> BeginDelete(VolumeId id, bool only_empty);
  // Unlinks the files, syncs the directory and drops the volume. Touches no
  // Store state.
  void RemoveFiles(Removal removal) const;

  // Erasure-coded volumes (store_ec.cc): one EcVolume per (volume, location)
  // holding shards of it. Changed on the loop only.
  using EcByLocation = std::map<size_t, std::shared_ptr<EcVolume>>;
  const std::map<VolumeId, EcByLocation>& ec_volumes() const { return ec_volumes_; }
  std::shared_ptr<EcVolume> FindEc(VolumeId id, size_t location) const;
  // The volume's EC instances in location order (empty when none).
  EcByLocation EcOf(VolumeId id) const;
  void PutEc(size_t location, std::shared_ptr<EcVolume> v);
  void DropEc(VolumeId id, size_t location);
  EcBases EcBasesIn(size_t location, const std::string& collection, VolumeId id) const;
  // Shards mounted in a location (they take slots: ten shards, one volume).
  size_t EcShardCountIn(size_t location) const;
  // Opens a shard file read-only: its descriptor and size. May run on a writer thread.
  static Result<EcShardFile> OpenEcShard(Env* env, const std::string& path);

  uint64_t volume_size_limit() const { return volume_size_limit_; }
  // Also recomputes the derived maximum of -max 0 locations.
  void set_volume_size_limit(uint64_t v);
  static DiskUsage UsageOf(const std::string& dir);

 private:
  // A .cpc finishes an interrupted vacuum commit, stray .cpd/.cpx are removed (Go 4.34+).
  void FinishInterruptedCompaction(const VolumeFileNames& names) const;
  Status LoadLocation(size_t li);
  // Mounts the EC shards found in a location, after its regular volumes.
  void LoadEcLocation(size_t li);
  // Mounts the shards of one EC volume found in location `li`, against that location's index.
  void LoadEcGroup(size_t li, const std::string& collection, VolumeId id, const std::set<int>& shards);
  // After every location is loaded, with two or more: Go's start-up across
  // disks (docs/erasure-coding.md §4.5, step 4).
  void ReconcileEcAcrossLocations();
  std::vector<DiskLocation> locations_;
  // Hands a volume that left the store to its writer: queued mutations fail
  // as "not found", then the files are synced and closed on the writer thread.
  void Release(std::shared_ptr<Volume> v, size_t location, bool sync);
  int offset_bytes_;
  Env* env_;
  std::vector<std::unique_ptr<DiskWriter>> writers_;
  std::map<VolumeId, std::shared_ptr<Volume>> volumes_;
  std::map<VolumeId, size_t> location_of_;
  std::map<VolumeId, EcByLocation> ec_volumes_;
  struct BusyVolume {
    size_t location;
    bool counts;
  };
  std::map<VolumeId, BusyVolume> busy_;
  uint64_t volume_size_limit_ = 0;  // 0 until a master tells us
};

}  // namespace kelp
