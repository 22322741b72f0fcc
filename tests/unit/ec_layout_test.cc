#include <doctest/doctest.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "common/ec_layout.h"

using namespace kelp;

namespace {

// The encoder's row cutting written out plainly: large rows while a whole
// one remains, then small rows, each block to shard (block index mod data).
// Returns, for every .dat byte, (shard, offset in shard).
std::vector<std::pair<int, uint64_t>> CutRows(const EcLayout& l, uint64_t dat_size) {
  std::vector<std::pair<int, uint64_t>> where(dat_size);
  std::vector<uint64_t> fill(size_t(l.data_shards), 0);
  uint64_t pos = 0, remaining = dat_size;
  auto row = [&](uint64_t block) {
    for (int s = 0; s < l.data_shards; s++) {
      for (uint64_t i = 0; i < block; i++)
        if (pos + i < dat_size) where[pos + i] = {s, fill[size_t(s)] + i};
      pos += block;
      fill[size_t(s)] += block;
    }
  };
  while (remaining >= uint64_t(l.data_shards) * l.large_block) row(l.large_block), remaining -= uint64_t(l.data_shards) * l.large_block;
  while (pos < dat_size) row(l.small_block);
  return where;
}

}  // namespace

TEST_CASE("shard sizes of the legacy and the uniform layouts") {
  // A .dat of 22 GiB + 7 MiB + 123 bytes: 2 large rows and 206 small ones.
  const uint64_t d = 23629660283ull;
  CHECK(EcShardSize(EcLayout::Legacy(10), d) == 2363490304ull);
  CHECK(UniformEcBlockSize(d, 10) == 2363490304ull);
  CHECK(EcShardSize(EcLayout::Uniform(10, UniformEcBlockSize(d, 10)), d) == 2363490304ull);
  // Small volumes: one row of 1 MiB blocks; an empty one still 1 MiB.
  CHECK(UniformEcBlockSize(0, 10) == kEcSmallBlock);
  CHECK(UniformEcBlockSize(5928096, 10) == kEcSmallBlock);
  CHECK(EcShardSize(EcLayout::Legacy(10), 5928096) == kEcSmallBlock);
  CHECK(UniformEcBlockSize(10 * kEcSmallBlock, 10) == kEcSmallBlock);
  CHECK(UniformEcBlockSize(10 * kEcSmallBlock + 1, 10) == 2 * kEcSmallBlock);
  // Exactly 10 GiB is one large row.
  CHECK(EcShardSize(EcLayout::Legacy(10), 10 * kEcLargeBlock) == kEcLargeBlock);
}

TEST_CASE("a needle across two large blocks, and the same needle in the uniform layout") {
  const uint64_t d = 23629660283ull;
  const uint64_t o = 13958643608ull;  // 13 GiB - 104
  auto legacy = LocateEcRange(EcLayout::Legacy(10), d / 10, o, 1000);
  REQUIRE(legacy.size() == 2);
  CHECK(legacy[0].shard == 2);
  CHECK(legacy[0].shard_offset == 2147483544ull);
  CHECK(legacy[0].size == 104);
  CHECK(legacy[1].shard == 3);
  CHECK(legacy[1].shard_offset == 1073741824ull);
  CHECK(legacy[1].size == 896);
  const uint64_t b = UniformEcBlockSize(d, 10);
  auto uniform = LocateEcRange(EcLayout::Uniform(10, b), d / 10, o, 1000);
  REQUIRE(uniform.size() == 1);
  CHECK(uniform[0].shard == 5);
  CHECK(uniform[0].shard_offset == 2141192088ull);
  CHECK(uniform[0].size == 1000);
}

TEST_CASE("a needle in the small rows after the large ones") {
  const uint64_t d = 23629660283ull;
  const uint64_t o = 21501575168ull;  // 20 GiB + 25.5 MiB
  auto legacy = LocateEcRange(EcLayout::Legacy(10), d / 10, o, 1572864);
  REQUIRE(legacy.size() == 2);
  CHECK(legacy[0].shard == 5);
  CHECK(legacy[0].shard_offset == 2150105088ull);
  CHECK(legacy[0].size == 524288);
  CHECK(legacy[1].shard == 6);
  CHECK(legacy[1].shard_offset == 2149580800ull);
  CHECK(legacy[1].size == 1048576);
}

TEST_CASE("every byte lands where the row cutting puts it") {
  // Scaled-down blocks so that every boundary is crossed.
  for (const EcLayout& l : {EcLayout{3, 8, 2}, EcLayout{4, 5, 3}, EcLayout::Uniform(3, 7), EcLayout{10, 4, 1}}) {
    for (uint64_t d : {1ull, 23ull, 24ull, 25ull, 60ull, 97ull}) {
      const auto where = CutRows(l, d);
      // Go's shardDatSize is the encoded size over the data shards.
      const uint64_t shard_dat_size = d / uint64_t(l.data_shards);
      for (uint64_t off = 0; off < d; off++)
        for (uint64_t len = 1; off + len <= d && len <= 20; len++) {
          uint64_t at = off;
          for (const EcInterval& iv : LocateEcRange(l, shard_dat_size, off, len)) {
            for (uint64_t i = 0; i < iv.size; i++, at++) {
              REQUIRE(where[at].first == iv.shard);
              REQUIRE(where[at].second == iv.shard_offset + i);
            }
          }
          REQUIRE(at == off + len);
        }
    }
  }
}
