// The .ecsum sidecar: its header and manifest checks, and the CHECKSUM scrub
// of local shards against it (stale sidecars, rot, short shards).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/ec_format/ec_checksums.h"
#include "common/rs_codec.h"
#include "proto/volume_server.pb.h"
#include "tests/unit/fixtures.h"
#include "worker-grpc/ec_checksum_scrub.h"

using namespace kelp;
using namespace kelp::testing;

namespace {

constexpr uint32_t kBlock = 1 << 20;

// The header written out by hand from the format's description.
std::string Wrap(const std::string& payload) {
  std::string h = {'E', 'C', 'S', 'U', 0, 1};
  auto be32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) h.push_back(char(v >> shift));
  };
  be32(uint32_t(payload.size()));
  be32(Crc32c(payload.data(), payload.size()));
  return h + payload;
}

std::vector<std::vector<uint32_t>> CrcsOf(const std::vector<std::string>& shards, uint32_t block) {
  std::vector<std::vector<uint32_t>> crcs;
  for (const std::string& s : shards) {
    crcs.emplace_back();
    for (size_t at = 0; at < s.size(); at += block) crcs.back().push_back(Crc32c(s.data() + at, std::min<size_t>(block, s.size() - at)));
  }
  return crcs;
}

EcsumFile FileOf(const std::string& bytes) { return {true, false, bytes, "/x/1.ecsum"}; }

EcsumState Evaluate(const std::string& bytes, EcChecksumManifest* m = nullptr) {
  EcChecksumManifest ignored;
  std::string why;
  return EvaluateEcsum(FileOf(bytes), 10, 4, m ? m : &ignored, &why);
}

// 10+4 shards of `size` bytes each, parity from the codec.
std::vector<std::string> Shards(size_t size) {
  std::mt19937 rng(7);
  std::vector<std::string> shards(14, std::string(size, '\0'));
  for (int i = 0; i < 10; ++i)
    for (char& c : shards[size_t(i)]) c = char(rng());
  auto codec = RsCodec::Make(10, 4);
  std::vector<const uint8_t*> in;
  std::vector<uint8_t*> out;
  for (int i = 0; i < 10; ++i) in.push_back(reinterpret_cast<const uint8_t*>(shards[size_t(i)].data()));
  for (int i = 10; i < 14; ++i) out.push_back(reinterpret_cast<uint8_t*>(shards[size_t(i)].data()));
  codec.value().Encode(in.data(), out.data(), size);
  return shards;
}

struct ShardFiles {
  TempDir dir;
  std::vector<LocalEcShard> local;
  explicit ShardFiles(const std::vector<std::string>& shards) {
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string path = dir.path.string() + "/1.ec" + std::to_string(i);
      const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      REQUIRE(pwrite(fd, shards[i].data(), shards[i].size(), 0) == ssize_t(shards[i].size()));
      local.push_back({int(i), fd, int64_t(shards[i].size())});
    }
  }
  ~ShardFiles() {
    for (const LocalEcShard& s : local) close(s.fd);
  }
  void Flip(int shard, off_t at) {
    char c;
    REQUIRE(pread(local[size_t(shard)].fd, &c, 1, at) == 1);
    c ^= 0x20;
    REQUIRE(pwrite(local[size_t(shard)].fd, &c, 1, at) == 1);
  }
};

EcChecksumScrub Scrub(const std::string& sidecar, const std::vector<LocalEcShard>& local) {
  EcChecksumManifest m;
  std::string why;
  const EcsumState state = EvaluateEcsum(FileOf(sidecar), 10, 4, &m, &why);
  return ScrubEcShardChecksums(1, state, m, local, 10, 4);
}

}  // namespace

TEST_CASE("an .ecsum as written parses back, and every damaged byte or length makes it invalid") {
  const std::vector<std::string> shards = Shards(2 * kBlock + 5);
  const auto crcs = CrcsOf(shards, kBlock);
  const std::string sidecar = EncodeEcsum({10, 4, 0, 1 << 20}, kBlock, shards[0].size(), crcs, std::string(16, 'u'));
  CHECK(sidecar.substr(0, 4) == "ECSU");
  EcChecksumManifest m;
  REQUIRE(Evaluate(sidecar, &m) == EcsumState::kOn);
  CHECK(m.block_size == kBlock);
  REQUIRE(m.shards.size() == 14);
  for (uint32_t s = 0; s < 14; ++s) {
    REQUIRE(m.Find(s));
    CHECK(m.Find(s)->covered_size == int64_t(shards[0].size()));
    CHECK(m.Find(s)->block_crcs == crcs[s]);
  }
  for (size_t at = 0; at < sidecar.size(); ++at) {
    std::string bad = sidecar;
    bad[at] = char(bad[at] ^ 0x01);
    CHECK_MESSAGE(Evaluate(bad) == EcsumState::kInvalid, at);
  }
  for (size_t len = 0; len < sidecar.size(); ++len) CHECK_MESSAGE(Evaluate(sidecar.substr(0, len)) == EcsumState::kInvalid, len);
  CHECK(Evaluate(sidecar + "x") == EcsumState::kInvalid);
  std::string why;
  EcChecksumManifest ignored;
  CHECK(EvaluateEcsum(EcsumFile{}, 10, 4, &ignored, &why) == EcsumState::kOff);
  CHECK(EvaluateEcsum(EcsumFile{true, true, "", "/x"}, 10, 4, &ignored, &why) == EcsumState::kInvalid);
  // Another ratio describes other shards: off, not corruption.
  CHECK(EvaluateEcsum(FileOf(sidecar), 6, 3, &ignored, &why) == EcsumState::kOff);
}

TEST_CASE("an .ecsum manifest is held to Go's rules") {
  auto build = [](auto edit) {
    volume_server_pb::EcBitrotProtection p;
    p.set_algorithm(volume_server_pb::CHECKSUM_CRC32C);
    p.set_block_size(kBlock);
    p.mutable_ec_shard_config()->set_data_shards(10);
    p.mutable_ec_shard_config()->set_parity_shards(4);
    for (uint32_t s = 0; s < 14; ++s) {
      auto* e = p.add_shards();
      e->set_shard_id(s);
      e->set_covered_size(kBlock + 1);
      e->set_block_crc32c(std::string(8, '\0'));
    }
    edit(p);
    std::string payload;
    p.SerializeToString(&payload);
    return Evaluate(Wrap(payload));
  };
  CHECK(build([](auto&) {}) == EcsumState::kOn);
  CHECK(build([](auto& p) { p.set_generation(1); }) == EcsumState::kOff);
  CHECK(build([](auto& p) { p.clear_ec_shard_config(); }) == EcsumState::kOff);
  CHECK(build([](auto& p) { p.set_algorithm(volume_server_pb::CHECKSUM_NONE); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.set_block_size(3 * kBlock); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.set_block_size(kBlock / 2); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.set_block_size(128 * kBlock); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.mutable_shards()->RemoveLast(); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.mutable_shards(3)->set_shard_id(4); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.mutable_shards(3)->set_shard_id(14); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.mutable_shards(3)->set_covered_size(0); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.mutable_shards(3)->set_block_crc32c(std::string(4, '\0')); }) == EcsumState::kInvalid);
  CHECK(build([](auto& p) { p.mutable_shards(3)->set_block_crc32c(std::string(9, '\0')); }) == EcsumState::kInvalid);
  CHECK(Evaluate(Wrap("\xff\xff")) == EcsumState::kInvalid);
}

TEST_CASE("the CHECKSUM scrub flags rot, clears a stale sidecar entry, and calls mass mismatch a suspect sidecar") {
  const std::vector<std::string> shards = Shards(2 * kBlock + 100);
  auto crcs = CrcsOf(shards, kBlock);
  const std::string good = EncodeEcsum({10, 4, 0, 0}, kBlock, shards[0].size(), crcs, std::string(16, 'u'));

  SUBCASE("clean shards, and an off sidecar, report nothing") {
    ShardFiles files(shards);
    EcChecksumScrub r = Scrub(good, files.local);
    CHECK(r.broken.empty());
    CHECK(r.errors.empty());
    r = ScrubEcShardChecksums(1, EcsumState::kOff, {}, files.local, 10, 4);
    CHECK((r.broken.empty() && r.errors.empty()));
  }
  SUBCASE("a rotted byte in a data and in a parity shard: both confirmed by Reed-Solomon") {
    ShardFiles files(shards);
    files.Flip(2, 100);
    files.Flip(12, off_t(kBlock) + 7);
    EcChecksumScrub r = Scrub(good, files.local);
    CHECK(r.broken == std::vector<int>{2, 12});
    CHECK(r.errors == std::vector<std::string>{"ec volume 1 shard 2: checksum mismatch at block 0 (offset 0)",
                                               "ec volume 1 shard 12: checksum mismatch at block 1 (offset 1048576)"});
  }
  SUBCASE("a stale entry over good bytes is cleared") {
    crcs[5][2] ^= 1;
    const std::string stale = EncodeEcsum({10, 4, 0, 0}, kBlock, shards[0].size(), crcs, std::string(16, 'u'));
    ShardFiles files(shards);
    EcChecksumScrub r = Scrub(stale, files.local);
    CHECK(r.broken.empty());
    CHECK(r.errors == std::vector<std::string>{
                          "ec volume 1 shard 5: checksum mismatch at block 2 (offset 2097152)",
                          "ec volume 1 shard 5: sidecar mismatch but Reed-Solomon confirms the bytes are correct: stale sidecar, not flagging shard"});
  }
  SUBCASE("a shard cut short behind the mount: its read fails, and so does its arbitration") {
    ShardFiles files(shards);
    REQUIRE(ftruncate(files.local[7].fd, 1000) == 0);
    EcChecksumScrub r = Scrub(good, files.local);
    CHECK(r.broken == std::vector<int>{7});
    CHECK(r.errors == std::vector<std::string>{"ec volume 1 shard 7: read block 0 at 0: EOF (got 1000/1048576)",
                                               "ec volume 1 shard 7: RS arbitration failed: read target shard 7 at 0: EOF"});
  }
  SUBCASE("a size other than the covered one is broken, unread and not arbitrated") {
    ShardFiles files(shards);
    files.local[3].size += 1;
    EcChecksumScrub r = Scrub(good, files.local);
    CHECK(r.broken == std::vector<int>{3});
    CHECK(r.errors == std::vector<std::string>{"ec volume 1 shard 3: size 2097253 != covered_size 2097252 (truncated or extended)"});
  }
  SUBCASE("a shard cut at a block's end before the mount stays broken, though the bytes it has are right") {
    ShardFiles files(shards);
    REQUIRE(ftruncate(files.local[6].fd, off_t(kBlock)) == 0);
    files.local[6].size = kBlock;
    EcChecksumScrub r = Scrub(good, files.local);
    CHECK(r.broken == std::vector<int>{6});
    CHECK(r.errors == std::vector<std::string>{"ec volume 1 shard 6: size 1048576 != covered_size 2097252 (truncated or extended)"});
  }
  SUBCASE("more mismatches than parity shards: one suspect-sidecar error, no shard flagged") {
    ShardFiles files(shards);
    for (int s : {0, 1, 3, 4, 9}) files.Flip(s, 3);
    EcChecksumScrub r = Scrub(good, files.local);
    CHECK(r.broken.empty());
    CHECK(r.errors == std::vector<std::string>{
                          "ec volume 1: 5/14 local shards mismatch (> parity 4): suspect stale sidecar, not flagging shard corruption"});
  }
  SUBCASE("too few clean shards to arbitrate: the mismatches stand") {
    std::vector<std::string> some(shards.begin(), shards.begin() + 11);
    ShardFiles files(some);
    files.Flip(0, 1);
    files.Flip(1, 1);
    EcChecksumScrub r = Scrub(good, files.local);
    CHECK(r.broken == std::vector<int>{0, 1});
    CHECK(r.errors.size() == 2);
  }
  SUBCASE("an invalid sidecar is one integrity error") {
    ShardFiles files(shards);
    std::string bad = good;
    bad[20] ^= 1;
    EcChecksumScrub r = Scrub(bad, files.local);
    CHECK(r.broken.empty());
    CHECK(r.errors == std::vector<std::string>{"ec volume 1: bitrot sidecar is malformed/unverifiable (sidecar integrity)"});
  }
}
