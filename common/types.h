// Sizes and constants of the SeaweedFS storage formats
// (upstream: weed/storage/types/needle_types.go, offset_4bytes.go, offset_5bytes.go).
#pragma once
#include <cstdint>

#ifndef KELP_OFFSET_BYTES
#define KELP_OFFSET_BYTES 4
#endif
static_assert(KELP_OFFSET_BYTES == 4 || KELP_OFFSET_BYTES == 5, "offsets are 4 or 5 bytes");

namespace kelp {

using NeedleId = uint64_t;
using Cookie = uint32_t;
using VolumeId = uint32_t;

inline constexpr int kCookieSize = 4;
inline constexpr int kNeedleIdSize = 8;
inline constexpr int kSizeSize = 4;
inline constexpr int kNeedleHeaderSize = kCookieSize + kNeedleIdSize + kSizeSize;  // 16
inline constexpr int kNeedleChecksumSize = 4;
inline constexpr int kTimestampSize = 8;  // v3 AppendAtNs
inline constexpr int kNeedlePaddingSize = 8;
inline constexpr int kSuperBlockSize = 8;
inline constexpr int kLastModifiedBytes = 5;
inline constexpr int kTtlBytes = 2;

// In .idx entries and in needle headers a size of -1 (0xFFFFFFFF) is a tombstone;
// other negative sizes mark a deleted needle whose former size is kept.
inline constexpr int32_t kTombstoneSize = -1;

// The offset width used by this build; Go picks it at compile time too
// (the "large_disk" / 5BytesOffset build).
inline constexpr int kBuildOffsetBytes = KELP_OFFSET_BYTES;
inline constexpr uint64_t MaxVolumeSizeFor(int offset_bytes) {
  return offset_bytes == 5 ? uint64_t(4) * 1024 * 1024 * 1024 * 8 * 256 : uint64_t(4) * 1024 * 1024 * 1024 * 8;
}

}  // namespace kelp
