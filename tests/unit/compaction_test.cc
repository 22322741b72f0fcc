// Vacuum on disk: the copy, the carry-over of writes made during it, the
// commit swap with its marker, the load-time reconcile, and failures at each
// step of the commit (storage/compaction.h).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/idx_entry.h"
#include "storage/compaction.h"
#include "storage/fault_env.h"
#include "storage/volume.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
using namespace kelp::testing;

namespace {

constexpr int kOffsetBytes = KELP_OFFSET_BYTES;
constexpr Cookie kCookie = 0x0badcafe;

struct VacuumRig {
  TempDir dir;
  VolumeFileNames names;
  std::unique_ptr<Volume> volume;
  std::map<NeedleId, std::string> live;  // what must read back

  explicit VacuumRig(Env* env = Env::Default()) {
    names.dir = names.idx_dir = dir.path.string();
    names.id = 7;
    auto v = Volume::Create(names, SuperBlock{}, kOffsetBytes, env);
    REQUIRE(v.ok());
    volume = std::move(v.value());
  }
  void Put(NeedleId id, const std::string& data) {
    std::string rec = NeedleRecord(id, kCookie, data);
    REQUIRE(volume->Append(reinterpret_cast<uint8_t*>(rec.data()), rec.size()).ok());
    live[id] = data;
  }
  void Remove(NeedleId id) {
    REQUIRE(volume->Delete(id, kCookie).ok());
    live.erase(id);
  }
  // Every live needle reads back with its data, every other one is gone.
  void CheckReads(const Volume& v, NeedleId up_to) const {
    for (NeedleId id = 1; id <= up_to; ++id) {
      CAPTURE(id);
      std::string record;
      ParsedNeedle n;
      const Status s = v.ReadNeedle(id, &record, &n);
      auto it = live.find(id);
      if (it == live.end()) {
        CHECK_FALSE(s.ok());
      } else {
        REQUIRE(s.ok());
        CHECK(std::string(n.data) == it->second);
      }
    }
  }
  bool Leftovers() const {
    return FileExists(names.Cpd()) || FileExists(names.Cpx()) || FileExists(names.Cpc());
  }
};

std::string ReadWholeFileOrEmpty(const std::string& path) {
  std::string out;
  if (!ReadWholeFile(path, &out)) out.clear();
  return out;
}

std::string Data(NeedleId id, size_t n) { return std::string(n, char('a' + id % 26)); }

uint16_t RevisionOf(const std::string& dat) {
  const std::string head = ReadWholeFileOrEmpty(dat);
  return head.size() >= 8 ? GetU16(reinterpret_cast<const uint8_t*>(head.data()) + 4) : 0xffff;
}

}  // namespace

TEST_CASE("compaction: the copy holds the live needles in id order behind a bumped revision, and the commit swaps it in") {
  VacuumRig rig;
  for (NeedleId id : {9, 3, 5, 1, 7}) rig.Put(id, Data(id, 100 * id));
  rig.Put(5, "overwritten");
  rig.Remove(9);
  const uint64_t before = rig.volume->dat_size();
  CHECK(rig.volume->GarbageRatio() > 0);

  const CompactionStart start = rig.volume->BeginCopy();
  auto copied = CopyLiveNeedles(rig.names, kOffsetBytes, start, CompactionOptions{}, Env::Default());
  REQUIRE(copied.ok());
  CHECK(copied.value().copied == 4);
  CHECK(RevisionOf(rig.names.Cpd()) == 1);
  // .cpx: one row per live needle, ascending ids and offsets, ending at the end of .cpd.
  const std::string cpx = ReadWholeFileOrEmpty(rig.names.Cpx());
  const int entry = IdxEntrySize(kOffsetBytes);
  REQUIRE(cpx.size() == 4 * size_t(entry));
  NeedleId last = 0;
  uint64_t last_offset = 0;
  for (size_t at = 0; at < cpx.size(); at += size_t(entry)) {
    const IdxEntry e = DecodeIdxEntry(reinterpret_cast<const uint8_t*>(cpx.data()) + at, kOffsetBytes);
    CHECK(e.id > last);
    CHECK(e.offset_units > last_offset);
    last = e.id;
    last_offset = e.offset_units;
  }
  CHECK(last == 7);

  bool offline = true;
  auto next = rig.volume->CommitCompaction(&offline);
  REQUIRE(next.ok());
  CHECK_FALSE(offline);
  CHECK(rig.volume->retired());
  CHECK_FALSE(rig.Leftovers());
  CHECK(next.value()->super_block().compaction_revision == 1);
  CHECK(next.value()->dat_size() < before);
  CHECK(next.value()->GarbageRatio() == 0);
  CHECK(next.value()->load_warning().empty());
  rig.CheckReads(*next.value(), 10);
  // The result is an ordinary volume: it takes writes and loads again.
  rig.volume = std::move(next.value());
  rig.Put(11, "after the commit");
  rig.volume.reset();
  auto reloaded = Volume::Load(rig.names, kOffsetBytes);
  REQUIRE(reloaded.ok());
  CHECK(reloaded.value()->load_warning().empty());
  rig.CheckReads(*reloaded.value(), 12);
}

TEST_CASE("compaction: writes, overwrites and deletes made during the copy are carried over, deletes as fake tombstones") {
  VacuumRig rig;
  for (NeedleId id = 1; id <= 8; ++id) rig.Put(id, Data(id, 300));
  rig.Remove(2);
  const CompactionStart start = rig.volume->BeginCopy();
  REQUIRE(CopyLiveNeedles(rig.names, kOffsetBytes, start, CompactionOptions{}, Env::Default()).ok());
  // Meanwhile: a new needle, an overwrite, deletes of an old and of a new needle,
  // and a needle written twice.
  rig.Put(20, "new during the copy");
  rig.Put(3, "overwritten during the copy");
  rig.Remove(4);
  rig.Put(21, "short-lived");
  rig.Remove(21);
  rig.Put(22, "first");
  rig.Put(22, "second");
  rig.Remove(8);  // the last mutation is a delete: the volume must stay writable

  bool offline = true;
  auto next = rig.volume->CommitCompaction(&offline);
  REQUIRE(next.ok());
  CHECK(next.value()->load_warning().empty());
  CHECK_FALSE(next.value()->read_only());
  rig.CheckReads(*next.value(), 25);
  // The .dat ends with the fake tombstone of needle 8, at the offset its row names.
  const std::string dat = ReadWholeFileOrEmpty(rig.names.Dat());
  REQUIRE(dat.size() >= 32);
  const uint8_t* tail = reinterpret_cast<const uint8_t*>(dat.data()) + dat.size() - 32;
  CHECK(GetU32(tail) == 0x12345678u);
  CHECK(GetU64(tail + 4) == 8);
  const std::string idx = ReadWholeFileOrEmpty(rig.names.Idx());
  const int entry = IdxEntrySize(kOffsetBytes);
  const IdxEntry last = DecodeIdxEntry(reinterpret_cast<const uint8_t*>(idx.data()) + idx.size() - size_t(entry), kOffsetBytes);
  CHECK(last.id == 8);
  CHECK(last.ByteOffset() == dat.size() - 32);
  CHECK(last.size < 0);
  rig.volume = std::move(next.value());
  rig.Put(30, "writable after the commit");
  rig.CheckReads(*rig.volume, 31);
}

TEST_CASE("compaction: a commit with no copy refuses as Go does and changes nothing") {
  VacuumRig rig;
  rig.Put(1, "one");
  bool offline = true;
  auto r = rig.volume->CommitCompaction(&offline);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("for index file is invalid") != std::string::npos);
  CHECK_FALSE(offline);
  CHECK_FALSE(rig.volume->retired());
  CHECK_FALSE(rig.Leftovers());
  rig.CheckReads(*rig.volume, 2);

  VacuumRig empty;
  auto e = empty.volume->CommitCompaction(&offline);
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == "volume 7 compact swap aborted: missing .cpd/.cpx");
  CHECK_FALSE(empty.Leftovers());  // no marker left behind, unlike Go
}

TEST_CASE("compaction: cleanup removes the copy, and refuses while a commit marker exists") {
  VacuumRig rig;
  rig.Put(1, "one");
  REQUIRE(CopyLiveNeedles(rig.names, kOffsetBytes, rig.volume->BeginCopy(), CompactionOptions{}, Env::Default()).ok());
  REQUIRE(rig.Leftovers());
  REQUIRE(RemoveCompactionFiles(rig.names, Env::Default()).ok());
  CHECK_FALSE(rig.Leftovers());
  CHECK(RemoveCompactionFiles(rig.names, Env::Default()).ok());  // nothing there: not an error
  { std::ofstream(rig.names.Cpc()).put('\0'); }
  const Status refused = RemoveCompactionFiles(rig.names, Env::Default());
  CHECK(refused.message() == "volume 7: refusing cleanup while commit marker present");
  CHECK(FileExists(rig.names.Cpc()));
}

TEST_CASE("compaction: a load rolls an interrupted commit forward with the marker, and back without it") {
  for (const bool marker : {false, true}) {
    CAPTURE(marker);
    VacuumRig rig;
    for (NeedleId id = 1; id <= 6; ++id) rig.Put(id, Data(id, 500));
    rig.Remove(1);
    rig.Remove(2);
    const auto live_before = rig.live;
    REQUIRE(CopyLiveNeedles(rig.names, kOffsetBytes, rig.volume->BeginCopy(), CompactionOptions{}, Env::Default()).ok());
    const uint64_t copy_size = std::filesystem::file_size(rig.names.Cpd());
    const uint64_t old_size = std::filesystem::file_size(rig.names.Dat());
    rig.volume.reset();
    if (marker) { std::ofstream(rig.names.Cpc()).put('\0'); }
    auto done = ReconcileCompaction(rig.names, Env::Default());
    REQUIRE(done.ok());
    CHECK(done.value());
    CHECK_FALSE(rig.Leftovers());
    CHECK(std::filesystem::file_size(rig.names.Dat()) == (marker ? copy_size : old_size));
    CHECK(RevisionOf(rig.names.Dat()) == (marker ? 1 : 0));
    auto v = Volume::Load(rig.names, kOffsetBytes);
    REQUIRE(v.ok());
    CHECK(v.value()->load_warning().empty());
    rig.live = live_before;
    rig.CheckReads(*v.value(), 7);
    auto again = ReconcileCompaction(rig.names, Env::Default());
    REQUIRE(again.ok());
    CHECK_FALSE(again.value());
  }
}

TEST_CASE("compaction: a commit that fails before the marker leaves the volume serving; after it, the swap is finished") {
  struct Step {
    FsOp op;
    const char* path;
    bool committed;  // the failure comes after the marker exists
    int skip = 0;
  };
  for (const Step step : {Step{FsOp::kPwrite, ".cpd", false}, Step{FsOp::kFdatasync, ".cpx", false}, Step{FsOp::kOpen, ".cpc", false},
                          Step{FsOp::kRename, ".dat", true}, Step{FsOp::kRename, ".idx", true},
                          Step{FsOp::kSyncDir, "", false}, Step{FsOp::kSyncDir, "", true, 1}}) {
    CAPTURE(int(step.op));
    CAPTURE(step.path);
    FaultEnv env;
    VacuumRig rig(&env);
    for (NeedleId id = 1; id <= 5; ++id) rig.Put(id, Data(id, 200));
    rig.Remove(5);
    REQUIRE(CopyLiveNeedles(rig.names, kOffsetBytes, rig.volume->BeginCopy(), CompactionOptions{}, &env).ok());
    rig.Put(9, "carried over");  // so the commit has a tail to write
    FaultRule rule;
    rule.op = step.op;
    rule.path_part = step.path;
    rule.skip = step.skip;
    env.Add(rule);
    bool offline = false;
    auto r = rig.volume->CommitCompaction(&offline);
    env.Clear();
    CHECK(env.fired() == 1);  // the fault was met
    if (!step.committed) {
      REQUIRE_FALSE(r.ok());
      CHECK_FALSE(offline);
      CHECK_FALSE(rig.volume->retired());
      CHECK_FALSE(rig.Leftovers());  // the spent copy is removed, and no marker was left
      rig.CheckReads(*rig.volume, 10);  // the old files still serve
      rig.Put(10, "still writable");
      rig.volume.reset();
      auto v = Volume::Load(rig.names, kOffsetBytes);
      REQUIRE(v.ok());
      CHECK(v.value()->super_block().compaction_revision == 0);
      rig.CheckReads(*v.value(), 11);
    } else {
      // The copy is durable once the marker exists: the swap is finished in process.
      REQUIRE(r.ok());
      CHECK_FALSE(rig.Leftovers());
      CHECK(r.value()->super_block().compaction_revision == 1);
      rig.CheckReads(*r.value(), 10);
    }
  }
}

TEST_CASE("compaction: needles past their TTL are left behind, and unreadable needles are dropped with the rest kept") {
  VacuumRig rig;
  rig.Put(1, "kept");
  NeedleFields f;
  f.id = 2;
  f.cookie = kCookie;
  f.data = "expired";
  f.last_modified = 1000;  // long ago
  f.ttl = Ttl{1, 1};       // a TTL flag on a volume without one: Go drops it too
  SetContentFlags(&f);
  std::string rec = EncodeNeedleV3(f);
  REQUIRE(rig.volume->Append(reinterpret_cast<uint8_t*>(rec.data()), rec.size()).ok());
  rig.Put(3, "damaged on disk");
  rig.Put(4, "kept too");
  // Flip a data byte of needle 3 in the .dat: its CRC no longer matches.
  const auto at = rig.volume->Lookup(3);
  REQUIRE(at.has_value());
  {
    std::fstream f3(rig.names.Dat(), std::ios::in | std::ios::out | std::ios::binary);
    f3.seekp(std::streamoff(at->offset_units * 8 + kNeedleHeaderSize + 5));
    f3.put('#');
  }
  auto copied = CopyLiveNeedles(rig.names, kOffsetBytes, rig.volume->BeginCopy(), CompactionOptions{}, Env::Default());
  REQUIRE(copied.ok());
  CHECK(copied.value().copied == 2);
  CHECK(copied.value().expired == 1);
  CHECK(copied.value().dropped == 1);
}

TEST_CASE("fake tombstones: Go's bytes for version 3 and version 2") {
  const std::string v3 = FakeTombstone(0x0102030405060708ull, 3, 0x1122334455667788ull);
  REQUIRE(v3.size() == 32);
  const std::string want3 = std::string("\x12\x34\x56\x78\x01\x02\x03\x04\x05\x06\x07\x08", 12) + std::string(8, '\0') +
                            std::string("\x11\x22\x33\x44\x55\x66\x77\x88", 8) + std::string(4, '\0');
  CHECK(v3 == want3);
  const std::string v2 = FakeTombstone(0x0102030405060708ull, 2, 0);
  REQUIRE(v2.size() == 24);
  const std::string want2 = std::string("\x12\x34\x56\x78\x01\x02\x03\x04\x05\x06\x07\x08", 12) + std::string(8, '\0') +
                            std::string("\x01\x02\x03\x04", 4);
  CHECK(v2 == want2);
}

TEST_CASE("compaction: a marker with the compacted data but not its index rolls back instead of pairing the copy with the old index") {
  VacuumRig rig;
  for (NeedleId id = 1; id <= 4; ++id) rig.Put(id, Data(id, 300));
  rig.Remove(1);
  const auto live = rig.live;
  REQUIRE(CopyLiveNeedles(rig.names, kOffsetBytes, rig.volume->BeginCopy(), CompactionOptions{}, Env::Default()).ok());
  const uint64_t old_size = std::filesystem::file_size(rig.names.Dat());
  rig.volume.reset();
  std::filesystem::remove(rig.names.Cpx());
  { std::ofstream(rig.names.Cpc()).put('\0'); }
  auto r = ReconcileCompaction(rig.names, Env::Default());
  REQUIRE(r.ok());
  CHECK_FALSE(rig.Leftovers());
  CHECK(std::filesystem::file_size(rig.names.Dat()) == old_size);
  auto v = Volume::Load(rig.names, kOffsetBytes);
  REQUIRE(v.ok());
  CHECK(v.value()->load_warning().empty());
  rig.live = live;
  rig.CheckReads(*v.value(), 5);
}

TEST_CASE("compaction: an abandoned copy leaves nothing a commit could use, and a retired volume does not commit") {
  VacuumRig rig;
  rig.Put(1, "one");
  REQUIRE(CopyLiveNeedles(rig.names, kOffsetBytes, rig.volume->BeginCopy(), CompactionOptions{}, Env::Default()).ok());
  rig.volume->AbandonCopy();
  CHECK_FALSE(rig.Leftovers());
  bool offline = false;
  CHECK_FALSE(rig.volume->CommitCompaction(&offline).ok());
  CHECK_FALSE(rig.Leftovers());
  rig.CheckReads(*rig.volume, 2);
  REQUIRE(CopyLiveNeedles(rig.names, kOffsetBytes, rig.volume->BeginCopy(), CompactionOptions{}, Env::Default()).ok());
  rig.volume->Retire();
  auto r = rig.volume->CommitCompaction(&offline);
  CHECK(r.status().code() == Code::kNotFound);
  CHECK(FileExists(rig.names.Cpd()));  // untouched: whoever owns the volume now decides
}

// The job worker is not trusted: what it claims and what it wrote are checked
// against the volume before a commit may use them.
TEST_CASE("compaction: the check of a job's copy accepts a true copy and refuses every kind of lie") {
  VacuumRig rig;
  for (NeedleId id = 1; id <= 6; ++id) rig.Put(id, Data(id, 50 * id));
  rig.Remove(2);
  const CompactionStart start = rig.volume->BeginCopy();
  auto copied = CopyLiveNeedles(rig.names, kOffsetBytes, start, CompactionOptions{}, Env::Default());
  REQUIRE(copied.ok());
  const CompactionOutcome truth = copied.value();
  REQUIRE(truth.copied == 5);
  CHECK(CheckCompactedCopy(rig.names, kOffsetBytes, start, truth, Env::Default()).ok());

  SUBCASE("counts that do not add up to the live needles") {
    CompactionOutcome lie = truth;
    lie.copied = 4;
    lie.expired = 0;
    CHECK(CheckCompactedCopy(rig.names, kOffsetBytes, start, lie, Env::Default()).code() == Code::kCorruption);
    lie = truth;
    lie.dropped = 1;
    CHECK(CheckCompactedCopy(rig.names, kOffsetBytes, start, lie, Env::Default()).code() == Code::kCorruption);
  }
  SUBCASE("a size that is not the file's") {
    CompactionOutcome lie = truth;
    lie.cpd_size += 8;
    CHECK(CheckCompactedCopy(rig.names, kOffsetBytes, start, lie, Env::Default()).code() == Code::kCorruption);
  }
  const std::string cpx = ReadWholeFileOrEmpty(rig.names.Cpx());
  const std::string cpd = ReadWholeFileOrEmpty(rig.names.Cpd());
  auto rewrite = [](const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  };
  SUBCASE("a row naming a deleted needle") {
    std::string bad = cpx;
    // The first row is needle 1: make it needle 2, which was deleted (order still ascending).
    PutU64(reinterpret_cast<uint8_t*>(bad.data()), 2);
    rewrite(rig.names.Cpx(), bad);
    CHECK(CheckCompactedCopy(rig.names, kOffsetBytes, start, truth, Env::Default()).code() == Code::kCorruption);
  }
  SUBCASE("rows out of order") {
    const size_t entry = size_t(IdxEntrySize(kOffsetBytes));
    std::string bad = cpx.substr(entry, entry) + cpx.substr(0, entry) + cpx.substr(2 * entry);
    rewrite(rig.names.Cpx(), bad);
    CHECK(CheckCompactedCopy(rig.names, kOffsetBytes, start, truth, Env::Default()).code() == Code::kCorruption);
  }
  SUBCASE("a record that is not the one its row names") {
    std::string bad = cpd;
    bad[8 + 4 + 7] ^= 0x01;  // the first record's id, low byte
    rewrite(rig.names.Cpd(), bad);
    CHECK(CheckCompactedCopy(rig.names, kOffsetBytes, start, truth, Env::Default()).code() == Code::kCorruption);
  }
  SUBCASE("a superblock without the revision bumped") {
    std::string bad = cpd;
    bad[5] = 0;  // revision 1 -> 0
    rewrite(rig.names.Cpd(), bad);
    CHECK(CheckCompactedCopy(rig.names, kOffsetBytes, start, truth, Env::Default()).code() == Code::kCorruption);
  }
}
