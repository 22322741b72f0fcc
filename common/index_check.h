// Go's CheckIndexFile over the rows of an .idx or .ecx: records that overlap
// in the .dat, and a file that is not whole rows. Texts are Go 4.48's.
// (upstream: weed/storage/volume_checking.go; docs/scrub-query-receive.md §2.3)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/idx_entry.h"

namespace kelp {

struct IndexRow {
  IdxEntry entry;
  size_t position = 0;  // 1-based, in file order
  bool deleted() const { return entry.size < 0; }
};

// The record bytes a row stands for (a tombstone counts as a size-0 record).
uint64_t IndexRowRecordBytes(const IndexRow& r, uint8_t version);

// Appends an error per overlap and one for a size that is not whole rows.
void CheckIndexRows(const std::vector<IndexRow>& rows, uint64_t file_size, int offset_bytes, uint8_t version, std::vector<std::string>* errors);

}  // namespace kelp
