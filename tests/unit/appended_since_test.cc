// The search by append time and the record scan that tails and incremental
// copies read volumes with (common/appended_since.h), on hand-built files.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/appended_since.h"
#include "common/bytes.h"
#include "common/idx_entry.h"
#include "common/needle.h"

using namespace kelp;

namespace {

constexpr int kOffsetBytes = 5;

// A .dat and an .idx in memory files: a bare superblock, then the records
// given (data, append time), each with a put row; `zero_rows` adds rows with
// offset 0 at the given positions (what pre-4.31 vacuums and remote deletes leave).
struct Files {
  int dat = memfd_create("dat", 0), idx = memfd_create("idx", 0);
  std::vector<uint64_t> offsets;  // of each record
  std::string dat_bytes = std::string("\x03\0\0\0\0\0\0\0", 8);  // a version-3 superblock
  std::string idx_bytes;
  ~Files() {
    close(dat);
    close(idx);
  }
  void Add(NeedleId id, const std::string& data, uint64_t ns) {
    NeedleFields f;
    f.id = id;
    f.cookie = 0x1234;
    f.data = data;
    f.append_at_ns = ns;
    offsets.push_back(dat_bytes.size());
    const std::string rec = EncodeNeedleV3(f);
    Row(id, dat_bytes.size() / 8, int32_t(ParseNeedleHeader(U(rec)).size));
    dat_bytes += rec;
  }
  void Row(NeedleId id, uint64_t units, int32_t size) {
    uint8_t row[32];
    EncodeIdxEntry(IdxEntry{id, units, size}, kOffsetBytes, row);
    idx_bytes.append(reinterpret_cast<char*>(row), IdxEntrySize(kOffsetBytes));
  }
  static const uint8_t* U(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
  VolumeFilesView View() {
    REQUIRE(pwrite(dat, dat_bytes.data(), dat_bytes.size(), 0) == ssize_t(dat_bytes.size()));
    REQUIRE(pwrite(idx, idx_bytes.data(), idx_bytes.size(), 0) == ssize_t(idx_bytes.size()));
    VolumeFilesView v;
    v.dat_fd = dat;
    v.idx_fd = idx;
    v.version = 3;
    v.offset_bytes = kOffsetBytes;
    v.dat_size = dat_bytes.size();
    v.idx_size = idx_bytes.size();
    v.dat_path = "/d/7.dat";
    v.idx_path = "/d/7.idx";
    return v;
  }
};

uint64_t Found(const VolumeFilesView& v, uint64_t since) {
  auto r = FindFirstAppendedAfter(v, since);
  REQUIRE(r.ok());
  REQUIRE_FALSE(r.value().nothing_newer);
  return r.value().offset;
}

bool NothingNewer(const VolumeFilesView& v, uint64_t since) {
  auto r = FindFirstAppendedAfter(v, since);
  REQUIRE(r.ok());
  return r.value().nothing_newer;
}

}  // namespace

TEST_CASE("append-time search: the first record strictly after the time, or nothing newer") {
  Files f;
  SUBCASE("an empty index has nothing newer, whatever the time") {
    const VolumeFilesView v = f.View();
    CHECK(NothingNewer(v, 0));
    CHECK(NothingNewer(v, 123));
  }
  SUBCASE("monotonic times") {
    for (int i = 1; i <= 5; ++i) f.Add(NeedleId(i), "needle " + std::to_string(i), uint64_t(i) * 10);
    const VolumeFilesView v = f.View();
    CHECK(Found(v, 0) == f.offsets[0]);  // the first record, never the superblock
    CHECK(Found(v, 9) == f.offsets[0]);
    CHECK(Found(v, 10) == f.offsets[1]);  // equal is not after
    CHECK(Found(v, 25) == f.offsets[2]);
    CHECK(Found(v, 49) == f.offsets[4]);
    CHECK(NothingNewer(v, 50));
    CHECK(NothingNewer(v, ~0ull));
  }
  SUBCASE("rows with offset 0 are stepped over by their timed neighbours") {
    f.Add(1, "a", 10);
    f.Row(2, 0, -1);  // a row that carries no time
    f.Add(3, "c", 30);
    f.Add(4, "d", 40);
    const VolumeFilesView v = f.View();
    CHECK(Found(v, 5) == f.offsets[0]);
    CHECK(Found(v, 15) == f.offsets[1]);  // the right neighbour of the zero row
    CHECK(Found(v, 30) == f.offsets[2]);
    CHECK(NothingNewer(v, 40));
  }
  SUBCASE("a zero row at the end: the search runs off the end as nothing newer") {
    f.Add(1, "a", 10);
    f.Add(2, "b", 20);
    f.Row(3, 0, -1);
    const VolumeFilesView v = f.View();
    CHECK(Found(v, 10) == f.offsets[1]);
    CHECK(NothingNewer(v, 20));
  }
}

TEST_CASE("append-time search: after a vacuum the times along the .idx are not monotonic; the answer is the binary search's, not the first later record") {
  Files f;
  // Times by row: 50, 10, 40, 20, 60 (a compacted .idx is in key order).
  const uint64_t times[] = {50, 10, 40, 20, 60};
  for (int i = 0; i < 5; ++i) f.Add(NeedleId(i + 1), "row " + std::to_string(i), times[i]);
  const VolumeFilesView v = f.View();
  // Go's probes for since=45: row 2 (40 <= 45), row 4 (60 > 45), row 3 (20 <= 45): row 4, though row 0 (50) is later too.
  CHECK(Found(v, 45) == f.offsets[4]);
  CHECK(Found(v, 30) == f.offsets[2]);  // row 2 (40 > 30), row 1 (10 <= 30)
  CHECK(Found(v, 5) == f.offsets[0]);
  CHECK(Found(v, 55) == f.offsets[4]);
  CHECK(NothingNewer(v, 60));
}

TEST_CASE("append-time search: a record bigger than one slice is checked in slices, CRC included") {
  Files f;
  const std::string big(5 << 20, 'b');
  f.Add(1, "small", 10);
  f.Add(2, big, 20);
  f.Add(3, "after", 30);
  SUBCASE("whole") {
    const VolumeFilesView v = f.View();
    CHECK(Found(v, 15) == f.offsets[1]);
    CHECK(Found(v, 20) == f.offsets[2]);
  }
  SUBCASE("a damaged byte in the middle of the big data") {
    f.dat_bytes[f.offsets[1] + 16 + 4 + (3 << 20)] ^= 1;
    const VolumeFilesView v = f.View();
    auto r = FindFirstAppendedAfter(v, 15);  // probes row 1 first
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("invalid CRC for needle 2") != std::string::npos);
  }
  SUBCASE("a row with offset 0 first: its left neighbour is the start of the file, the answer the first record") {
    Files z;
    z.Row(9, 0, -1);
    z.Add(1, "a", 10);
    const VolumeFilesView v = z.View();
    CHECK(Found(v, 0) == 8);
  }
}

TEST_CASE("append-time search: Go's error texts") {
  Files f;
  f.Add(1, "a", 10);
  f.Add(2, "bb", 20);
  f.Add(3, "ccc", 30);
  SUBCASE("an index that is not whole rows") {
    f.idx_bytes += "xyz";
    const VolumeFilesView v = f.View();
    auto r = FindFirstAppendedAfter(v, 0);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "unexpected file /d/7.idx size: " + std::to_string(f.idx_bytes.size()));
  }
  SUBCASE("a probed record whose data fails its CRC") {
    f.dat_bytes[f.offsets[1] + 16 + 4] ^= 0x55;  // the middle record's first data byte
    const VolumeFilesView v = f.View();
    auto r = FindFirstAppendedAfter(v, 0);
    REQUIRE_FALSE(r.ok());
    const std::string at = std::to_string(f.offsets[1]);
    CHECK(r.status().message().rfind("read entry 1 offset " + at + ": ReadNeedleBody offset " + at + ", bodyLength ", 0) == 0);
    CHECK(r.status().message().find("invalid CRC for needle 2") != std::string::npos);
  }
}

TEST_CASE("record scan: every record from an offset, bodies in bounded slices, never past the bound") {
  Files f;
  const std::string big(50, 'x');
  f.Add(1, "first", 100);
  f.Add(2, big, 200);
  f.Add(3, "third", 300);
  VolumeFilesView v = f.View();
  struct Seen {
    uint64_t offset, body_at, body_length;
    size_t slice;
    bool last;
  };
  std::vector<Seen> seen;
  std::string reassembled;
  auto visit = [&](const RecordSlice& r) {
    seen.push_back({r.offset, r.body_at, r.body_length, r.body.size(), r.last});
    if (r.body_at == 0) reassembled += std::string(r.header);
    reassembled += std::string(r.body);
    return Status::Ok();
  };
  uint64_t last_ns = 0;
  SUBCASE("slices of 16 bytes: the timestamp of the big record straddles two") {
    REQUIRE(ScanRecordsFrom(v, f.offsets[1], 16, visit, &last_ns).ok());
    CHECK(reassembled == f.dat_bytes.substr(f.offsets[1]));
    CHECK(last_ns == 300);
    // Record 2: size 55 (length, 50 bytes, flags), body 55 + 4 + 8 + 5 of padding = 72 bytes: five slices,
    // its append time at body bytes 59..66, across the fourth and fifth.
    REQUIRE(seen.size() == 7);
    CHECK(seen[0].offset == f.offsets[1]);
    CHECK(seen[0].body_length == 72);
    CHECK((seen[4].slice == 8 && seen[4].last && seen[4].body_at == 64));
    for (int i = 0; i < 4; ++i) CHECK((seen[size_t(i)].slice == 16 && !seen[size_t(i)].last));
    CHECK(seen[5].offset == f.offsets[2]);
    v.dat_size = f.offsets[2];  // the big record is the last one visited
    uint64_t ns_of_big = 0;
    REQUIRE(ScanRecordsFrom(v, f.offsets[1], 16, [](const RecordSlice&) { return Status::Ok(); }, &ns_of_big).ok());
    CHECK(ns_of_big == 200);
  }
  SUBCASE("a record that runs past the bound is damage: the scan ends with an error after the whole ones") {
    v.dat_size = f.dat_bytes.size() - 3;
    Status s = ScanRecordsFrom(v, f.offsets[0], 1 << 20, visit, &last_ns);
    CHECK(s.message().rfind("cannot read needle header at offset " + std::to_string(f.offsets[2]) + ": ", 0) == 0);
    REQUIRE(seen.size() == 2);
    CHECK(seen[1].offset == f.offsets[1]);
    CHECK(last_ns == 200);
  }
  SUBCASE("a visitor error ends the scan with it") {
    Status s = ScanRecordsFrom(v, f.offsets[0], 1 << 20, [](const RecordSlice&) { return Status::IOError("visit needle error: gone"); }, &last_ns);
    CHECK(s.message() == "visit needle error: gone");
  }
}
