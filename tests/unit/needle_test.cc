#include <doctest/doctest.h>

#include <map>

#include "common/crc32c.h"
#include "common/idx_entry.h"
#include "common/needle.h"
#include "common/super_block.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
using kelp::testing::ReadFixture;
using kelp::testing::U8;

namespace {

NeedleFields FieldsOf(const ParsedNeedle& n) {
  NeedleFields f;
  f.cookie = n.header.cookie;
  f.id = n.header.id;
  f.data = n.data;
  f.flags = n.flags;
  f.name = n.name;
  f.mime = n.mime;
  f.last_modified = n.last_modified;
  f.ttl = n.ttl;
  f.pairs = n.pairs;
  f.append_at_ns = n.append_at_ns;
  return f;
}

}  // namespace

TEST_CASE("crc32c matches Go's hash/crc32 Castagnoli table") {
  CHECK(Crc32c("123456789", 9) == 0xE3069283u);
  CHECK(Crc32c("", 0) == 0u);
  const std::string a = "hello ", b = "world";
  CHECK(Crc32cUpdate(Crc32c(a.data(), a.size()), b.data(), b.size()) == Crc32c("hello world", 11));
}

TEST_CASE("padding is 1..8 bytes and a full record is a multiple of 8") {
  for (uint32_t size = 0; size < 64; ++size) {
    for (uint8_t v : {uint8_t(1), uint8_t(2), uint8_t(3)}) {
      const uint32_t pad = PaddingLength(size, v);
      CHECK(pad >= 1);
      CHECK(pad <= 8);
      CHECK(ActualSize(size, v) % 8 == 0);
    }
  }
  // 16 header + 4 crc + 8 ts + 4 size = 32: already aligned, Go still pads 8.
  CHECK(PaddingLength(4, 3) == 8);
}

TEST_CASE("every needle of the Go-written healthy volume parses, verifies and re-encodes byte for byte") {
  const std::string dat = ReadFixture("weed__storage__test_files__healthy_volume.dat");
  const std::string idx = ReadFixture("weed__storage__test_files__healthy_volume.idx");
  REQUIRE(dat.size() > 8);
  auto sb = ParseSuperBlockHeader(U8(dat));
  REQUIRE(sb.ok());
  CHECK(sb.value().version == 3);
  REQUIRE(idx.size() % IdxEntrySize(4) == 0);
  size_t checked = 0;
  for (size_t i = 0; i < idx.size(); i += IdxEntrySize(4)) {
    const IdxEntry e = DecodeIdxEntry(U8(idx) + i, 4);
    if (e.IsDeleted()) continue;
    const uint64_t at = e.ByteOffset();
    const uint64_t len = ActualSize(uint32_t(e.size), 3);
    REQUIRE(at + len <= dat.size());
    ParsedNeedle n;
    Status s = ParseNeedle(U8(dat) + at, len, uint32_t(e.size), 3, &n);
    REQUIRE_MESSAGE(s.ok(), s.message());
    CHECK(n.header.id == e.id);
    const std::string again = EncodeNeedleV3(FieldsOf(n));
    CHECK(again == dat.substr(at, len));
    ++checked;
  }
  CHECK(checked > 10);
}

TEST_CASE("the bitrot volume's flipped bytes are caught by the CRC") {
  const std::string dat = ReadFixture("weed__storage__test_files__bitrot_volume.dat");
  const std::string idx = ReadFixture("weed__storage__test_files__bitrot_volume.idx");
  int corrupt = 0, fine = 0;
  for (size_t i = 0; i < idx.size(); i += IdxEntrySize(4)) {
    const IdxEntry e = DecodeIdxEntry(U8(idx) + i, 4);
    if (e.IsDeleted()) continue;
    ParsedNeedle n;
    Status s = ParseNeedle(U8(dat) + e.ByteOffset(), ActualSize(uint32_t(e.size), 3), uint32_t(e.size), 3, &n);
    if (s.ok()) ++fine;
    else {
      CHECK(s.code() == Code::kCorruption);
      ++corrupt;
    }
  }
  CHECK(corrupt >= 1);
  CHECK(fine >= 1);
}

TEST_CASE("an older release's volume (43.dat) walks needle by needle to the end") {
  const std::string dat = ReadFixture("weed__storage__needle__43.dat");
  auto sb = ParseSuperBlockHeader(U8(dat));
  REQUIRE(sb.ok());
  const uint8_t version = sb.value().version;
  uint64_t at = sb.value().BlockSize() + ExtraSizeOf(U8(dat));
  int needles = 0;
  while (at + kNeedleHeaderSize <= dat.size()) {
    const NeedleHeader h = ParseNeedleHeader(U8(dat) + at);
    const uint64_t len = ActualSize(h.size, version);
    REQUIRE(at + len <= dat.size());
    ParsedNeedle n;
    Status s = ParseNeedle(U8(dat) + at, len, h.size, version, &n);
    REQUIRE_MESSAGE(s.ok(), s.message());
    at += len;
    ++needles;
  }
  CHECK(at == dat.size());
  CHECK(needles > 0);
}

TEST_CASE("encode then parse keeps every field") {
  NeedleFields f;
  f.cookie = 0xdeadbeef;
  f.id = 0x1234567890;
  f.data = "payload bytes";
  f.name = "photo.jpg";
  f.mime = "image/jpeg";
  f.last_modified = 1700000000;
  f.ttl = Ttl{3, uint8_t(TtlUnit::kDay)};
  f.pairs = R"({"Seaweed-a":"b"})";
  f.flags = kFlagIsCompressed;
  SetContentFlags(&f);
  f.append_at_ns = 1700000000123456789ull;
  const std::string rec = EncodeNeedleV3(f);
  CHECK(rec.size() % 8 == 0);
  const NeedleHeader h = ParseNeedleHeader(U8(rec));
  ParsedNeedle n;
  REQUIRE(ParseNeedle(U8(rec), rec.size(), h.size, 3, &n).ok());
  CHECK(n.header.cookie == f.cookie);
  CHECK(n.header.id == f.id);
  CHECK(n.data == f.data);
  CHECK(n.name == f.name);
  CHECK(n.mime == f.mime);
  CHECK(n.last_modified == f.last_modified);
  CHECK(n.ttl == f.ttl);
  CHECK(n.pairs == f.pairs);
  CHECK(n.IsCompressed());
  CHECK(n.append_at_ns == f.append_at_ns);
}

TEST_CASE("an empty needle has size 0 and no body fields") {
  NeedleFields f;
  f.cookie = 1;
  f.id = 2;
  f.name = "ignored-without-data";
  const EncodedLayout l = PlanNeedleV3(f);
  CHECK(l.size == 0);
  CHECK(l.total == 32);
}

TEST_CASE("the legacy transformed CRC value is accepted") {
  NeedleFields f;
  f.id = 7;
  f.data = "abc";
  std::string rec = EncodeNeedleV3(f);
  const uint32_t size = ParseNeedleHeader(U8(rec)).size;
  uint8_t* crc_at = reinterpret_cast<uint8_t*>(rec.data()) + kNeedleHeaderSize + size;
  const uint32_t legacy = LegacyCrcValue(Crc32c("abc", 3));
  crc_at[0] = uint8_t(legacy >> 24); crc_at[1] = uint8_t(legacy >> 16); crc_at[2] = uint8_t(legacy >> 8); crc_at[3] = uint8_t(legacy);
  ParsedNeedle n;
  CHECK(ParseNeedle(U8(rec), rec.size(), size, 3, &n).ok());
  crc_at[3] ^= 1;
  CHECK(ParseNeedle(U8(rec), rec.size(), size, 3, &n).code() == Code::kCorruption);
}

TEST_CASE("truncated and lying records are rejected, never read past the buffer") {
  NeedleFields f;
  f.id = 9;
  f.data = "0123456789";
  f.name = "n";
  SetContentFlags(&f);
  const std::string rec = EncodeNeedleV3(f);
  const uint32_t size = ParseNeedleHeader(U8(rec)).size;
  ParsedNeedle n;
  CHECK_FALSE(ParseNeedle(U8(rec), rec.size() - 1, size, 3, &n).ok());
  CHECK(ParseNeedle(U8(rec), rec.size(), size + 8, 3, &n).code() == Code::kCorruption);
  std::string lying = rec;
  lying[kNeedleHeaderSize + 3] = char(200);  // data_size larger than the body
  CHECK(ParseNeedle(U8(lying), lying.size(), size, 3, &n).code() == Code::kCorruption);
}

TEST_CASE("NeedleString is Go's Needle.String(), as Go 4.48 quotes a needle whose data CRC fails") {
  // Go 4.48's answer to a read of needle 2,700112345678 with a flipped data byte:
  // "ReadNeedleData checksum ... for Needle: 2,700112345678 Size:3145778, DataSize:3145728,
  //  Name:2,700112345678, Mime:application/octet-stream Compressed:false".
  ParsedNeedle n;
  n.header.id = 0x7001;
  n.header.cookie = 0x12345678;
  n.header.size = 3145778;
  n.name = "2,700112345678";
  n.mime = "application/octet-stream";
  CHECK(NeedleString(n, 3145728) ==
        "700112345678 Size:3145778, DataSize:3145728, Name:2,700112345678, Mime:application/octet-stream Compressed:false");
  n.flags = kFlagIsCompressed;
  n.header.id = 0x1;
  n.header.cookie = 0x1;
  n.name = "";
  n.mime = "";
  CHECK(NeedleString(n, 7) == "0100000001 Size:3145778, DataSize:7, Name:, Mime: Compressed:true");
}

TEST_CASE("a record encoded in pieces is the whole record, data left in place") {
  // Every padding length, with and without each optional field, and no data.
  for (size_t data_size : {size_t(0), size_t(1), size_t(2), size_t(3), size_t(4), size_t(5), size_t(6), size_t(7), size_t(8), size_t(1000)}) {
    for (int fields = 0; fields < 4; ++fields) {
      const std::string data(data_size, 'q');
      NeedleFields f;
      f.cookie = 0x01020304;
      f.id = 0x1122334455667788ull;
      f.data = data;
      if (fields & 1) {
        f.name = "a.txt";
        f.mime = "text/plain";
        f.last_modified = 1700000000;
      }
      if (fields & 2) {
        f.ttl = Ttl{5, uint8_t(TtlUnit::kMinute)};
        f.pairs = R"({"Seaweed-k":"v"})";
      }
      SetContentFlags(&f);
      f.append_at_ns = 1234567890123ull;
      const std::string whole = EncodeNeedleV3(f);
      const NeedlePieces pieces = EncodeNeedleV3Pieces(f, Crc32c(data.data(), data.size()));
      CAPTURE(data_size);
      CAPTURE(fields);
      CHECK(pieces.head + data + pieces.tail == whole);
      CHECK(pieces.layout.total == whole.size());
      CHECK(pieces.layout.checksum == Crc32c(data.data(), data.size()));
    }
  }
}
