// A volume as its single writer (the supervisor) sees it: the .dat opened
// read-write, the .idx appended to, and the shared index segment it publishes.
// (upstream: weed/storage/volume*.go, needle_map_memory.go)
//
// Write ordering, the invariant readers depend on: needle bytes reach the .dat
// first, then the .idx entry, then the index segment. A reader that finds a key
// in the segment therefore always finds the complete needle in the .dat.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "common/index_segment.h"
#include "common/needle.h"
#include "common/status.h"
#include "common/super_block.h"
#include "common/volume_info.h"

namespace kelp {

struct VolumeFileNames {
  std::string dir;      // holds .dat and .vif
  std::string idx_dir;  // holds .idx (== dir unless -dir.idx is set)
  std::string collection;
  VolumeId id = 0;

  std::string Base(const std::string& d) const;  // d/collection_id or d/id
  std::string Dat() const { return Base(dir) + ".dat"; }
  std::string Idx() const { return Base(idx_dir) + ".idx"; }
  std::string Vif() const { return Base(dir) + ".vif"; }
};

struct AppendOutcome {
  uint64_t offset = 0;
  uint32_t size = 0;
};

class Volume {
 public:
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  // Loads an existing volume. Integrity problems at the tail do not fail the
  // load: the volume comes up read-only with `load_warning()` set, as Go does.
  static Result<std::unique_ptr<Volume>> Load(const VolumeFileNames& names, int offset_bytes);
  // Creates a new, empty volume; fails if its .dat already exists.
  static Result<std::unique_ptr<Volume>> Create(const VolumeFileNames& names, const SuperBlock& sb, int offset_bytes);

  // Appends a complete version-3 record (header through padding) built by a
  // worker. Patches append_at_ns in place. Checks read-only, size limit and, for
  // an existing live needle, the cookie.
  Result<AppendOutcome> Append(uint8_t* record, size_t len, uint64_t size_limit);
  // Appends a tombstone; returns the deleted needle's size (0 when absent).
  Result<uint32_t> Delete(NeedleId id, Cookie cookie, uint64_t append_at_ns_hint = 0);

  // Reads and verifies the live needle `id`; `record` owns the bytes `out` views.
  // NotFound ("not found" / "already deleted", Go's texts) otherwise.
  Status ReadNeedle(NeedleId id, std::string* record, ParsedNeedle* out) const;

  Status Sync();
  Status SetReadOnly(bool read_only, bool persist);

  // Replaces the published segment with a larger copy. The old segment is
  // returned so the caller can keep it alive until readers have switched.
  Result<IndexSegmentWriter> GrowSegment();
  // Old segments still mapped by some reader get every update too.
  void AddTrailingSegment(IndexSegmentWriter* s) { trailing_ = s; }
  void ClearTrailingSegment() { trailing_ = nullptr; }

  VolumeId id() const { return names_.id; }
  const std::string& collection() const { return names_.collection; }
  const VolumeFileNames& names() const { return names_; }
  const SuperBlock& super_block() const { return super_block_; }
  uint8_t version() const { return super_block_.version; }
  bool read_only() const { return read_only_; }
  const std::string& load_warning() const { return load_warning_; }
  uint64_t dat_size() const { return dat_end_; }
  const SegmentCounters& counters() const { return counters_; }
  const VolumeInfo& info() const { return info_; }
  uint64_t idx_size() const { return idx_end_; }
  IndexSegmentWriter& segment() { return segment_; }
  int dat_fd() const { return dat_fd_; }
  std::optional<IndexValue> Lookup(NeedleId id) const { return segment_.Get(id); }

 private:
  Volume(VolumeFileNames names, int offset_bytes) : names_(std::move(names)), offset_bytes_(offset_bytes) {}
  Status OpenFiles(bool create);
  Status ReplayIndex();
  void CheckTail();
  void Publish(NeedleId id, const IndexValue& v);
  void RecordPut(NeedleId id, uint32_t size, std::optional<IndexValue> old);
  Status AppendIdx(NeedleId id, uint64_t offset_units, int32_t size);
  uint64_t NextAppendAtNs(uint64_t hint);
  Result<uint32_t> StoredSize(const IndexValue& v) const;
  Status SaveInfo();

  VolumeFileNames names_;
  int offset_bytes_;
  SuperBlock super_block_;
  VolumeInfo info_;
  int dat_fd_ = -1;
  int idx_fd_ = -1;
  uint64_t dat_end_ = 0;
  uint64_t idx_end_ = 0;
  uint64_t last_append_at_ns_ = 0;
  bool read_only_ = false;
  std::string load_warning_;
  SegmentCounters counters_;
  IndexSegmentWriter segment_;
  IndexSegmentWriter* trailing_ = nullptr;
};

}  // namespace kelp
