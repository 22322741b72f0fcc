// Erasure coding's other two directions, run in job processes on descriptors
// the supervisor opened: regenerating missing shards from the surviving ones
// (Go's RebuildEcFiles), and turning the data shards back into a .dat (Go's
// WriteDatFile). Both read their inputs and write only new files.
// (upstream: weed/storage/erasure_coding/ec_encoder.go, ec_decoder.go;
// docs/erasure-coding.md §3.4, §6)
#pragma once
#include <cstdint>
#include <functional>
#include <map>

#include "common/ec_layout.h"
#include "common/rs_codec.h"
#include "common/status.h"
#include "storage/env.h"

namespace kelp {

struct EcJobOptions {
  int64_t bytes_per_second = 0;  // 0: unthrottled; counts the bytes read
  // Called with the bytes produced so far; false stops the job.
  std::function<bool(uint64_t)> progress;
};

// Shard id -> the CRC-32C of each successive checksum block of it.
using EcShardChecksumLists = std::map<int, std::vector<uint32_t>>;

// Writes every shard of `missing` (id -> descriptor) from the shards of
// `present` (id -> read-only descriptor), all `shard_size` bytes long, in
// 1 MiB steps, then syncs the outputs. Needs at least codec.data() present
// shards when anything is missing. Go's texts for short inputs.
//
// With a `checksum_block` (a power of two of at least 1 MiB), every present
// shard is read, whether or not the reconstruction needs it, and the
// checksums of every present and written shard are returned: the caller
// checks the inputs and outputs against an .ecsum, or writes one. Without
// one, only the first codec.data() present shards are read, and the answer
// is empty.
Result<EcShardChecksumLists> RebuildShards(const RsCodec& codec, const std::map<int, int>& present, const std::map<int, int>& missing,
                                           uint64_t shard_size, uint64_t checksum_block, const EcJobOptions& options, Env* env);

// Writes .dat bytes [0, dat_size) from the data shards (`data_fds[i]` is
// shard i) into `dat_fd`, placing them as `layout` and `shard_dat_size`
// (Go's shardDatSize: the encoded .dat size over the data shards) say, then
// syncs it.
Status WriteDatFromShards(const EcLayout& layout, uint64_t shard_dat_size, const std::vector<int>& data_fds, uint64_t dat_size,
                          int dat_fd, const EcJobOptions& options, Env* env);

}  // namespace kelp
