// An erasure-coded volume mounted on one disk location: its sealed index
// (.ecx), its deletion journal (.ecj), its .vif, and the shards of it this
// location serves. (upstream: weed/storage/erasure_coding/ec_volume.go,
// ec_volume_delete.go; docs/erasure-coding.md §4, §9)
//
// Invariants:
// - The .ecx is never written while mounted; lookups binary-search it with
//   preads, so it may be shared read-only with any process.
// - The .ecj has one writer, this object, in the supervisor: a delete is
//   appended and synced before the id joins the deleted set, and a failed
//   append is truncated back, so the set never holds a delete the disk lost.
// - Shard descriptors are read-only and owned here; callers that hand one
//   elsewhere duplicate it.
// Every method is thread-safe: journal appends run on the location's writer
// thread while the loop mounts and unmounts shards.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/ec_format/ec_checksums.h"
#include "common/ec_layout.h"
#include "common/rs_codec.h"
#include "common/idx_entry.h"
#include "common/status.h"
#include "common/types.h"
#include "common/volume_info.h"
#include "storage/env.h"

namespace kelp {

// Where one location keeps a volume's EC files: "<dir>/<collection>_<vid>"
// (or "<dir>/<vid>") for its data and its index directories.
struct EcBases {
  std::string data;
  std::string idx;
};

struct EcShardFile {
  int fd = -1;
  int64_t size = 0;  // at mount; reported in heartbeats and infos
};

class EcVolume {
 public:
  ~EcVolume();
  EcVolume(const EcVolume&) = delete;
  EcVolume& operator=(const EcVolume&) = delete;

  // Opens the index (the data directory's non-empty .ecx, else the index
  // directory's, else whichever exists), creates or loads the journal beside
  // it (a torn tail is cut back to whole records), and reads the .vif (data
  // directory, then index directory). Errors carry Go's texts.
  static Result<std::shared_ptr<EcVolume>> Open(Env* env, const EcBases& bases, VolumeId id, const std::string& collection,
                                                int offset_bytes);

  VolumeId id() const { return id_; }
  const std::string& collection() const { return collection_; }
  const std::string& ecx_path() const { return ecx_path_; }
  const std::string& ecj_path() const { return ecj_path_; }
  const EcBases& bases() const { return bases_; }
  int offset_bytes() const { return offset_bytes_; }
  int ecx_fd() const { return ecx_fd_; }
  // The .vif as loaded: version (3 without one), dat_file_size, expiry, config.
  uint32_t version() const { return version_; }
  int64_t dat_file_size() const { return dat_file_size_; }
  uint64_t expire_at_sec() const { return expire_at_sec_; }
  int data_shards() const { return data_shards_; }
  int parity_shards() const { return parity_shards_; }
  int64_t encode_ts_ns() const { return encode_ts_ns_; }
  int64_t block_size() const { return block_size_; }  // 0: the legacy layout
  EcLayout layout() const;
  // Go's shardDatSize: dat_file_size / data when recorded, else a shard's length - 1.
  uint64_t ShardDatSize() const;
  // The .ecsum as read when this location mounted the volume (the data
  // directory's, else the index directory's); Go also reads it once, at mount.
  const EcsumFile& checksum_sidecar() const { return checksum_sidecar_; }
  // Rows in the .ecx, live or folded tombstones (the heartbeat's file_count).
  uint64_t ecx_rows() const { return ecx_rows_; }

  // The .ecx row of `key`, or nullopt. A read failure is an error.
  Result<std::optional<IdxEntry>> Find(NeedleId key) const;
  // Deleted here: a tombstone folded into the .ecx, or journaled.
  bool Journaled(NeedleId key) const;
  // Go's DeleteNeedleFromEcx: absent from the .ecx or already deleted is
  // success with nothing written; otherwise appended to the .ecj and synced.
  Status JournalDelete(NeedleId key);
  size_t deleted_count() const;
  // Folds the journal into the .ecx (each journaled id's row gets a deleted
  // size) and empties the journal, under the journal's lock: the deleted set
  // stays, and later deletes go on into the same, emptied file.
  Status FoldJournal();
  // Syncs the .ecx and .ecj (before they are copied elsewhere).
  void Sync() const;
  // .ecx rows not deleted, rows deleted, and the sum of live sizes (VolumeEcShardsInfo).
  struct IndexCounts {
    uint64_t live = 0, deleted = 0, live_bytes = 0;
  };
  Result<IndexCounts> CountIndex() const;

  // The record an .ecx row names, from the shards mounted here. A piece on a
  // shard not mounted here is NotFound naming the shard; a short shard is an error.
  Result<std::string> ReadLocalRecord(const IdxEntry& row) const;

  // Shards: descriptors owned here. Adding a shard already present replaces it.
  void AddShard(int shard, EcShardFile file);
  // Closes and forgets the shard; false when it was not mounted.
  bool RemoveShard(int shard);
  std::map<int, EcShardFile> shards() const;
  bool HasShard(int shard) const;
  // A duplicate of the shard's descriptor (the caller owns it), or -1.
  int DupShard(int shard, int64_t* size) const;
  bool empty() const;

  // The disk type the volume reports: its location's, or the one a mount named.
  std::string disk_type() const;
  void set_disk_type(const std::string& t);

 private:
  EcVolume() = default;
  Env* env_ = nullptr;
  VolumeId id_ = 0;
  std::string collection_;
  EcBases bases_;
  int offset_bytes_ = 4;
  std::string ecx_path_, ecj_path_;
  int ecx_fd_ = -1;
  uint64_t ecx_rows_ = 0;
  uint32_t version_ = 3;
  int64_t dat_file_size_ = 0;
  uint64_t expire_at_sec_ = 0;
  int data_shards_ = 10, parity_shards_ = 4;
  int64_t encode_ts_ns_ = 0, block_size_ = 0;
  EcsumFile checksum_sidecar_;

  mutable std::mutex mu_;  // guards everything below
  int ecj_fd_ = -1;
  uint64_t ecj_size_ = 0;
  std::unordered_set<NeedleId> deleted_;
  std::map<int, EcShardFile> shards_;
  std::string disk_type_;
};

// Go's RebuildEcxFile for a volume nobody has mounted: each id in the .ecj
// marks its .ecx row deleted (size bytes set to ff), the .ecx is synced, and
// the .ecj removed. An absent .ecj is nothing to do; a torn one fails with
// Go's text and is kept.
Status FoldEcJournalFile(Env* env, const std::string& ecx_path, const std::string& ecj_path, int offset_bytes);

// The first of `candidates` that exists, read whole (unreadable when it
// cannot be, or is too large to be a sidecar); not present when none does.
EcsumFile ReadEcsumFile(Env* env, const std::vector<std::string>& candidates);

// "<base>.ecNN" names in a directory listing: the shard id, or -1.
int EcShardIdOfName(const std::string& name, const std::string& base_name);

}  // namespace kelp
