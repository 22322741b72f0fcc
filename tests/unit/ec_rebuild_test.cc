#include "storage/ec_rebuild.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/ec_layout.h"
#include "common/file_util.h"
#include "common/idx_entry.h"
#include "common/rs_codec.h"
#include "storage/ec_encode.h"
#include "storage/ec_volume.h"
#include "storage/fault_env.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
using namespace kelp::testing;

namespace {

// A .dat encoded into shard files dir/1.ecNN (uniform layout); returns the block.
uint64_t Encode(const std::string& dir, const std::string& dat, const RsCodec& codec) {
  WriteFileBytes(dir + "/1.dat", dat);
  const uint64_t block = UniformEcBlockSize(dat.size(), codec.data());
  std::vector<int> fds;
  for (int i = 0; i < codec.total(); i++) fds.push_back(open((dir + "/1" + EcShardExt(i)).c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  const int dat_fd = open((dir + "/1.dat").c_str(), O_RDONLY);
  REQUIRE(EncodeUniformShards(dat_fd, dat.size(), block, codec, fds, {}, Env::Default()).ok());
  close(dat_fd);
  for (int fd : fds) close(fd);
  return block;
}

}  // namespace

TEST_CASE("a rebuild regenerates lost data and parity shards byte for byte") {
  TempDir dir;
  const std::string d = dir.path.string();
  auto codec = RsCodec::Make(10, 4);
  REQUIRE(codec.ok());
  const uint64_t block = Encode(d, RandomBytes((23u << 20) + 77, 9), codec.value());
  std::map<int, std::string> originals;
  std::map<int, int> present, missing;
  for (int s : {0, 4, 10, 13}) {
    originals[s] = ReadFileBytes(d + "/1" + EcShardExt(s));
    missing[s] = open((d + "/1" + EcShardExt(s) + ".new").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  }
  for (int s = 0; s < 14; s++)
    if (!missing.count(s)) present[s] = open((d + "/1" + EcShardExt(s)).c_str(), O_RDONLY);
  std::vector<uint64_t> progress;
  EcJobOptions options;
  options.progress = [&](uint64_t n) { return progress.push_back(n), true; };
  // Checksummed per 1 MiB: every shard, read or written, gets its list.
  auto crcs = RebuildShards(codec.value(), present, missing, block, 1 << 20, options, Env::Default());
  REQUIRE(crcs.ok());
  CHECK(progress.back() == block);
  for (auto& [s, fd] : missing) {
    close(fd);
    CHECK(ReadFileBytes(d + "/1" + EcShardExt(s) + ".new") == originals[s]);
  }
  REQUIRE(crcs.value().size() == 14);
  for (int s = 0; s < 14; s++) {
    const std::string bytes = ReadFileBytes(d + "/1" + EcShardExt(s));
    std::vector<uint32_t> want;
    for (size_t at = 0; at < bytes.size(); at += 1 << 20) want.push_back(Crc32c(bytes.data() + at, std::min<size_t>(1 << 20, bytes.size() - at)));
    CHECK_MESSAGE(crcs.value().at(s) == want, s);
  }
  // Without a checksum block: the outputs alone, no lists; a block that is not a power of two is refused.
  const int again = open((d + "/again").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  auto plain = RebuildShards(codec.value(), present, {{0, again}}, block, 0, {}, Env::Default());
  REQUIRE(plain.ok());
  CHECK(plain.value().empty());
  CHECK(ReadFileBytes(d + "/again") == originals[0]);
  CHECK_FALSE(RebuildShards(codec.value(), present, {{0, again}}, block, 3 << 20, {}, Env::Default()).ok());
  close(again);
  // Nothing missing, with a block: the inputs are only checksummed, even fewer than the data shards.
  std::map<int, int> nine(present.begin(), std::next(present.begin(), 9));
  auto verified = RebuildShards(codec.value(), nine, {}, block, 1 << 20, {}, Env::Default());
  REQUIRE(verified.ok());
  CHECK(verified.value().size() == 9);
  // Too few inputs: refused before anything is written.
  std::map<int, int> few(present.begin(), std::next(present.begin(), 9));
  CHECK(RebuildShards(codec.value(), few, {{0, -1}}, block, 0, {}, Env::Default()).status().message().find("not enough shards") != std::string::npos);
  // A short input is Go's "short read".
  const int cut = open((d + "/cut").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(ftruncate(cut, off_t(block / 2)) == 0);
  std::map<int, int> with_cut = present;
  with_cut.begin()->second = cut;
  const int out = open((d + "/out").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  Status s = RebuildShards(codec.value(), with_cut, {{0, out}}, block, 0, {}, Env::Default()).status();
  CHECK(s.message().rfind("ec rebuild short read shard ", 0) == 0);
  // A failed output sync fails the rebuild.
  FaultEnv env;
  env.Add(FaultRule{FsOp::kFdatasync, "/out", 0, 1, FaultRule::Action::kFail, EIO, 0});
  env.Adopt(out, d + "/out");
  CHECK_FALSE(RebuildShards(codec.value(), present, {{0, out}}, block, 0, {}, &env).ok());
  close(cut);
  close(out);
  for (auto& [sh, fd] : present) close(fd);
}

TEST_CASE("a decode gives back the .dat from the data shards, in both layouts") {
  TempDir dir;
  const std::string d = dir.path.string();
  auto codec = RsCodec::Make(10, 4);
  REQUIRE(codec.ok());
  const std::string dat = RandomBytes((26u << 20) + 1234, 11);
  const uint64_t block = Encode(d, dat, codec.value());
  std::vector<int> data;
  for (int s = 0; s < 10; s++) data.push_back(open((d + "/1" + EcShardExt(s)).c_str(), O_RDONLY));
  for (uint64_t want : {uint64_t(dat.size()), uint64_t(dat.size()) - 5000, uint64_t(8)}) {
    const int out = open((d + "/out.dat").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    REQUIRE(WriteDatFromShards(EcLayout::Uniform(10, block), dat.size() / 10, data, want, out, {}, Env::Default()).ok());
    close(out);
    CHECK(ReadFileBytes(d + "/out.dat") == dat.substr(0, want));
  }
  for (int fd : data) close(fd);

  // The legacy layout: rows of 1 MiB blocks, shard by shard (shards built by hand).
  const std::string small = RandomBytes((3u << 20) + 999, 12);
  const EcLayout legacy = EcLayout::Legacy(2);
  const uint64_t shard_len = EcShardSize(legacy, small.size());
  std::vector<std::string> shards(2, std::string(shard_len, '\0'));
  for (uint64_t at = 0; at < small.size(); at += kEcSmallBlock) {
    const uint64_t row = at / (2 * kEcSmallBlock), col = (at / kEcSmallBlock) % 2;
    const uint64_t n = std::min<uint64_t>(kEcSmallBlock, small.size() - at);
    shards[col].replace(size_t(row * kEcSmallBlock), size_t(n), small, size_t(at), size_t(n));
  }
  std::vector<int> legacy_fds;
  for (int s = 0; s < 2; s++) {
    WriteFileBytes(d + "/legacy" + std::to_string(s), shards[size_t(s)]);
    legacy_fds.push_back(open((d + "/legacy" + std::to_string(s)).c_str(), O_RDONLY));
  }
  const int out = open((d + "/legacy.dat").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  REQUIRE(WriteDatFromShards(legacy, small.size() / 2, legacy_fds, small.size(), out, {}, Env::Default()).ok());
  close(out);
  CHECK(ReadFileBytes(d + "/legacy.dat") == small);
  for (int fd : legacy_fds) close(fd);
}

TEST_CASE("folding a journal into the index marks rows deleted and keeps offsets") {
  TempDir dir;
  const std::string base = dir.path.string() + "/4";
  std::string ecx;
  for (NeedleId id : {5ull, 9ull, 12ull}) {
    uint8_t row[17];
    EncodeIdxEntry(IdxEntry{id, id * 10, int32_t(id)}, 5, row);
    ecx.append(reinterpret_cast<char*>(row), 17);
  }
  WriteFileBytes(base + ".ecx", ecx);
  std::string ecj;
  for (NeedleId id : {12ull, 77ull}) {
    uint8_t rec[8];
    PutU64(rec, id);
    ecj.append(reinterpret_cast<char*>(rec), 8);
  }
  SUBCASE("an unmounted volume: the journal goes") {
    WriteFileBytes(base + ".ecj", ecj);
    REQUIRE(FoldEcJournalFile(Env::Default(), base + ".ecx", base + ".ecj", 5).ok());
    CHECK_FALSE(FileExists(base + ".ecj"));
  }
  SUBCASE("a mounted volume: the journal is emptied in place and stays usable") {
    WriteFileBytes(base + ".ecj", ecj);
    auto v = EcVolume::Open(Env::Default(), EcBases{base, base}, 4, "", 5);
    REQUIRE(v.ok());
    REQUIRE(v.value()->FoldJournal().ok());
    CHECK(ReadFileBytes(base + ".ecj").empty());
    CHECK(v.value()->Journaled(12));
    REQUIRE(v.value()->JournalDelete(5).ok());
    CHECK(ReadFileBytes(base + ".ecj").size() == 8);
  }
  const std::string folded = ReadFileBytes(base + ".ecx");
  REQUIRE(folded.size() == ecx.size());
  CHECK(folded.substr(0, 34) == ecx.substr(0, 34));
  const IdxEntry last = DecodeIdxEntry(reinterpret_cast<const uint8_t*>(folded.data()) + 34, 5);
  CHECK(last.id == 12);
  CHECK(last.offset_units == 120);
  CHECK(last.size == -1);
  // A torn journal is refused and kept.
  WriteFileBytes(base + ".ecj", ecj.substr(0, 11));
  CHECK(FoldEcJournalFile(Env::Default(), base + ".ecx", base + ".ecj", 5).message() == "rebuild: read ecj: unexpected EOF");
  CHECK(FileExists(base + ".ecj"));
}
