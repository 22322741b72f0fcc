// The storage engine under injected faults (storage/fault_env.h) and crashes.
// For every fault at every step: the caller gets an error, no acknowledged
// write is lost, the volume stays consistent, and it reloads. When
// $KELP_FAULT_OUT is set, each resulting directory is kept there with a
// manifest of what must (and must not) be readable, and
// tests/system/test_storage_faults.py has the Go server load every one.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/bytes.h"
#include "common/idx_entry.h"
#include "common/types.h"
#include "storage/disk_writer.h"
#include "storage/fault_env.h"
#include "storage/volume.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
namespace fs = std::filesystem;

namespace {

constexpr int kWidth = kBuildOffsetBytes;
constexpr Cookie kCookie = 0x1234abcd;

VolumeFileNames Names(const fs::path& dir, VolumeId id = 7) {
  VolumeFileNames n;
  n.dir = n.idx_dir = dir.string();
  n.id = id;
  return n;
}

std::string Content(NeedleId id) {
  std::string s;
  for (int i = 0; i < int(id % 7) + 3; ++i) s += "needle " + std::to_string(id) + " body; ";
  return s;
}

std::string Record(NeedleId id) {
  static std::map<NeedleId, std::string> keep;  // views must outlive encoding
  keep[id] = Content(id);
  NeedleFields f;
  f.id = id;
  f.cookie = kCookie;
  f.data = keep[id];
  f.name = "f.txt";
  SetContentFlags(&f);
  return EncodeNeedleV3(f);
}

Status Put(Volume& v, NeedleId id, bool fsync = false) {
  std::string rec = Record(id);
  Mutation m;
  m.record = reinterpret_cast<uint8_t*>(rec.data());
  m.length = rec.size();
  m.fsync = fsync;
  if (Status s = ValidateRecord(m.record, m.length); !s.ok()) return s;
  Mutation* one = &m;
  v.Apply(&one, 1);
  return m.status;
}

// What a directory must show after the fault: these live, those absent.
struct Expect {
  std::set<NeedleId> live, absent;
};

std::string Fid(VolumeId vid, NeedleId id) {
  char b[64];
  std::snprintf(b, sizeof b, "%u,%llx%08x", vid, static_cast<unsigned long long>(id), kCookie);
  return b;
}

// Reloads with the real file system and checks the expectation; keeps the
// directory for the Go check when asked to.
void Verify(const fs::path& dir, const Expect& e, const std::string& name, bool writable = true) {
  auto v = Volume::Load(Names(dir), kWidth);
  REQUIRE(v.ok());
  CHECK(v.value()->read_only() == !writable);
  if (writable) CHECK(v.value()->load_warning().empty());
  for (NeedleId id : e.live) {
    CAPTURE(id);
    std::string rec;
    ParsedNeedle n;
    REQUIRE(v.value()->ReadNeedle(id, &rec, &n).ok());
    CHECK(std::string(n.data) == Content(id));
  }
  for (NeedleId id : e.absent) {
    CAPTURE(id);
    std::string rec;
    ParsedNeedle n;
    CHECK(v.value()->ReadNeedle(id, &rec, &n).code() == Code::kNotFound);
  }
  if (writable) CHECK(Put(*v.value(), 999).ok());  // and it takes writes again
  v.value().reset();
  const char* out = std::getenv("KELP_FAULT_OUT");
  if (!out) return;
  const fs::path to = fs::path(out) / name;
  fs::remove_all(to);
  fs::create_directories(to);
  for (const auto& f : fs::directory_iterator(dir)) fs::copy_file(f.path(), to / f.path().filename());
  std::ofstream m(to / "expect.txt");
  for (NeedleId id : e.live) m << "live " << Fid(7, id) << " " << Content(id) << "\n";
  if (writable) m << "live " << Fid(7, 999) << " " << Content(999) << "\n";
  for (NeedleId id : e.absent) m << "absent " << Fid(7, id) << "\n";
}

FaultRule Rule(FsOp op, const std::string& part, FaultRule::Action action, int error = EIO, int skip = 0) {
  FaultRule r;
  r.op = op;
  r.path_part = part;
  r.action = action;
  r.error = error;
  r.skip = skip;
  return r;
}

}  // namespace

TEST_CASE("fault matrix: a failed append or delete at each step is refused, and loses nothing acknowledged") {
  struct Step {
    const char* name;
    FsOp op;
    const char* file;
    bool is_delete;
    bool fsync;
  };
  const Step steps[] = {
      {"append-dat", FsOp::kPwrite, ".dat", false, false},
      {"append-idx", FsOp::kPwrite, ".idx", false, false},
      {"append-sync-dat", FsOp::kFdatasync, ".dat", false, true},
      {"append-sync-idx", FsOp::kFdatasync, ".idx", false, true},
      {"delete-dat", FsOp::kPwrite, ".dat", true, false},
      {"delete-idx", FsOp::kPwrite, ".idx", true, false},
  };
  struct Fault {
    const char* name;
    FaultRule::Action action;
    int error;
  };
  const Fault faults[] = {
      {"eio", FaultRule::Action::kFail, EIO},
      {"enospc", FaultRule::Action::kFail, ENOSPC},
      {"short", FaultRule::Action::kShortWrite, ENOSPC},
  };
  for (const Step& step : steps) {
    for (const Fault& fault : faults) {
      if (fault.action == FaultRule::Action::kShortWrite && step.op != FsOp::kPwrite) continue;
      const std::string name = std::string(step.name) + "-" + fault.name;
      CAPTURE(name);
      testing::TempDir t;
      FaultEnv env;
      Expect e;
      {
        auto v = Volume::Create(Names(t.path), SuperBlock{}, kWidth, &env);
        REQUIRE(v.ok());
        for (NeedleId id = 1; id <= 5; ++id) REQUIRE(Put(*v.value(), id).ok());
        const uint64_t dat_before = v.value()->dat_size();
        env.Add(Rule(step.op, step.file, fault.action, fault.error));
        Status s;
        if (step.is_delete) s = v.value()->Delete(3, kCookie).status();
        else s = Put(*v.value(), 6, step.fsync);
        CHECK(env.fired() >= 1);
        REQUIRE_FALSE(s.ok());
        if (step.op == FsOp::kFdatasync) {
          // The record was written and published, but its durability is unknown:
          // the caller hears so, and the volume takes no more writes.
          CHECK(s.code() == Code::kIOError);
          CHECK(v.value()->read_only());
          CHECK(v.value()->load_warning().find("sync failed") != std::string::npos);
          env.Clear();
          CHECK(Put(*v.value(), 7).code() == Code::kReadOnly);
          CHECK(v.value()->Sync().code() == Code::kIOError);  // never reported good after a failure
          e.live = {1, 2, 3, 4, 5, 6};  // on a live system the page cache still has it
          e.absent = {7};
        } else {
          CHECK((s.code() == Code::kIOError || s.code() == Code::kFull));
          if (fault.error == ENOSPC) CHECK(s.code() == Code::kFull);
          // Nothing of the failed mutation stays: the next load would have had to cut it.
          CHECK(v.value()->dat_size() == dat_before);
          CHECK_FALSE(v.value()->read_only());
          env.Clear();
          REQUIRE(Put(*v.value(), 8).ok());  // the volume goes on
          e.live = {1, 2, 3, 4, 5, 8};
          if (!step.is_delete) e.absent = {6};
        }
        CHECK(fs::file_size(t.path / "7.dat") == v.value()->dat_size());
      }
      Verify(t.path, e, "fault-" + name);
    }
  }
}

TEST_CASE("fault matrix: load and mount refuse a volume they cannot read, and leave its files alone") {
  testing::TempDir t;
  {
    auto v = Volume::Create(Names(t.path), SuperBlock{}, kWidth);
    REQUIRE(v.ok());
    for (NeedleId id = 1; id <= 3; ++id) REQUIRE(Put(*v.value(), id).ok());
  }
  const auto dat_size = fs::file_size(t.path / "7.dat");
  const auto idx_size = fs::file_size(t.path / "7.idx");
  const std::pair<FsOp, const char*> steps[] = {
      {FsOp::kOpen, ".dat"}, {FsOp::kOpen, ".idx"}, {FsOp::kPread, ".idx"}, {FsOp::kPread, ".dat"}};
  for (auto [op, file] : steps) {
    CAPTURE(file);
    CAPTURE(int(op));
    FaultEnv env;
    env.Add(Rule(op, file, FaultRule::Action::kFail, EIO));
    auto v = Volume::Load(Names(t.path), kWidth, &env);
    CHECK(env.fired() == 1);
    CHECK_FALSE(v.ok());
    CHECK(fs::file_size(t.path / "7.dat") == dat_size);
    CHECK(fs::file_size(t.path / "7.idx") == idx_size);
  }
  // A disk that turned read-only: the volume is served read-only, as Go does.
  FaultEnv env;
  env.Add(Rule(FsOp::kOpen, ".dat", FaultRule::Action::kFail, EROFS));
  auto ro = Volume::Load(Names(t.path), kWidth, &env);
  REQUIRE(ro.ok());
  CHECK(ro.value()->read_only());
  CHECK(Put(*ro.value(), 4).code() == Code::kReadOnly);
  ro.value().reset();
  Verify(t.path, Expect{{1, 2, 3}, {4}}, "fault-load");
}

TEST_CASE("fault matrix: a failed sync at unmount is reported and makes the volume read-only") {
  testing::TempDir t;
  FaultEnv env;
  auto v = Volume::Create(Names(t.path), SuperBlock{}, kWidth, &env);
  REQUIRE(v.ok());
  REQUIRE(Put(*v.value(), 1).ok());
  env.Add(Rule(FsOp::kFdatasync, ".idx", FaultRule::Action::kFail, EIO));
  CHECK(v.value()->Sync().code() == Code::kIOError);
  CHECK(v.value()->read_only());
  env.Clear();
  CHECK(v.value()->Sync().code() == Code::kIOError);
  v.value().reset();
  Verify(t.path, Expect{{1}, {}}, "fault-unmount");
}

TEST_CASE("fault matrix: a .vif that cannot be replaced keeps the old one and fails the call") {
  testing::TempDir t;
  FaultEnv env;
  auto v = Volume::Create(Names(t.path), SuperBlock{}, kWidth, &env);
  REQUIRE(v.ok());
  const std::string before = [&] {
    std::ifstream in(t.path / "7.vif");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  for (FsOp op : {FsOp::kRename, FsOp::kFdatasync, FsOp::kSyncDir}) {
    CAPTURE(int(op));
    env.Clear();
    env.Add(Rule(op, "", FaultRule::Action::kFail, EIO));
    CHECK_FALSE(v.value()->SetReadOnly(true, true).ok());
  }
  env.Clear();
  std::ifstream in(t.path / "7.vif");
  const std::string after(std::istreambuf_iterator<char>(in), {});
  if (after != before) CHECK(after.find("\"readOnly\": true") != std::string::npos);  // only the syncdir case renamed it
  CHECK_FALSE(fs::exists(t.path / "7.vif.tmp"));
}

TEST_CASE("group commit: fsync=true writes in one batch share one sync of each file") {
  testing::TempDir t;
  FaultEnv env;
  auto v = Volume::Create(Names(t.path), SuperBlock{}, kWidth, &env);
  REQUIRE(v.ok());
  FaultRule syncs = Rule(FsOp::kFdatasync, "", FaultRule::Action::kStall);  // 0 ms: counts
  syncs.times = -1;
  FaultRule idx_writes = Rule(FsOp::kPwrite, ".idx", FaultRule::Action::kStall);
  idx_writes.times = -1;
  env.Add(syncs);
  env.Add(idx_writes);
  std::vector<std::string> recs;
  std::vector<Mutation> ms(16);
  std::vector<Mutation*> batch;
  for (int i = 0; i < 16; ++i) recs.push_back(Record(NeedleId(100 + i)));
  for (int i = 0; i < 16; ++i) {
    ms[i].record = reinterpret_cast<uint8_t*>(recs[i].data());
    ms[i].length = recs[i].size();
    ms[i].fsync = true;
    batch.push_back(&ms[i]);
  }
  v.value()->Apply(batch.data(), batch.size());
  for (auto& m : ms) CHECK(m.status.ok());
  CHECK(env.fired() == 3);  // .dat sync, .idx sync, one .idx write
}
