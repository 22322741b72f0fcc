// Finding and walking the records a volume appended after a given time, read
// from its .idx and .dat through plain descriptors. Read-only: any process
// that holds the files may use it (the gRPC worker does, for tails and
// incremental copies). (upstream: weed/storage/volume_backup.go
// BinarySearchByAppendAtNs, volume_read.go ScanVolumeFileFrom)
//
// Callers pass sizes that bound what was whole when they were taken: every
// .idx row below `idx_size` names a record that ends at or below `dat_size`.
// Nothing past those sizes is read, so a record still being appended is never
// seen half-written (Go reads to the end of the file and may send one so).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kelp {

struct VolumeFilesView {
  int dat_fd = -1;
  int idx_fd = -1;
  uint8_t version = 3;
  int offset_bytes = 4;
  uint64_t dat_size = 0;
  uint64_t idx_size = 0;
  uint64_t idx_file_size = 0;  // the .idx file's own size when opened (scrubs compare it)
  uint64_t dat_size_with_idx = 0;  // the .dat size taken in the same step as idx_size and idx_file_size
  uint64_t first_record = 8;   // the superblock's size: where records start
  std::string dat_path, idx_path;  // for Go's error texts
};

struct AppendedAfter {
  bool nothing_newer = true;
  uint64_t offset = 0;  // the first record appended after the time, in bytes (never inside the superblock)
};

// Go's search, probe for probe: a lower bound over the .idx rows in file
// order by their records' append_at_ns, stepping over rows with offset 0.
// After a vacuum the times along the .idx are not monotonic; probing the
// same rows as Go keeps the answers identical anyway.
Result<AppendedAfter> FindFirstAppendedAfter(const VolumeFilesView& files, uint64_t since_ns);

// One record as a scan meets it. `body` is a slice of the record's body
// (everything after the 16-byte header), starting `body_at` bytes in; a body
// longer than the slice limit arrives in several slices, `last` on the final one.
struct RecordSlice {
  uint64_t offset = 0;  // of the record in the .dat
  std::string_view header;
  std::string_view body;
  uint64_t body_at = 0;
  uint64_t body_length = 0;
  bool last = false;
};

// Visits every record from `from` up to `files.dat_size`, in file order, with
// bodies cut into slices of at most `slice_limit` bytes (memory stays bounded
// whatever the needle size). dat_size is a record boundary, so a record that
// does not end within it is damage and ends the scan with an error, as does
// a visitor's error. `*last_append_at_ns` gets the append time of the last
// record visited whole (0 on versions 1 and 2). With `wanted`, a record it
// turns down (by offset and header) is stepped over without reading its body.
Status ScanRecordsFrom(const VolumeFilesView& files, uint64_t from, size_t slice_limit,
                       const std::function<Status(const RecordSlice&)>& visit, uint64_t* last_append_at_ns,
                       const std::function<bool(uint64_t offset, std::string_view header)>& wanted = nullptr);

}  // namespace kelp
