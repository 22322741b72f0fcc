#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>
#include <thread>

#include "common/index_segment.h"

using namespace kelp;

TEST_CASE("packed index values round-trip, including sizes too large to pack") {
  for (uint32_t size : {0u, 1u, 4096u, IndexValue::kSizeUnknown - 1}) {
    IndexValue v{(uint64_t(1) << 40) - 1, size, true, true};
    const IndexValue back = IndexValue::Unpack(v.Pack());
    CHECK(back.offset_units == v.offset_units);
    CHECK(back.size == size);
    CHECK(back.deleted);
    CHECK(back.size_known);
  }
  const IndexValue big = IndexValue::Unpack(IndexValue{8, 100u << 20, false, true}.Pack());
  CHECK_FALSE(big.size_known);  // the reader takes the size from the needle header
  CHECK(big.offset_units == 8);
}

TEST_CASE("a reader mapping sees the writer's entries, key 0 included") {
  auto w = IndexSegmentWriter::Create("test", 1000, 7);
  REQUIRE(w.ok());
  CHECK(w.value().capacity() == 1024);
  for (NeedleId id = 0; id < 500; ++id) REQUIRE(w.value().Put(id, IndexValue{id + 1, uint32_t(id), false, true}));
  auto r = IndexSegmentReader::Map(w.value().fd());
  REQUIRE(r.ok());
  CHECK(r.value().Generation() == 7);
  for (NeedleId id = 0; id < 500; ++id) {
    auto v = r.value().Lookup(id);
    REQUIRE(v.has_value());
    CHECK(v->offset_units == id + 1);
  }
  CHECK_FALSE(r.value().Lookup(500).has_value());
  w.value().Put(3, IndexValue{4, 3, true, true});
  CHECK(r.value().Lookup(3)->deleted);
  CHECK_FALSE(r.value().Superseded());
  w.value().MarkSuperseded();
  CHECK(r.value().Superseded());
}

TEST_CASE("a merge keeps every entry, the delta's value winning; a full delta refuses new keys instead of looping") {
  auto w = IndexSegmentWriter::Create("test", 1024, 1);
  REQUIRE(w.ok());
  REQUIRE(w.value().Put(0, IndexValue{77, 7, false, true}));
  NeedleId id = 1;
  for (; w.value().UnderCeilingWith(0); ++id) REQUIRE(w.value().Put(id, IndexValue{id + 1, 1, false, true}));
  CHECK(id - 1 == 768);  // needle 0 lives in the header: 768 delta keys reach 3/4 of 1024 slots
  SegmentCounters c;
  c.file_count = 5;
  c.max_file_key = 9;
  w.value().SetCounters(c);
  w.value().SetReadOnly(true);
  auto merged = IndexSegmentWriter::Merged("test", w.value(), 0, 2);
  REQUIRE(merged.ok());
  CHECK(merged.value().base_count() == id - 1);
  CHECK(merged.value().used_slots() == 0);
  CHECK(merged.value().capacity() == DeltaCapacityFor(id - 1));
  for (NeedleId k = 1; k < id; ++k) CHECK(merged.value().Get(k)->offset_units == k + 1);
  CHECK(merged.value().Get(0)->offset_units == 77);
  auto r = IndexSegmentReader::Map(merged.value().fd());
  REQUIRE(r.ok());
  CHECK(r.value().Counters().file_count == 5);
  CHECK(r.value().Counters().max_file_key == 9);
  CHECK(r.value().ReadOnly());
  // Overwrites and deletes of base keys go to the delta, which answers first.
  REQUIRE(merged.value().Put(5, IndexValue{500, 2, false, true}));
  REQUIRE(merged.value().Put(6, IndexValue{7, 1, true, true}));
  CHECK(r.value().Lookup(5)->offset_units == 500);
  CHECK(r.value().Lookup(6)->deleted);
  CHECK_FALSE(r.value().Lookup(7)->deleted);
  // A second merge folds them into the base.
  auto again = IndexSegmentWriter::Merged("test", merged.value(), 4096, 3);
  REQUIRE(again.ok());
  CHECK(again.value().base_count() == id - 1);
  CHECK(again.value().Get(5)->offset_units == 500);
  CHECK(again.value().Get(6)->deleted);
  uint64_t seen = 0;
  again.value().ForEach([&](NeedleId, const IndexValue&) { ++seen; });
  CHECK(seen == id);  // every base key once, and needle 0
  // A full delta refuses a new key, and keeps one slot empty.
  while (w.value().Put(id, IndexValue{id, 1, false, true})) ++id;
  CHECK(w.value().used_slots() == 1023);
  CHECK(w.value().Get(id - 1).has_value());
  CHECK_FALSE(w.value().Get(id).has_value());
}

TEST_CASE("the base answers through its directory, for even and for skewed keys") {
  for (const char* shape : {"interleaved", "skewed", "single"}) {
    CAPTURE(shape);
    std::vector<BaseEntry> base;
    if (std::string(shape) == "interleaved") {
      for (uint64_t k = 3; k < 400000; k += 8) base.push_back({k, IndexValue{k * 2, uint32_t(k % 5000), false, true}.Pack()});
    } else if (std::string(shape) == "skewed") {
      // Most keys packed near the bottom, a few near the top of the key space.
      for (uint64_t k = 1; k < 20000; ++k) base.push_back({k, IndexValue{k * 2, 1, false, true}.Pack()});
      for (uint64_t k = ~uint64_t(0) - 5; k != 0; ++k) base.push_back({k, IndexValue{9, 1, false, true}.Pack()});
    } else {
      base.push_back({42, IndexValue{84, 1, false, true}.Pack()});
    }
    auto w = IndexSegmentWriter::CreateWithBase("test", base.data(), base.size(), 1024, 1);
    REQUIRE(w.ok());
    auto r = IndexSegmentReader::Map(w.value().fd());
    REQUIRE(r.ok());
    for (const BaseEntry& e : base) {
      const auto v = r.value().Lookup(e.key);
      REQUIRE(v.has_value());
      CHECK(v->Pack() == e.value);
    }
    // Keys between, below and above the base's are absent.
    CHECK_FALSE(r.value().Lookup(base.front().key - 1).has_value());
    if (base.back().key != ~uint64_t(0)) CHECK_FALSE(r.value().Lookup(base.back().key + 1).has_value());
    if (std::string(shape) == "interleaved") CHECK_FALSE(r.value().Lookup(4).has_value());
    if (std::string(shape) == "skewed") CHECK_FALSE(r.value().Lookup(20000).has_value());
    CHECK_FALSE(r.value().Lookup(0).has_value());
  }
}

TEST_CASE("a mapping whose header does not describe its length is refused") {
  std::vector<BaseEntry> base{{1, 8}, {2, 16}, {9, 24}};
  auto w = IndexSegmentWriter::CreateWithBase("test", base.data(), base.size(), 1024, 1);
  REQUIRE(w.ok());
  REQUIRE(IndexSegmentReader::Map(w.value().fd()).ok());
  // A memfd of the right magic but a different length.
  const int fd = memfd_create("short", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  SegmentHeader h{};
  h.magic = kSegmentMagic;
  h.layout_version = kSegmentLayoutVersion;
  h.capacity = 1024;
  h.base_count = 3;
  h.base_min_key = 1;
  h.base_max_key = 9;
  h.directory_buckets = 9;
  REQUIRE(ftruncate(fd, off_t(kSegmentHeaderBytes + 1024 * 16)) == 0);
  REQUIRE(pwrite(fd, &h, sizeof h, 0) == ssize_t(sizeof h));
  CHECK_FALSE(IndexSegmentReader::Map(fd).ok());
  close(fd);

  // Keys over the whole 2^64 span with shift 0 would need 2^64 buckets: the
  // count wraps to 0, and a length that fits a one-bucket directory must not
  // let a lookup index the directory by the key itself.
  const int forged = memfd_create("forged", MFD_CLOEXEC);
  REQUIRE(forged >= 0);
  h.base_min_key = 0;
  h.base_max_key = UINT64_MAX;
  h.directory_shift = 0;
  h.directory_buckets = 0;
  REQUIRE(ftruncate(forged, off_t(kSegmentHeaderBytes + 1024 * 16 + 3 * 16 + 1 * 4)) == 0);
  REQUIRE(pwrite(forged, &h, sizeof h, 0) == ssize_t(sizeof h));
  CHECK_FALSE(IndexSegmentReader::Map(forged).ok());
  close(forged);
}

TEST_CASE("a concurrent reader never sees a wrong or torn value") {
  auto w = IndexSegmentWriter::Create("test", 1 << 19, 1);
  REQUIRE(w.ok());
  auto r = IndexSegmentReader::Map(w.value().fd());
  REQUIRE(r.ok());
  constexpr NeedleId kKeys = 200000;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> wrong{0}, seen{0};
  std::thread reader([&] {
    while (!done.load()) {
      for (NeedleId id = 1; id <= kKeys; id += 97) {
        if (auto v = r.value().Lookup(id)) {
          // Every value written for `id` has offset id*3 and size id%1000 (or the overwrite id*5).
          const bool ok = (v->offset_units == id * 3 || v->offset_units == id * 5) && v->size == id % 1000;
          if (!ok) wrong++;
          seen++;
        }
      }
    }
  });
  for (NeedleId id = 1; id <= kKeys; ++id) w.value().Put(id, IndexValue{id * 3, uint32_t(id % 1000), false, true});
  for (NeedleId id = 1; id <= kKeys; id += 2) w.value().Put(id, IndexValue{id * 5, uint32_t(id % 1000), false, true});
  done = true;
  reader.join();
  CHECK(wrong.load() == 0);
  CHECK(seen.load() > 0);
}
