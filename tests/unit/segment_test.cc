#include <doctest/doctest.h>

#include <atomic>
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

TEST_CASE("growth copies every entry; a full table refuses new keys instead of looping") {
  auto w = IndexSegmentWriter::Create("test", 1024, 1);
  REQUIRE(w.ok());
  NeedleId id = 1;
  while (!w.value().WantsGrowth()) REQUIRE(w.value().Put(id++, IndexValue{id, 1, false, true}));
  CHECK(id - 1 == 768);
  auto bigger = IndexSegmentWriter::Create("test", 2048, 2);
  REQUIRE(bigger.ok());
  w.value().CopyTo(&bigger.value());
  for (NeedleId k = 1; k < id; ++k) CHECK(bigger.value().Get(k).has_value());
  while (w.value().Put(id, IndexValue{id, 1, false, true})) ++id;
  CHECK(w.value().used_slots() == 1023);  // one slot always stays empty
  CHECK(w.value().Get(id - 1).has_value());
  CHECK_FALSE(w.value().Get(id).has_value());
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
