#include "common/index_check.h"

#include <algorithm>

#include "common/needle.h"

namespace kelp {

uint64_t IndexRowRecordBytes(const IndexRow& r, uint8_t version) { return ActualSize(r.deleted() ? 0 : uint32_t(r.entry.size), version); }

void CheckIndexRows(const std::vector<IndexRow>& rows, uint64_t file_size, int offset_bytes, uint8_t version, std::vector<std::string>* errors) {
  std::vector<const IndexRow*> placed;
  for (const IndexRow& r : rows)
    if (!(r.entry.offset_units == 0 && r.deleted())) placed.push_back(&r);
  std::sort(placed.begin(), placed.end(), [](const IndexRow* a, const IndexRow* b) {
    return a->entry.offset_units != b->entry.offset_units ? a->entry.offset_units < b->entry.offset_units : a->entry.size < b->entry.size;
  });
  for (size_t i = 1; i < placed.size(); ++i) {
    const IndexRow& prev = *placed[i - 1];
    const IndexRow& cur = *placed[i];
    const uint64_t prev_start = prev.entry.ByteOffset(), prev_end = prev_start + IndexRowRecordBytes(prev, version) - 1;
    const uint64_t start = cur.entry.ByteOffset(), end = start + IndexRowRecordBytes(cur, version) - 1;
    if (start <= prev_end)
      errors->push_back("needle " + std::to_string(cur.entry.id) + " (#" + std::to_string(cur.position) + ") at [" + std::to_string(start) + "-" +
                        std::to_string(end) + "] overlaps needle " + std::to_string(prev.entry.id) + " at [" + std::to_string(prev_start) + "-" +
                        std::to_string(prev_end) + "]");
  }
  const uint64_t whole = uint64_t(rows.size()) * uint64_t(IdxEntrySize(offset_bytes));
  if (whole != file_size) errors->push_back("expected an index file of size " + std::to_string(file_size) + ", got " + std::to_string(whole));
}

}  // namespace kelp
