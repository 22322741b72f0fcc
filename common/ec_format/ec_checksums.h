// The .ecsum sidecar Go 4.48 writes beside an erasure-coded volume's shards:
// a 14-byte big-endian header (magic "ECSU", format version 1, payload
// length, CRC-32C of the payload) and the EcBitrotProtection message, which
// holds each shard's CRC-32C per checksum block. (upstream:
// weed/storage/erasure_coding/ec_bitrot.go; docs/erasure-coding.md §4.3)
//
// Linked by the supervisor, which writes it at an encode, and by the gRPC
// worker, which checks shards against it; both link protobuf.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/volume_info.h"

namespace kelp {

inline constexpr uint32_t kEcsumMagic = 0x45435355;
inline constexpr uint16_t kEcsumFormatVersion = 1;
inline constexpr size_t kEcsumHeaderSize = 14;
inline constexpr uint32_t kEcsumMinBlock = 1u << 20, kEcsumMaxBlock = 64u << 20;

// `crcs[s]`: shard s's CRC-32C per `checksum_block` bytes; every shard is
// `shard_size` bytes. `encode_uuid` is the run's 16 random bytes.
std::string EncodeEcsum(const EcShardConfigInfo& config, uint32_t checksum_block, uint64_t shard_size,
                        const std::vector<std::vector<uint32_t>>& crcs, const std::string& encode_uuid);

struct EcShardChecksumEntry {
  uint32_t shard = 0;
  int64_t covered_size = 0;
  std::vector<uint32_t> block_crcs;  // one per checksum block, the last one partial
  size_t crc_bytes = 0;              // as packed: valid only when 4 per block
};

struct EcChecksumManifest {
  uint32_t algorithm = 0;
  uint32_t block_size = 0;
  uint32_t generation = 0;
  bool has_config = false;
  uint32_t data_shards = 0, parity_shards = 0;
  std::vector<EcShardChecksumEntry> shards;  // in the file's order

  const EcShardChecksumEntry* Find(uint32_t shard) const;
};

// The header and the payload's message; errors name `path`.
Result<EcChecksumManifest> ParseEcsum(std::string_view bytes, const std::string& path);

// Go's manifest checks for a data+parity volume: CRC-32C, a power-of-two
// block in [1 MiB, 64 MiB], one entry per shard id, each covering a positive
// size with one CRC per block.
Status ValidateEcsumManifest(const EcChecksumManifest& m, int data, int parity);

// What a sidecar means for a volume, as Go decides it when it mounts one:
// absent, of another generation or another ratio: off (nothing to check);
// unreadable or failing a check: invalid; otherwise on.
enum class EcsumState { kOff, kInvalid, kOn };

struct EcsumFile {
  bool present = false;
  bool unreadable = false;
  std::string bytes;
  std::string path;
};

// `*manifest` is set when the answer is kOn; `*why` says why kInvalid.
EcsumState EvaluateEcsum(const EcsumFile& file, int data, int parity, EcChecksumManifest* manifest, std::string* why);

}  // namespace kelp
