// The .ecsum sidecar Go 4.48 writes beside an erasure-coded volume's shards:
// a 14-byte big-endian header (magic "ECSU", format version 1, payload
// length, CRC-32C of the payload) and the EcBitrotProtection message.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/volume_info.h"

namespace kelp {

inline constexpr uint32_t kEcsumMagic = 0x45435355;
inline constexpr uint16_t kEcsumFormatVersion = 1;
inline constexpr size_t kEcsumHeaderSize = 14;

// `crcs[s]`: shard s's CRC-32C per `checksum_block` bytes; every shard is
// `shard_size` bytes. `encode_uuid` is the run's 16 random bytes.
std::string EncodeEcsum(const EcShardConfigInfo& config, uint32_t checksum_block, uint64_t shard_size,
                        const std::vector<std::vector<uint32_t>>& crcs, const std::string& encode_uuid);

}  // namespace kelp
