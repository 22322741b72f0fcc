#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <tuple>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/ec_layout.h"
#include "common/file_util.h"
#include "common/idx_entry.h"
#include "common/rs_codec.h"
#include "storage/ec_encode.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
using namespace kelp::testing;

namespace {

int OpenNew(const std::string& path) { return open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); }

// Encodes `dat` with `data`+`parity` shards and checks every shard against
// the layout and the codec, and the checksums against the shards.
void CheckEncode(const std::string& dat, int data, int parity) {
  TempDir dir;
  const std::string dat_path = dir.path.string() + "/1.dat";
  REQUIRE(WriteFileBytes(dat_path, dat));
  auto codec = RsCodec::Make(data, parity);
  REQUIRE(codec.ok());
  const uint64_t block = UniformEcBlockSize(dat.size(), data);
  std::vector<int> fds;
  for (int i = 0; i < data + parity; i++) fds.push_back(OpenNew(dir.path.string() + "/1.ec" + std::to_string(i)));
  const int dat_fd = open(dat_path.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<uint64_t> progress;
  EcEncodeOptions options;
  options.progress = [&](uint64_t n) { return progress.push_back(n), true; };
  auto crcs = EncodeUniformShards(dat_fd, dat.size(), block, codec.value(), fds, options, Env::Default());
  close(dat_fd);
  for (int fd : fds) close(fd);
  REQUIRE(crcs.ok());
  CHECK(progress.back() == dat.size());

  std::vector<std::string> shards;
  for (int i = 0; i < data + parity; i++) shards.push_back(ReadFileBytes(dir.path.string() + "/1.ec" + std::to_string(i)));
  for (int i = 0; i < data; i++) {
    std::string expected = dat.substr(std::min(dat.size(), size_t(i) * block), block);
    expected.resize(block, '\0');
    CHECK(shards[size_t(i)] == expected);
  }
  std::vector<const uint8_t*> in;
  for (int i = 0; i < data; i++) in.push_back(U8(shards[size_t(i)]));
  std::vector<std::string> parity_expected(size_t(parity), std::string(block, '\0'));
  std::vector<uint8_t*> out;
  for (auto& p : parity_expected) out.push_back(reinterpret_cast<uint8_t*>(p.data()));
  codec.value().Encode(in.data(), out.data(), block);
  for (int p = 0; p < parity; p++) CHECK(shards[size_t(data + p)] == parity_expected[size_t(p)]);

  for (int s = 0; s < data + parity; s++) {
    std::vector<uint32_t> expected;
    for (uint64_t at = 0; at < block; at += kEcChecksumBlock)
      expected.push_back(Crc32c(shards[size_t(s)].data() + at, size_t(std::min(kEcChecksumBlock, block - at))));
    CHECK(crcs.value()[size_t(s)] == expected);
  }
}

}  // namespace

TEST_CASE("a small volume: one 1 MiB block per shard, the tail zero-padded") { CheckEncode(RandomBytes(5928096, 1), 10, 4); }

TEST_CASE("a volume over ten blocks of 1 MiB: 3 MiB blocks, the last data shards all zeros") {
  CheckEncode(RandomBytes((7u << 20) + 123, 2), 3, 2);
  CheckEncode(RandomBytes((20u << 20) + 1, 3), 10, 4);
}

TEST_CASE("a shard longer than one checksum block has one checksum per 16 MiB") { CheckEncode(RandomBytes((17u << 20) + 5, 4), 1, 1); }

TEST_CASE("an empty .dat still gives shards of 1 MiB") { CheckEncode(std::string(), 10, 4); }

TEST_CASE("the encode refuses a block that cannot hold the .dat, and a wrong number of shards") {
  auto codec = RsCodec::Make(2, 1);
  REQUIRE(codec.ok());
  CHECK_FALSE(EncodeUniformShards(-1, 3u << 20, 1u << 20, codec.value(), {-1, -1, -1}, {}, Env::Default()).ok());
  CHECK_FALSE(EncodeUniformShards(-1, 1u << 20, 1u << 20, codec.value(), {-1, -1}, {}, Env::Default()).ok());
  CHECK_FALSE(EncodeUniformShards(-1, 1u << 20, 1000, codec.value(), {-1, -1, -1}, {}, Env::Default()).ok());
}

TEST_CASE("the .ecx: the live entries of the .idx, sorted, last row winning") {
  TempDir dir;
  for (int offset_bytes : {4, 5}) {
    const size_t row = size_t(IdxEntrySize(offset_bytes));
    std::string idx;
    auto add = [&](NeedleId id, uint64_t units, int32_t size) {
      uint8_t buf[17];
      EncodeIdxEntry(IdxEntry{id, units, size}, offset_bytes, buf);
      idx.append(reinterpret_cast<char*>(buf), row);
    };
    add(0xfffffffffffffff0ull, 1, 10);  // sorts last as unsigned
    add(7, 2, 20);
    add(3, 3, 30);
    add(7, 4, 21);              // overwrites 7
    add(9, 5, 0);               // size 0 is live
    add(3, 0, -1);              // deletes 3
    add(11, 6, 40);
    add(11, 0, 0);              // offset 0: removes 11
    add(2, uint64_t(1) << 33, 50);  // needs the fifth offset byte
    const std::string idx_path = dir.path.string() + "/v" + std::to_string(offset_bytes) + ".idx";
    REQUIRE(WriteFileBytes(idx_path, idx + std::string(row - 1, '\x7f')));  // a torn last row is not a row
    const int idx_fd = open(idx_path.c_str(), O_RDONLY | O_CLOEXEC);
    const std::string ecx_path = dir.path.string() + "/v" + std::to_string(offset_bytes) + ".ecx";
    const int ecx_fd = OpenNew(ecx_path);
    auto rows = WriteSortedIndex(idx_fd, idx.size() + row - 1, offset_bytes, ecx_fd, Env::Default());
    close(idx_fd);
    close(ecx_fd);
    REQUIRE(rows.ok());
    const std::string ecx = ReadFileBytes(ecx_path);
    std::vector<IdxEntry> got;
    for (size_t at = 0; at < ecx.size(); at += row) got.push_back(DecodeIdxEntry(U8(ecx) + at, offset_bytes));
    CHECK(ecx.size() % row == 0);
    const uint64_t high = offset_bytes == 5 ? uint64_t(1) << 33 : 0;  // 4-byte offsets cannot hold it
    std::vector<std::tuple<NeedleId, uint64_t, int32_t>> expected = {{2, high, 50}, {7, 4, 21}, {9, 5, 0}, {0xfffffffffffffff0ull, 1, 10}};
    if (offset_bytes == 4) expected.erase(expected.begin());  // its offset wrapped to 0: a deletion
    REQUIRE(got.size() == expected.size());
    CHECK(rows.value() == expected.size());
    for (size_t i = 0; i < got.size(); i++) {
      CHECK(got[i].id == std::get<0>(expected[i]));
      CHECK(got[i].offset_units == std::get<1>(expected[i]));
      CHECK(got[i].size == std::get<2>(expected[i]));
    }
  }
}
