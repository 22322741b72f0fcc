#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include "common/idx_entry.h"
#include "storage/volume.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
namespace fs = std::filesystem;

namespace {

VolumeFileNames Names(const fs::path& dir, VolumeId id = 1) {
  VolumeFileNames n;
  n.dir = n.idx_dir = dir.string();
  n.id = id;
  return n;
}

std::string Record(NeedleId id, Cookie cookie, const std::string& data) {
  NeedleFields f;
  f.id = id;
  f.cookie = cookie;
  f.data = data;
  f.name = "n.bin";
  f.last_modified = 1700000000;
  SetContentFlags(&f);
  return EncodeNeedleV3(f);
}

Result<AppendOutcome> Put(Volume& v, NeedleId id, Cookie cookie, const std::string& data) {
  std::string rec = Record(id, cookie, data);
  return v.Append(reinterpret_cast<uint8_t*>(rec.data()), rec.size());
}

void AppendBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::app) << bytes;
}

}  // namespace

TEST_CASE("a new volume takes writes, overwrites and deletes, and reloads to the same state") {
  testing::TempDir t;
  for (int width : {4, 5}) {
    const VolumeId vid = VolumeId(width);
    {
      auto v = Volume::Create(Names(t.path, vid), SuperBlock{}, width);
      REQUIRE(v.ok());
      Volume& vol = *v.value();
      CHECK(vol.dat_size() == 8);
      REQUIRE(Put(vol, 1, 0xaa, "first").ok());
      REQUIRE(Put(vol, 2, 0xbb, std::string(100000, 'x')).ok());
      REQUIRE(Put(vol, 1, 0xaa, "first, rewritten").ok());  // overwrite, same cookie
      CHECK(Put(vol, 1, 0xab, "wrong cookie").status().code() == Code::kCookieMismatch);
      const uint64_t before = vol.dat_size();
      auto deleted = vol.Delete(2, 0xbb);
      REQUIRE(deleted.ok());
      CHECK(deleted.value() > 100000);
      CHECK(vol.dat_size() == before + 32);  // a v3 tombstone: 16 header + 4 crc + 8 ts + 4 padding
      {
        // As Go writes it: the deleted needle's id and cookie, size 0, and
        // the checksum of the deleted needle's data.
        std::string tomb(20, '\0');
        REQUIRE(pread(vol.dat_fd(), tomb.data(), tomb.size(), off_t(before)) == 20);
        const std::string expected = Record(2, 0xbb, std::string(100000, 'x'));
        const size_t crc_at = kNeedleHeaderSize + ParseNeedleHeader(reinterpret_cast<const uint8_t*>(expected.data())).size;
        CHECK(tomb.substr(0, 4) == expected.substr(0, 4));    // cookie
        CHECK(tomb.substr(4, 8) == expected.substr(4, 8));    // id
        CHECK(tomb.substr(12, 4) == std::string(4, '\0'));    // size 0
        CHECK(tomb.substr(16, 4) == expected.substr(crc_at, 4));
        CHECK(tomb.substr(16, 4) != std::string(4, '\0'));
      }
      CHECK(vol.Delete(99, 1).value() == 0u);  // absent: nothing appended
      CHECK(vol.dat_size() == before + 32);
      const SegmentCounters c = vol.counters();
      CHECK(c.file_count == 3);     // every put counts, as in Go's needle map
      CHECK(c.deleted_count == 2);  // the overwritten needle and the deleted one
    }
    const fs::path idx = t.path / (std::to_string(vid) + ".idx");
    CHECK(fs::file_size(idx) == 4u * IdxEntrySize(width));
    auto again = Volume::Load(Names(t.path, vid), width);
    REQUIRE(again.ok());
    Volume& vol = *again.value();
    CHECK_FALSE(vol.read_only());
    CHECK(vol.load_warning().empty());
    auto one = vol.Lookup(1);
    REQUIRE(one.has_value());
    CHECK_FALSE(one->deleted);
    auto two = vol.Lookup(2);
    REQUIRE(two.has_value());
    CHECK(two->deleted);
    CHECK(vol.counters().file_count == 3);
    CHECK(vol.counters().deleted_count == 2);
  }
}

TEST_CASE("a read-only volume refuses writes and deletes") {
  testing::TempDir t;
  auto v = Volume::Create(Names(t.path), SuperBlock{}, 4);
  REQUIRE(v.ok());
  REQUIRE(Put(*v.value(), 1, 1, "x").ok());
  REQUIRE(v.value()->SetReadOnly(true, true).ok());
  CHECK(Put(*v.value(), 2, 1, "y").status().code() == Code::kReadOnly);
  CHECK(v.value()->Delete(1, 1).status().code() == Code::kReadOnly);
  v.value().reset();
  auto again = Volume::Load(Names(t.path), 4);  // persisted in the .vif
  REQUIRE(again.ok());
  CHECK(again.value()->read_only());
}

TEST_CASE("unacknowledged tails are cut at load; the volume stays writable with every indexed needle") {
  struct Damage {
    const char* what;
    void (*apply)(const fs::path& dat, const fs::path& idx);
    NeedleId last_live;  // needles 1..last_live survive
  };
  const Damage cases[] = {
      {"bytes after the last needle", [](const fs::path& dat, const fs::path&) { AppendBytes(dat, "garbage!"); }, 5},
      {"a complete record that was never indexed", [](const fs::path& dat, const fs::path&) { AppendBytes(dat, Record(6, 7, "late")); }, 5},
      {"a torn .idx entry", [](const fs::path&, const fs::path& idx) { fs::resize_file(idx, fs::file_size(idx) - 3); }, 4},
  };
  for (const Damage& d : cases) {
    CAPTURE(d.what);
    testing::TempDir t;
    uint64_t size_before = 0;
    {
      auto v = Volume::Create(Names(t.path), SuperBlock{}, 4);
      REQUIRE(v.ok());
      for (NeedleId id = 1; id <= 5; ++id) REQUIRE(Put(*v.value(), id, 7, std::string(100 * id, char('a' + id))).ok());
      size_before = v.value()->dat_size();
    }
    d.apply(t.path / "1.dat", t.path / "1.idx");
    auto v = Volume::Load(Names(t.path), 4);
    REQUIRE(v.ok());
    CHECK_FALSE(v.value()->read_only());
    CHECK(v.value()->load_warning().empty());
    for (NeedleId id = 1; id <= 5; ++id) CHECK(v.value()->Lookup(id).has_value() == (id <= d.last_live));
    CHECK(v.value()->Lookup(6).has_value() == false);
    CHECK(v.value()->dat_size() <= size_before);
    CHECK(fs::file_size(t.path / "1.dat") == v.value()->dat_size());
    CHECK(Put(*v.value(), 9, 1, "accepted").ok());
  }
}

TEST_CASE("damage to acknowledged data loads read-only, as in Go") {
  struct Damage {
    const char* what;
    void (*apply)(const fs::path& dat, const fs::path& idx);
  };
  const Damage cases[] = {
      {"the last needle cut short", [](const fs::path& dat, const fs::path&) { fs::resize_file(dat, fs::file_size(dat) - 20); }},
      {"a last needle whose header size disagrees with the index", [](const fs::path& dat, const fs::path&) {
         // The size field sits at offset 12 of the last record (needle 5).
         const auto last = Record(5, 7, std::string(500, 'f')).size();
         std::fstream f(dat, std::ios::binary | std::ios::in | std::ios::out);
         f.seekp(std::streamoff(fs::file_size(dat) - last + 15));
         f.put('\x01');
       }},
  };
  for (const Damage& d : cases) {
    CAPTURE(d.what);
    testing::TempDir t;
    {
      auto v = Volume::Create(Names(t.path), SuperBlock{}, 4);
      REQUIRE(v.ok());
      for (NeedleId id = 1; id <= 5; ++id) REQUIRE(Put(*v.value(), id, 7, std::string(100 * id, char('a' + id))).ok());
    }
    const auto size = fs::file_size(t.path / "1.dat");
    d.apply(t.path / "1.dat", t.path / "1.idx");
    const auto damaged = fs::file_size(t.path / "1.dat");
    auto v = Volume::Load(Names(t.path), 4);
    REQUIRE(v.ok());
    CHECK(v.value()->read_only());
    CHECK_FALSE(v.value()->load_warning().empty());
    for (NeedleId id = 1; id <= 4; ++id) CHECK(v.value()->Lookup(id).has_value());
    CHECK(Put(*v.value(), 9, 1, "refused").status().code() == Code::kReadOnly);
    CHECK(fs::file_size(t.path / "1.dat") == damaged);  // nothing cut
    (void)size;
  }
}

TEST_CASE("a flipped data byte in the last needle loads writable, as in Go, and fails its CRC on read") {
  testing::TempDir t;
  std::string last;
  {
    auto v = Volume::Create(Names(t.path), SuperBlock{}, 4);
    REQUIRE(v.ok());
    REQUIRE(Put(*v.value(), 1, 7, "first").ok());
    last = Record(2, 7, std::string(500, 'z'));
    REQUIRE(v.value()->Append(reinterpret_cast<uint8_t*>(last.data()), last.size()).ok());
  }
  const auto dat = t.path / "1.dat";
  const auto at = fs::file_size(dat) - last.size();
  {
    std::fstream f(dat, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(std::streamoff(at + 100));  // inside the data
    f.put('Q');
  }
  auto v = Volume::Load(Names(t.path), 4);
  REQUIRE(v.ok());
  CHECK_FALSE(v.value()->read_only());
  std::string rec(last.size(), '\0');
  std::ifstream(dat, std::ios::binary).seekg(std::streamoff(at)).read(rec.data(), std::streamsize(rec.size()));
  ParsedNeedle n;
  CHECK(ParseNeedle(kelp::testing::U8(rec), rec.size(), ParseNeedleHeader(kelp::testing::U8(rec)).size, 3, &n).code() == Code::kCorruption);
}

TEST_CASE("Go-written volumes load writable, with every live index entry found") {
  testing::TempDir t;
  fs::copy_file(kelp::testing::FixturePath("weed__storage__test_files__healthy_volume.dat"), t.path / "1.dat");
  fs::copy_file(kelp::testing::FixturePath("weed__storage__test_files__healthy_volume.idx"), t.path / "1.idx");
  auto v = Volume::Load(Names(t.path), 4);
  REQUIRE(v.ok());
  CHECK_FALSE(v.value()->read_only());
  const std::string idx = kelp::testing::ReadFixture("weed__storage__test_files__healthy_volume.idx");
  int live = 0;
  for (size_t i = 0; i < idx.size(); i += 16) {
    const IdxEntry e = DecodeIdxEntry(kelp::testing::U8(idx) + i, 4);
    if (e.IsDeleted()) continue;
    auto found = v.value()->Lookup(e.id);
    REQUIRE(found.has_value());
    ++live;
  }
  CHECK(live > 10);
  CHECK(fs::exists(t.path / "1.vif"));  // Go writes one when missing, and so does kelp
  // The bitrot copy has one extra trailing byte past its last indexed needle:
  // Go loads it read-only; kelp cuts the byte (never acknowledged) and stays writable.
  testing::TempDir b;
  fs::copy_file(kelp::testing::FixturePath("weed__storage__test_files__bitrot_volume.dat"), b.path / "1.dat");
  fs::copy_file(kelp::testing::FixturePath("weed__storage__test_files__bitrot_volume.idx"), b.path / "1.idx");
  const auto rot_size = fs::file_size(b.path / "1.dat");
  auto rot = Volume::Load(Names(b.path), 4);
  REQUIRE(rot.ok());
  CHECK_FALSE(rot.value()->read_only());
  CHECK(rot.value()->tail_repair().truncated_to == rot_size);
  CHECK(fs::file_size(b.path / "1.dat") == rot_size - 1);
}

TEST_CASE("an empty volume loads; a .dat without its .idx does not") {
  testing::TempDir t;
  fs::copy_file(kelp::testing::FixturePath("weed__storage__test_files__empty_volume.dat"), t.path / "1.dat");
  fs::copy_file(kelp::testing::FixturePath("weed__storage__test_files__empty_volume.idx"), t.path / "1.idx");
  auto v = Volume::Load(Names(t.path), 4);
  REQUIRE(v.ok());
  CHECK_FALSE(v.value()->read_only());
  testing::TempDir u;
  fs::copy_file(kelp::testing::FixturePath("weed__storage__test_files__healthy_volume.dat"), u.path / "1.dat");
  CHECK(Volume::Load(Names(u.path), 4).status().code() == Code::kNotFound);
}

TEST_CASE("a volume written with the other offset width is refused, not misread") {
  testing::TempDir t;
  {
    auto v = Volume::Create(Names(t.path), SuperBlock{}, 5);
    REQUIRE(v.ok());
    REQUIRE(Put(*v.value(), 1, 1, "five-byte offsets").ok());
  }
  auto wrong = Volume::Load(Names(t.path), 4);
  CHECK(wrong.status().code() == Code::kInvalidArgument);
  CHECK(wrong.status().message().find("BytesOffset mismatch") != std::string::npos);
  auto right = Volume::Load(Names(t.path), 5);
  REQUIRE(right.ok());
  CHECK(right.value()->Lookup(1).has_value());
}

TEST_CASE("a reload rebuilds the index the writes built, for keys written in any order, across merges") {
  // "scrambled": most entries are out of key order (a side sorted by merging
  // many runs, with puts); "ascending": each key's overwrites and deletes
  // right after its first write (all on the spine); "late deletes": the
  // deletes come after all the writes (a side of deletes only, one run);
  // "late deletes and overwrites": a side with puts, counted by a merge.
  for (const std::string order : {"scrambled", "ascending", "late deletes", "late deletes and overwrites"}) {
  CAPTURE(order);
  const bool scrambled = order == "scrambled";
  const bool late = order.starts_with("late");
  testing::TempDir t;
  std::map<NeedleId, std::optional<IndexValue>> live;  // as the running volume answers
  SegmentCounters before;
  {
    auto v = Volume::Create(Names(t.path, 3), SuperBlock{}, 5);
    REQUIRE(v.ok());
    Volume& vol = *v.value();
    // Keys in a scrambled order, some written twice, some deleted, some
    // deleted and written again, and needle 0: enough of them that the
    // 1024-slot delta is merged into the base several times.
    uint64_t x = 12345;
    std::vector<NeedleId> keys{0};
    for (int i = 0; i < 12000; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      // scrambled: below 2^14, many repeat; late: even keys, so odd ones come later below the top
      keys.push_back(scrambled ? NeedleId(x >> 50) : late ? NeedleId(2 * (i + 1)) : NeedleId(i + 1));
    }
    // Every reader switches to a merged segment at once (the server's loop
    // announces it and the workers acknowledge).
    const auto switch_readers = [&] {
      if (auto r = vol.TakeSegmentReplacement()) {
        close(r->fd);
        vol.FinishHandover(r->generation);
      }
    };
    const uint64_t first_generation = vol.DupSegmentGeneration();
    for (size_t i = 0; i < keys.size(); ++i) {
      switch_readers();
      const NeedleId k = keys[i];
      const auto put = Put(vol, k, 7, "v" + std::to_string(i));
      INFO(put.status().message());
      REQUIRE(put.ok());
      if (late) continue;
      if (i % 5 == 0) REQUIRE(vol.Delete(k, 7).ok());
      if (i % 15 == 0) REQUIRE(Put(vol, k, 7, "again" + std::to_string(i)).ok());
    }
    if (late) {
      for (size_t i = 0; i < keys.size(); i += 5) {
        switch_readers();
        REQUIRE(vol.Delete(keys[i], 7).ok());
      }
      if (order == "late deletes and overwrites")
        for (size_t i = 0; i < keys.size(); i += 15) {
          switch_readers();
          REQUIRE(Put(vol, keys[i], 7, "again" + std::to_string(i)).ok());
          if (i % 45 == 0 && i > 0) REQUIRE(Put(vol, keys[i] - 1, 7, "new below the top").ok());
        }
    }
    CHECK(vol.DupSegmentGeneration() > first_generation + 2);  // merged more than twice
    CHECK(vol.Delete(424242424242ull, 7).value() == 0u);  // never written: no entry
    for (NeedleId k : keys) {
      live[k] = vol.Lookup(k);
      if (k > 0) live[k - 1] = vol.Lookup(k - 1);
    }
    live[424242424242ull] = vol.Lookup(424242424242ull);
    before = vol.counters();
  }
  auto again = Volume::Load(Names(t.path, 3), 5);
  REQUIRE(again.ok());
  Volume& vol = *again.value();
  CHECK(vol.load_warning().empty());
  for (const auto& [k, want] : live) {
    CAPTURE(k);
    const auto got = vol.Lookup(k);
    REQUIRE(got.has_value() == want.has_value());
    if (!want) continue;
    CHECK(got->offset_units == want->offset_units);
    CHECK(got->size == want->size);
    CHECK(got->deleted == want->deleted);
  }
  const SegmentCounters after = vol.counters();
  CHECK(after.file_count == before.file_count);
  CHECK(after.deleted_count == before.deleted_count);
  CHECK(after.deleted_bytes == before.deleted_bytes);
  CHECK(after.content_size == before.content_size);
  CHECK(after.max_file_key == before.max_file_key);
  CHECK_FALSE(vol.Lookup(1ull << 21).has_value());
  }
}

TEST_CASE("an ascending .idx with a delete before a key's first put loads every key") {
  testing::TempDir t;
  const int width = 5;
  {
    auto v = Volume::Create(Names(t.path, 4), SuperBlock{}, width);
    REQUIRE(v.ok());
    REQUIRE(Put(*v.value(), 3, 7, "three").ok());
    REQUIRE(Put(*v.value(), 5, 7, "five").ok());
    REQUIRE(v.value()->Delete(5, 7).ok());
    REQUIRE(Put(*v.value(), 5, 7, "five again").ok());
    REQUIRE(Put(*v.value(), 8, 7, "eight").ok());
  }
  // Drop the first entry of key 5: its run now starts with the delete (as an
  // .idx holds when a delete reached a volume before the needle it deletes).
  const fs::path idx = t.path / "4.idx";
  std::string bytes;
  {
    std::ifstream in(idx, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t row = size_t(IdxEntrySize(width));
  REQUIRE(bytes.size() == 5 * row);
  bytes.erase(row, row);
  std::ofstream(idx, std::ios::binary | std::ios::trunc) << bytes;
  auto v = Volume::Load(Names(t.path, 4), width);
  REQUIRE(v.ok());
  for (NeedleId k : {3, 5, 8}) {
    CAPTURE(k);
    const auto got = v.value()->Lookup(k);
    REQUIRE(got.has_value());
    CHECK_FALSE(got->deleted);
  }
  CHECK_FALSE(v.value()->Lookup(4).has_value());
}
