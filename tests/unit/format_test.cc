#include <doctest/doctest.h>

#include "common/file_id.h"
#include "common/idx_entry.h"
#include "common/replica_placement.h"
#include "common/super_block.h"
#include "common/ttl.h"
#include "common/volume_info.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
using kelp::testing::ReadFixture;
using kelp::testing::U8;

TEST_CASE("file ids split into needle id and an 8-digit cookie") {
  auto r = ParseNeedleIdCookie("01637037d6");
  REQUIRE(r.ok());
  CHECK(r.value().id == 0x01);
  CHECK(r.value().cookie == 0x637037d6u);
  CHECK(FormatNeedleIdCookie(1, 0x637037d6u) == "01637037d6");
  CHECK(FormatFileId(3, 0x1234, 0xabcdef01u) == "3,1234abcdef01");
  CHECK(ParseNeedleIdCookie("12345678").status().message() == "KeyHash is too short.");
  CHECK(ParseNeedleIdCookie(std::string(25, '1')).status().message() == "KeyHash is too long.");
  CHECK_FALSE(ParseNeedleIdCookie("zz637037d6").ok());
  CHECK_FALSE(ParseNeedleIdCookie("01637037dg").ok());
  CHECK_FALSE(ParseNeedleIdCookie("-1637037d6").ok());
  auto big = ParseNeedleIdCookie("ffffffffffffffff" "00000001");
  REQUIRE(big.ok());
  CHECK(big.value().id == ~uint64_t(0));
}

TEST_CASE("volume ids are unsigned 32-bit decimals") {
  CHECK(ParseVolumeId("7").value() == 7u);
  CHECK(ParseVolumeId("4294967295").value() == 4294967295u);
  CHECK(ParseVolumeId("4294967296").value() == 0u);  // Go truncates to 32 bits
  CHECK(ParseVolumeId("4294967303").value() == 7u);
  CHECK_FALSE(ParseVolumeId("18446744073709551616").ok());
  CHECK_FALSE(ParseVolumeId("-1").ok());
  CHECK_FALSE(ParseVolumeId("").ok());
  CHECK_FALSE(ParseVolumeId("1a").ok());
}

TEST_CASE("TTL strings normalise like Go") {
  CHECK(ParseTtl("").value().empty());
  CHECK(ParseTtl("3m").value().String() == "3m");
  CHECK(ParseTtl("120m").value().String() == "2h");
  CHECK(ParseTtl("24h").value().String() == "1d");
  CHECK(ParseTtl("7d").value().String() == "1w");
  CHECK(ParseTtl("30d").value().String() == "1M");
  CHECK(ParseTtl("365d").value().String() == "1y");
  CHECK(ParseTtl("15").value().String() == "15m");
  CHECK(ParseTtl("300m").value().String() == "5h");
  CHECK(ParseTtl("3d").value().Seconds() == 3 * 86400);
  CHECK_FALSE(ParseTtl("abc").ok());
  uint8_t b[2];
  ParseTtl("5d").value().ToBytes(b);
  CHECK(Ttl::FromBytes(b).String() == "5d");
  CHECK(Ttl::FromBytes(b).ToUint32() == (5u << 8 | 3u));
}

TEST_CASE("replica placement strings and bytes") {
  CHECK(ParseReplicaPlacement("").value().String() == "000");
  CHECK(ParseReplicaPlacement("1").value().String() == "001");
  CHECK(ParseReplicaPlacement("010").value().Byte() == 10);
  CHECK(ParseReplicaPlacement("200").value().CopyCount() == 3);
  CHECK(ParseReplicaPlacement("300").status().message() == "unexpected replication type: 300");
  CHECK(ParseReplicaPlacement("0 1").status().message() == "unknown replication type: 0 1");
  CHECK(ReplicaPlacement::FromByte(123).String() == "123");
}

TEST_CASE("superblock round trip, with and without extra") {
  SuperBlock sb;
  sb.replica_placement = ParseReplicaPlacement("001").value();
  sb.ttl = ParseTtl("3d").value();
  sb.compaction_revision = 513;
  std::string enc = sb.Encode();
  REQUIRE(enc.size() == 8);
  CHECK(uint8_t(enc[0]) == 3);
  CHECK(uint8_t(enc[1]) == 1);
  CHECK(uint8_t(enc[4]) == 2);
  CHECK(uint8_t(enc[5]) == 1);
  auto back = ParseSuperBlockHeader(U8(enc));
  REQUIRE(back.ok());
  CHECK(back.value().replica_placement == sb.replica_placement);
  CHECK(back.value().ttl == sb.ttl);
  CHECK(back.value().compaction_revision == 513);
  sb.extra = std::string("\x08\x01", 2);
  enc = sb.Encode();
  CHECK(enc.size() == 10);
  CHECK(ExtraSizeOf(U8(enc)) == 2);
  CHECK(sb.BlockSize() == 10);
  const uint8_t bad[8] = {9, 0, 0, 0, 0, 0, 0, 0};
  CHECK(ParseSuperBlockHeader(bad).status().code() == Code::kCorruption);
  CHECK(ParseSuperBlockHeader(U8(ReadFixture("weed__storage__test_files__empty_volume.dat"))).ok());
}

TEST_CASE("idx entries, 4-byte and 5-byte offsets") {
  IdxEntry e{0x0102030405060708ull, (uint64_t(0xAB) << 32) | 0x11223344u, 4096};
  uint8_t b5[17];
  EncodeIdxEntry(e, 5, b5);
  CHECK(b5[8] == 0x11);
  CHECK(b5[11] == 0x44);
  CHECK(b5[12] == 0xAB);
  const IdxEntry d5 = DecodeIdxEntry(b5, 5);
  CHECK(d5.id == e.id);
  CHECK(d5.offset_units == e.offset_units);
  CHECK(d5.size == 4096);
  IdxEntry small{5, 0x11223344u, kTombstoneSize};
  uint8_t b4[16];
  EncodeIdxEntry(small, 4, b4);
  const IdxEntry d4 = DecodeIdxEntry(b4, 4);
  CHECK(d4.offset_units == 0x11223344u);
  CHECK(d4.size == -1);
  CHECK(d4.IsDeleted());
}

TEST_CASE("Go-written index files decode; the truncated one ends mid-entry") {
  const std::string simple = ReadFixture("weed__storage__idx__test_files__simple_index.idx");
  REQUIRE(simple.size() % 16 == 0);
  const std::string truncated = ReadFixture("weed__storage__idx__test_files__simple_index_truncated.idx");
  CHECK(truncated.size() % 16 != 0);
  const std::string deleted = ReadFixture("weed__storage__idx__test_files__deleted_files.idx");
  int tombstones = 0;
  for (size_t i = 0; i + 16 <= deleted.size(); i += 16)
    if (DecodeIdxEntry(U8(deleted) + i, 4).size < 0) ++tombstones;
  CHECK(tombstones > 0);
  const std::string big = ReadFixture("test__data__187.idx");
  CHECK(big.size() / 16 > 60000);
}

TEST_CASE(".vif: protojson fields decode; wrong types and out-of-range numbers are corruption, not UB") {
  auto ok = DecodeVolumeInfo(R"({"files":[],"version":3,"replication":"001","bytesOffset":5,"datFileSize":"123","expireAtSec":"0","readOnly":true})");
  REQUIRE(ok.ok());
  CHECK(ok.value().version == 3);
  CHECK(ok.value().bytes_offset == 5);
  CHECK(ok.value().dat_file_size == 123);
  CHECK(ok.value().read_only);
  CHECK(ok.value().replication == "001");
  // Found by the fuzzer: a number beyond uint64 used to be converted with undefined behaviour.
  CHECK(DecodeVolumeInfo(R"({"expireAtSec":333333333333333333333333333})").status().code() == Code::kCorruption);
  CHECK(DecodeVolumeInfo(R"({"version":4294967296})").status().code() == Code::kCorruption);
  CHECK(DecodeVolumeInfo(R"({"version":-1})").status().code() == Code::kCorruption);
  CHECK(DecodeVolumeInfo(R"({"readOnly":"yes"})").status().code() == Code::kCorruption);
  CHECK(DecodeVolumeInfo(R"({"datFileSize":"12x"})").status().code() == Code::kCorruption);
  CHECK(DecodeVolumeInfo("not json").status().code() == Code::kCorruption);
  // What kelp writes reads back the same.
  VolumeInfo v;
  v.version = 3;
  v.bytes_offset = 4;
  v.read_only = true;
  auto back = DecodeVolumeInfo(EncodeVolumeInfo(v));
  REQUIRE(back.ok());
  CHECK(back.value().read_only);
  CHECK(back.value().bytes_offset == 4);
}

TEST_CASE("the .vif's ecShardConfig: read as Go writes it, written back whole") {
  // Go 4.48's .vif after an encode (its protojson spacing).
  const std::string go = R"({
  "files":  [],
  "version":  3,
  "replication":  "",
  "bytesOffset":  0,
  "datFileSize":  "5928096",
  "expireAtSec":  "0",
  "readOnly":  false,
  "ecShardConfig":  {
    "dataShards":  10,
    "parityShards":  4,
    "encodeTsNs":  "1796588764761483452",
    "blockSize":  "1048576"
  },
  "readOnlyCanDelete":  false
})";
  auto info = DecodeVolumeInfo(go);
  REQUIRE(info.ok());
  REQUIRE(info.value().ec_shard_config);
  CHECK(info.value().ec_shard_config->data_shards == 10);
  CHECK(info.value().ec_shard_config->parity_shards == 4);
  CHECK(info.value().ec_shard_config->encode_ts_ns == 1796588764761483452LL);
  CHECK(info.value().ec_shard_config->block_size == 1048576);
  CHECK(info.value().dat_file_size == 5928096);

  VolumeInfo fresh;
  fresh.version = 3;
  fresh.ec_shard_config = EcShardConfigInfo{3, 2, 7, 0};
  auto back = DecodeVolumeInfo(EncodeVolumeInfo(fresh));
  REQUIRE(back.ok());
  REQUIRE(back.value().ec_shard_config);
  CHECK(back.value().ec_shard_config->data_shards == 3);
  CHECK(back.value().ec_shard_config->encode_ts_ns == 7);
  CHECK(back.value().ec_shard_config->block_size == 0);  // absent in pre-4.48 files: the legacy layout

  CHECK_FALSE(DecodeVolumeInfo(R"({"ecShardConfig": {"dataShards": "ten"}})").ok());
  CHECK_FALSE(DecodeVolumeInfo(R"({"ecShardConfig": 5})").ok());
  auto none = DecodeVolumeInfo(R"({"ecShardConfig": null})");
  REQUIRE(none.ok());
  CHECK_FALSE(none.value().ec_shard_config);
}
