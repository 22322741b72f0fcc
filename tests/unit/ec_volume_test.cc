#include "storage/ec_volume.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/idx_entry.h"
#include "storage/fault_env.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
using namespace kelp::testing;

namespace {

constexpr int kOffsetBytes = 5;

// A sorted .ecx of `rows` (id, offset units, size).
std::string Ecx(const std::vector<IdxEntry>& rows) {
  std::string out;
  for (const IdxEntry& e : rows) {
    uint8_t buf[32];
    EncodeIdxEntry(e, kOffsetBytes, buf);
    out.append(reinterpret_cast<char*>(buf), size_t(IdxEntrySize(kOffsetBytes)));
  }
  return out;
}

std::string Record(uint64_t id) {
  uint8_t b[8];
  PutU64(b, id);
  return std::string(reinterpret_cast<char*>(b), 8);
}

struct Rig {
  TempDir dir;
  EcBases bases;
  Rig() {
    bases.data = dir.path.string() + "/pics_3";
    bases.idx = bases.data;
    // Ids 10, 20 (a folded tombstone), 30, 2^40.
    WriteFileBytes(bases.data + ".ecx", Ecx({{10, 1, 100}, {20, 40, -1}, {30, 80, 7}, {1ull << 40, 1ull << 33, 5}}));
  }
};

}  // namespace

TEST_CASE("EcVolume finds rows by binary search and reports folded tombstones") {
  Rig rig;
  auto v = EcVolume::Open(Env::Default(), rig.bases, 3, "pics", kOffsetBytes);
  REQUIRE(v.ok());
  CHECK(v.value()->ecx_rows() == 4);
  for (uint64_t id : {10ull, 30ull, 1ull << 40}) {
    auto f = v.value()->Find(id);
    REQUIRE(f.ok());
    REQUIRE(f.value().has_value());
    CHECK(f.value()->id == id);
  }
  CHECK(v.value()->Find(1ull << 40).value()->offset_units == 1ull << 33);
  for (uint64_t id : {0ull, 9ull, 11ull, 31ull, ~0ull}) CHECK_FALSE(v.value()->Find(id).value().has_value());
  CHECK(v.value()->Find(20).value()->size < 0);
  auto counts = v.value()->CountIndex();
  REQUIRE(counts.ok());
  CHECK(counts.value().live == 3);
  CHECK(counts.value().deleted == 1);
  CHECK(counts.value().live_bytes == 112);
  // Without a .vif: version 3, 10+4, the legacy layout.
  CHECK(v.value()->version() == 3);
  CHECK(v.value()->data_shards() == 10);
  CHECK(v.value()->block_size() == 0);
  // The journal is created empty beside the index.
  CHECK(ReadFileBytes(rig.bases.data + ".ecj").empty());
}

TEST_CASE("EcVolume journals a delete once, syncs it, and reloads it") {
  Rig rig;
  {
    auto v = EcVolume::Open(Env::Default(), rig.bases, 3, "pics", kOffsetBytes);
    REQUIRE(v.ok());
    CHECK(v.value()->JournalDelete(30).ok());
    CHECK(v.value()->JournalDelete(30).ok());  // idempotent: written once
    CHECK(v.value()->JournalDelete(99).ok());  // not in the index: nothing written
    CHECK(v.value()->JournalDelete(20).ok());  // folded already: nothing written
    CHECK(v.value()->Journaled(30));
    CHECK(v.value()->Journaled(20));
    CHECK_FALSE(v.value()->Journaled(99));
    CHECK(ReadFileBytes(rig.bases.data + ".ecj") == Record(30));
  }
  auto again = EcVolume::Open(Env::Default(), rig.bases, 3, "pics", kOffsetBytes);
  REQUIRE(again.ok());
  CHECK(again.value()->Journaled(30));
  CHECK(again.value()->deleted_count() == 1);
}

TEST_CASE("EcVolume cuts a torn journal tail back to whole records") {
  Rig rig;
  WriteFileBytes(rig.bases.data + ".ecj", Record(10) + "\x00\x00\x00");
  auto v = EcVolume::Open(Env::Default(), rig.bases, 3, "pics", kOffsetBytes);
  REQUIRE(v.ok());
  CHECK(ReadFileBytes(rig.bases.data + ".ecj") == Record(10));
  CHECK(v.value()->Journaled(10));
  CHECK(v.value()->JournalDelete(30).ok());
  CHECK(ReadFileBytes(rig.bases.data + ".ecj") == Record(10) + Record(30));
}

TEST_CASE("A journal append that fails leaves neither bytes nor a delete behind") {
  Rig rig;
  FaultEnv env;
  auto v = EcVolume::Open(&env, rig.bases, 3, "pics", kOffsetBytes);
  REQUIRE(v.ok());
  SUBCASE("the sync fails") {
    env.Add(FaultRule{FsOp::kFdatasync, ".ecj", 0, 1, FaultRule::Action::kFail, EIO, 0});
    Status s = v.value()->JournalDelete(10);
    CHECK(s.message() == "sync ecj: input/output error");
  }
  SUBCASE("the write is short") {
    env.Add(FaultRule{FsOp::kPwrite, ".ecj", 0, 1, FaultRule::Action::kShortWrite, ENOSPC, 0});
    Status s = v.value()->JournalDelete(10);
    CHECK(s.message().rfind("write ecj: ", 0) == 0);
  }
  CHECK_FALSE(v.value()->Journaled(10));
  CHECK(ReadFileBytes(rig.bases.data + ".ecj").empty());
  // The next one lands whole.
  CHECK(v.value()->JournalDelete(10).ok());
  CHECK(ReadFileBytes(rig.bases.data + ".ecj") == Record(10));
}

TEST_CASE("EcVolume takes the index a location has, and refuses none") {
  TempDir dir;
  const std::string data = dir.path.string() + "/d", idx = dir.path.string() + "/i";
  REQUIRE(mkdir(data.c_str(), 0755) == 0);
  REQUIRE(mkdir(idx.c_str(), 0755) == 0);
  EcBases bases{data + "/5", idx + "/5"};
  auto none = EcVolume::Open(Env::Default(), bases, 5, "", kOffsetBytes);
  CHECK(none.status().code() == Code::kNotFound);
  CHECK(none.status().message() == "cannot open ec volume index " + data + "/5.ecx (or " + idx + "/5.ecx): file does not exist");
  // An empty index in the data directory loses to a non-empty one beside the .idx files.
  WriteFileBytes(data + "/5.ecx", "");
  WriteFileBytes(idx + "/5.ecx", Ecx({{1, 1, 1}}));
  WriteFileBytes(data + "/5.vif", R"({"version":2,"datFileSize":"123","ecShardConfig":{"dataShards":6,"parityShards":3,"encodeTsNs":"77","blockSize":"1048576"}})");
  auto v = EcVolume::Open(Env::Default(), bases, 5, "", kOffsetBytes);
  REQUIRE(v.ok());
  CHECK(v.value()->ecx_path() == idx + "/5.ecx");
  CHECK(v.value()->ecj_path() == idx + "/5.ecj");
  CHECK(v.value()->version() == 2);
  CHECK(v.value()->dat_file_size() == 123);
  CHECK(v.value()->data_shards() == 6);
  CHECK(v.value()->parity_shards() == 3);
  CHECK(v.value()->encode_ts_ns() == 77);
  CHECK(v.value()->layout().large_block == 1048576);
  CHECK(v.value()->ShardDatSize() == 123 / 6);
}

TEST_CASE("EC shard file names") {
  CHECK(EcShardIdOfName("pics_3.ec00", "pics_3") == 0);
  CHECK(EcShardIdOfName("pics_3.ec13", "pics_3") == 13);
  CHECK(EcShardIdOfName("pics_3.ec31", "pics_3") == 31);
  CHECK(EcShardIdOfName("pics_3.ec32", "pics_3") == -1);
  CHECK(EcShardIdOfName("pics_3.ecx", "pics_3") == -1);
  CHECK(EcShardIdOfName("pics_3.ec1", "pics_3") == -1);
  CHECK(EcShardIdOfName("pics_3.ec0a", "pics_3") == -1);
  CHECK(EcShardIdOfName("pics_33.ec01", "pics_3") == -1);
}
