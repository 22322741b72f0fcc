// CRC-32C (Castagnoli) as Go's hash/crc32 computes it, backed by ISA-L's
// hardware-accelerated crc32_iscsi (upstream: weed/storage/needle/crc.go).
#pragma once
#include <cstddef>
#include <cstdint>

namespace kelp {

// Continues a CRC: Crc32cUpdate(Crc32cUpdate(0, a), b) == Crc32c(a ++ b).
uint32_t Crc32cUpdate(uint32_t crc, const void* data, size_t len);
inline uint32_t Crc32c(const void* data, size_t len) { return Crc32cUpdate(0, data, len); }

// The transformed value older writers stored; readers accept either form.
inline uint32_t LegacyCrcValue(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace kelp
