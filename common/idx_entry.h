// .idx entries: needle id u64 | offset (4 or 5 bytes) | size i32, big-endian
// (upstream: weed/storage/idx/, weed/storage/types/offset_*.go).
// The offset is in units of 8 bytes. With 5-byte offsets bytes 0..3 hold the
// low 32 bits big-endian and byte 4 the highest 8 bits.
// A size of -1 is a tombstone; entries are replayed in order, last one wins.
#pragma once
#include <cstdint>
#include <functional>

#include "common/status.h"

#include "common/types.h"

namespace kelp {

struct IdxEntry {
  NeedleId id = 0;
  uint64_t offset_units = 0;  // byte offset / 8
  int32_t size = 0;

  uint64_t ByteOffset() const { return offset_units * kNeedlePaddingSize; }
  bool IsDeleted() const { return size < 0 || offset_units == 0; }
};

constexpr int IdxEntrySize(int offset_bytes) { return kNeedleIdSize + offset_bytes + kSizeSize; }

void EncodeIdxEntry(const IdxEntry& e, int offset_bytes, uint8_t* out);
IdxEntry DecodeIdxEntry(const uint8_t* in, int offset_bytes);

// Every whole row in the first `size` bytes of an .idx open on `fd`, in
// order, read in blocks of a few thousand rows. A failed read ends the walk
// with its reason.
Status ForEachIdxEntry(int fd, uint64_t size, int offset_bytes, const std::function<void(const IdxEntry&)>& visit);

}  // namespace kelp
