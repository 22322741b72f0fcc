#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/rs_codec.h"

using namespace kelp;

namespace {

using Shards = std::vector<std::vector<uint8_t>>;

Shards RandomData(int n, size_t len, uint32_t seed) {
  std::mt19937 rng(seed);
  Shards out(static_cast<size_t>(n), std::vector<uint8_t>(len));
  for (auto& s : out)
    for (auto& b : s) b = uint8_t(rng());
  return out;
}

// The data shards followed by the parity the codec computes from them.
Shards EncodeAll(const RsCodec& codec, Shards data) {
  const size_t len = data[0].size();
  std::vector<const uint8_t*> in;
  for (auto& d : data) in.push_back(d.data());
  Shards parity(static_cast<size_t>(codec.parity()), std::vector<uint8_t>(len));
  std::vector<uint8_t*> out;
  for (auto& p : parity) out.push_back(p.data());
  codec.Encode(in.data(), out.data(), len);
  for (auto& p : parity) data.push_back(std::move(p));
  return data;
}

// Rebuilds `wanted` from `have` and returns what it computed.
Shards Rebuild(const RsCodec& codec, const Shards& all, const std::vector<int>& have, const std::vector<int>& wanted) {
  const size_t len = all[0].size();
  std::vector<const uint8_t*> in;
  for (int id : have) in.push_back(all[size_t(id)].data());
  Shards out(wanted.size(), std::vector<uint8_t>(len, 0xEE));
  std::vector<uint8_t*> outp;
  for (auto& o : out) outp.push_back(o.data());
  REQUIRE(codec.Reconstruct(have, in.data(), wanted, outp.data(), len).ok());
  return out;
}

}  // namespace

// Columns of the parity rows as Go's codec (klauspost/reedsolomon v1.14.1,
// New(10, 4)) produces them: encoding a unit vector in data shard c gives
// column c. The figures come from that library, not from this code.
TEST_CASE("the 10+4 generator matrix is Go's") {
  const uint8_t columns[10][4] = {{0x81, 0x96, 0xbf, 0xd6}, {0x96, 0x81, 0xd6, 0xbf}, {0xaf, 0xb8, 0x62, 0x0a}, {0xb8, 0xaf, 0x0a, 0x62},
                                  {0xd2, 0xc4, 0x06, 0x6f}, {0xc4, 0xd2, 0x6f, 0x06}, {0xfe, 0xe8, 0xdf, 0xb7}, {0xe8, 0xfe, 0xb7, 0xdf},
                                  {0x03, 0x02, 0x05, 0x04}, {0x02, 0x03, 0x04, 0x05}};
  auto codec = RsCodec::Make(10, 4);
  REQUIRE(codec.ok());
  for (int c = 0; c < 10; c++)
    for (int p = 0; p < 4; p++) CHECK(codec.value().Row(10 + p)[c] == columns[c][p]);
  for (int r = 0; r < 10; r++)
    for (int c = 0; c < 10; c++) CHECK(codec.value().Row(r)[c] == (r == c ? 1 : 0));

  // Go's parity of data bytes 01..0a at one position is 45 f2 12 76.
  Shards data(10, std::vector<uint8_t>(1));
  for (int c = 0; c < 10; c++) data[size_t(c)][0] = uint8_t(c + 1);
  const Shards all = EncodeAll(codec.value(), data);
  CHECK(all[10][0] == 0x45);
  CHECK(all[11][0] == 0xf2);
  CHECK(all[12][0] == 0x12);
  CHECK(all[13][0] == 0x76);
}

TEST_CASE("a custom ratio builds Go's matrix for it") {
  // klauspost/reedsolomon New(3, 2): parity rows {01 01 01} and {0f 08 06}.
  auto codec = RsCodec::Make(3, 2);
  REQUIRE(codec.ok());
  const uint8_t rows[2][3] = {{0x01, 0x01, 0x01}, {0x0f, 0x08, 0x06}};
  for (int p = 0; p < 2; p++)
    for (int c = 0; c < 3; c++) CHECK(codec.value().Row(3 + p)[c] == rows[p][c]);
}

TEST_CASE("ratios Go refuses are refused") {
  CHECK_FALSE(RsCodec::Make(0, 4).ok());
  CHECK_FALSE(RsCodec::Make(10, 0).ok());
  CHECK_FALSE(RsCodec::Make(28, 5).ok());
  CHECK(RsCodec::Make(28, 4).ok());
  CHECK(RsCodec::Make(1, 1).ok());
}

TEST_CASE("parity is computed position by position: cutting the buffer changes nothing") {
  auto codec = RsCodec::Make(10, 4);
  REQUIRE(codec.ok());
  const Shards data = RandomData(10, 4099, 7);
  const Shards whole = EncodeAll(codec.value(), data);
  for (size_t cut : {size_t(1), size_t(63), size_t(1000)}) {
    Shards head(10), tail(10);
    for (int c = 0; c < 10; c++) {
      head[size_t(c)].assign(data[size_t(c)].begin(), data[size_t(c)].begin() + ptrdiff_t(cut));
      tail[size_t(c)].assign(data[size_t(c)].begin() + ptrdiff_t(cut), data[size_t(c)].end());
    }
    const Shards a = EncodeAll(codec.value(), head), b = EncodeAll(codec.value(), tail);
    for (int p = 10; p < 14; p++) {
      std::vector<uint8_t> joined = a[size_t(p)];
      joined.insert(joined.end(), b[size_t(p)].begin(), b[size_t(p)].end());
      CHECK(joined == whole[size_t(p)]);
    }
  }
}

TEST_CASE("any 10 of the 14 shards rebuild every other one") {
  auto made = RsCodec::Make(10, 4);
  REQUIRE(made.ok());
  const RsCodec& codec = made.value();
  const Shards all = EncodeAll(codec, RandomData(10, 333, 11));
  // Every way of losing 4 shards (1001 of them).
  int cases = 0;
  for (int mask = 0; mask < (1 << 14); mask++) {
    if (__builtin_popcount(unsigned(mask)) != 4) continue;
    std::vector<int> have, lost;
    for (int i = 0; i < 14; i++) (mask >> i & 1 ? lost : have).push_back(i);
    const Shards rebuilt = Rebuild(codec, all, have, lost);
    for (size_t j = 0; j < lost.size(); j++) REQUIRE(rebuilt[j] == all[size_t(lost[j])]);
    cases++;
  }
  CHECK(cases == 1001);
}

TEST_CASE("reconstruction refuses what it cannot do, and leaves the output alone") {
  auto made = RsCodec::Make(10, 4);
  REQUIRE(made.ok());
  const RsCodec& codec = made.value();
  const Shards all = EncodeAll(codec, RandomData(10, 16, 3));
  std::vector<const uint8_t*> in;
  for (int i = 0; i < 14; i++) in.push_back(all[size_t(i)].data());
  std::vector<uint8_t> out(16, 0xEE);
  uint8_t* outp[1] = {out.data()};
  CHECK_FALSE(codec.Reconstruct({0, 1, 2, 3, 4, 5, 6, 7, 8}, in.data(), {9}, outp, 16).ok());         // 9 shards
  CHECK_FALSE(codec.Reconstruct({0, 1, 2, 3, 4, 5, 6, 7, 8, 8}, in.data(), {9}, outp, 16).ok());      // repeated
  CHECK_FALSE(codec.Reconstruct({0, 1, 2, 3, 4, 5, 6, 7, 8, 14}, in.data(), {9}, outp, 16).ok());     // out of range
  CHECK_FALSE(codec.Reconstruct({0, 1, 2, 3, 4, 5, 6, 7, 8, 10}, in.data(), {-1}, outp, 16).ok());    // bad wanted id
  CHECK(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0xEE; }));
}
