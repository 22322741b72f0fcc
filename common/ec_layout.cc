#include "common/ec_layout.h"

#include <algorithm>

namespace kelp {

std::string EcShardExt(int shard) { return (shard < 10 ? ".ec0" : ".ec") + std::to_string(shard); }

uint64_t UniformEcBlockSize(uint64_t dat_size, int data_shards) {
  const uint64_t row = uint64_t(data_shards) * kEcSmallBlock;
  const uint64_t rows = std::max<uint64_t>(1, (dat_size + row - 1) / row);
  return rows * kEcSmallBlock;
}

uint64_t EcShardSize(const EcLayout& layout, uint64_t dat_size) {
  const uint64_t large_row = uint64_t(layout.data_shards) * layout.large_block;
  const uint64_t small_row = uint64_t(layout.data_shards) * layout.small_block;
  const uint64_t large_rows = dat_size / large_row;  // ">=": exactly one large row's worth is a large row
  const uint64_t rest = dat_size - large_rows * large_row;
  const uint64_t small_rows = (rest + small_row - 1) / small_row;
  return large_rows * layout.large_block + small_rows * layout.small_block;
}

std::vector<EcInterval> LocateEcRange(const EcLayout& layout, uint64_t shard_dat_size, uint64_t offset, uint64_t length) {
  std::vector<EcInterval> out;
  const uint64_t data = uint64_t(layout.data_shards);
  const uint64_t large_rows = shard_dat_size / layout.large_block;
  const uint64_t large_region = large_rows * data * layout.large_block;
  bool large = offset < large_region;
  uint64_t block_size = large ? layout.large_block : layout.small_block;
  uint64_t relative = large ? offset : offset - large_region;
  uint64_t block = relative / block_size;
  uint64_t inner = relative % block_size;
  while (length > 0) {
    const uint64_t take = std::min(length, block_size - inner);
    const uint64_t row = block / data;
    const uint64_t shard_offset = large ? row * layout.large_block + inner : large_rows * layout.large_block + row * layout.small_block + inner;
    out.push_back({int(block % data), shard_offset, take});
    length -= take;
    inner = 0;
    block++;
    if (large && block == large_rows * data) {  // the large rows end: on into the small ones
      large = false;
      block_size = layout.small_block;
      block = 0;
    }
  }
  return out;
}

}  // namespace kelp
