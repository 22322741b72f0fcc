// Where the bytes of a .dat go in its erasure-coded shards.
//
// The .dat (superblock included) is cut into rows of one block per data
// shard; block i of a row goes to data shard i, and a shard file is its
// blocks, row after row, zero-padded to the end of the last row. Volumes Go
// encoded before 4.48 use rows of 1 GiB blocks while at least data x 1 GiB
// remain, then rows of 1 MiB blocks (the "legacy" layout). Go 4.48 encodes
// one row whose block is the shard size (the "uniform" layout) and records
// that block size in the .vif; both give every shard the same length.
//
// Parity shards hold, at each position, the parity of the data shards' bytes
// at that position (common/rs_codec.h). Only data shards hold needle bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kelp {

inline constexpr uint64_t kEcLargeBlock = 1ull << 30;
inline constexpr uint64_t kEcSmallBlock = 1ull << 20;

struct EcLayout {
  int data_shards = 10;
  uint64_t large_block = kEcLargeBlock;
  uint64_t small_block = kEcSmallBlock;

  // The pre-4.48 layout, and Go 4.48's for a block size B.
  static EcLayout Legacy(int data_shards) { return {data_shards, kEcLargeBlock, kEcSmallBlock}; }
  static EcLayout Uniform(int data_shards, uint64_t block) { return {data_shards, block, block}; }
};

// A shard file's extension: ".ec00" ... ".ec31".
std::string EcShardExt(int shard);

// Go 4.48's block for a .dat of `dat_size` bytes: the smallest multiple of
// 1 MiB that holds dat_size / data_shards bytes, and at least 1 MiB.
uint64_t UniformEcBlockSize(uint64_t dat_size, int data_shards);

// The length of every shard (data and parity) of a .dat of `dat_size` bytes.
uint64_t EcShardSize(const EcLayout& layout, uint64_t dat_size);

// One piece of a .dat range inside one data shard.
struct EcInterval {
  int shard = 0;
  uint64_t shard_offset = 0;
  uint64_t size = 0;
};

// The pieces of .dat bytes [offset, offset + length), in order. `shard_dat_size`
// is the encoded .dat size over data_shards (Go's "shardDatSize"): it decides
// how many rows of large blocks there are.
std::vector<EcInterval> LocateEcRange(const EcLayout& layout, uint64_t shard_dat_size, uint64_t offset, uint64_t length);

}  // namespace kelp
