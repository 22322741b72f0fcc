// Erasure-coding a volume into new files (Go's VolumeEcShardsGenerate): the
// sorted .ecx from the .idx, and the shards from the .dat in Go 4.48's
// uniform layout (common/ec_layout.h). Runs in a job process on descriptors
// the supervisor opened; it reads the volume and writes only the new files.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "common/rs_codec.h"
#include "common/status.h"
#include "storage/env.h"

namespace kelp {

// The .ecx: the live entries of the .idx rows in [0, idx_end), last row per
// key winning, a deleted row removing the key, written in ascending id order
// as .idx rows. Returns the number of rows written.
Result<uint64_t> WriteSortedIndex(int idx_fd, uint64_t idx_end, int offset_bytes, int ecx_fd, Env* env);

// The .ecsum checksum block: each shard's CRC-32C is taken per 16 MiB.
inline constexpr uint64_t kEcChecksumBlock = 16ull << 20;

struct EcEncodeOptions {
  int64_t bytes_per_second = 0;  // 0: unthrottled; counts the .dat bytes read
  // Called with the .dat bytes encoded so far; false stops the encode.
  std::function<bool(uint64_t)> progress;
};

// Data shard i is .dat bytes [i*block, (i+1)*block) (only those below
// dat_size; zeros after), parity as the codec computes it; every shard file
// ends up `block` bytes long. Returns, per shard, the CRC-32C of each
// successive kEcChecksumBlock of it (the last one partial).
Result<std::vector<std::vector<uint32_t>>> EncodeUniformShards(int dat_fd, uint64_t dat_size, uint64_t block, const RsCodec& codec,
                                                               const std::vector<int>& shard_fds, const EcEncodeOptions& options, Env* env);

}  // namespace kelp
