// The 8-byte volume superblock at offset 0 of every .dat file, optionally
// followed by ExtraSize bytes of a protobuf SuperBlockExtra that is kept opaque
// (upstream: weed/storage/super_block/super_block.go, super_block_read.go).
//   0: version (1..3)   1: replica placement byte   2-3: TTL
//   4-5: compaction revision (BE)   6-7: extra size (BE, versions 2 and 3)
#pragma once
#include <cstdint>
#include <string>

#include "common/replica_placement.h"
#include "common/status.h"
#include "common/ttl.h"
#include "common/types.h"

namespace kelp {

inline constexpr uint8_t kVersion1 = 1, kVersion2 = 2, kVersion3 = 3, kCurrentVersion = kVersion3;

struct SuperBlock {
  uint8_t version = kCurrentVersion;
  ReplicaPlacement replica_placement;
  Ttl ttl;
  uint16_t compaction_revision = 0;
  std::string extra;  // raw SuperBlockExtra bytes, preserved verbatim

  // Bytes the superblock occupies in the .dat; the first needle starts here.
  size_t BlockSize() const { return (version == kVersion2 || version == kVersion3) ? kSuperBlockSize + extra.size() : kSuperBlockSize; }
  std::string Encode() const;
};

// Parses the first 8 bytes; `extra` is then read by the caller from
// [8, 8 + ExtraSizeOf(header)). Rejects unknown versions.
Result<SuperBlock> ParseSuperBlockHeader(const uint8_t* header8);
uint16_t ExtraSizeOf(const uint8_t* header8);

}  // namespace kelp
