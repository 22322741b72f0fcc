// The supervisor killed at each step of an append and a delete (a forked
// child whose Env ends the process there, as SIGKILL would), then the volume
// loaded again: nothing acknowledged is lost, an unfinished mutation leaves no
// trace, and the volume comes back writable. The directories are kept for the
// Go server as in storage_faults_test.cc.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/types.h"
#include "storage/fault_env.h"
#include "storage/volume.h"
#include "tests/unit/fixtures.h"

using namespace kelp;
namespace fs = std::filesystem;

namespace {

constexpr int kWidth = kBuildOffsetBytes;
constexpr Cookie kCookie = 0x5eed0001;

VolumeFileNames Names(const fs::path& dir) {
  VolumeFileNames n;
  n.dir = n.idx_dir = dir.string();
  n.id = 9;
  return n;
}

std::string Content(NeedleId id) { return "crash test needle " + std::to_string(id) + std::string(size_t(id * 37 % 500), 'c'); }

Mutation PutOf(std::string* rec, NeedleId id, bool fsync) {
  static std::string data;
  data = Content(id);
  NeedleFields f;
  f.id = id;
  f.cookie = kCookie;
  f.data = data;
  SetContentFlags(&f);
  *rec = EncodeNeedleV3(f);
  Mutation m;
  m.record = reinterpret_cast<uint8_t*>(rec->data());
  m.length = rec->size();
  m.fsync = fsync;
  return m;
}

Status Apply(Volume& v, Mutation m) {
  Mutation* one = &m;
  v.Apply(&one, 1);
  return m.status;
}

std::string Fid(NeedleId id) {
  char b[64];
  std::snprintf(b, sizeof b, "9,%llx%08x", static_cast<unsigned long long>(id), kCookie);
  return b;
}

struct CrashPoint {
  const char* name;
  FsOp op;
  const char* file;
  FaultRule::Action action;
  bool fsync;
  bool takes_effect;  // the mutation reached the .idx before the crash
};

// Runs `mutate` in a child that dies at `point`; returns its wait status.
template <typename F>
int CrashChild(const fs::path& dir, const CrashPoint& point, F&& mutate) {
  const pid_t pid = fork();
  if (pid == 0) {
    FaultEnv env;
    auto v = Volume::Load(Names(dir), kWidth, &env);
    if (!v.ok()) _exit(3);
    FaultRule r;
    r.op = point.op;
    r.path_part = point.file;
    r.action = point.action;
    env.Add(r);
    mutate(*v.value());
    _exit(4);  // the crash point was never reached
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

void Keep(const fs::path& dir, const std::string& name, const std::set<NeedleId>& live, const std::set<NeedleId>& absent) {
  const char* out = std::getenv("KELP_FAULT_OUT");
  if (!out) return;
  const fs::path to = fs::path(out) / name;
  fs::remove_all(to);
  fs::create_directories(to);
  for (const auto& f : fs::directory_iterator(dir)) fs::copy_file(f.path(), to / f.path().filename());
  std::ofstream m(to / "expect.txt");
  for (NeedleId id : live) m << "live " << Fid(id) << " " << Content(id) << "\n";
  for (NeedleId id : absent) m << "absent " << Fid(id) << "\n";
}

const CrashPoint kPoints[] = {
    {"before-dat", FsOp::kPwrite, ".dat", FaultRule::Action::kCrash, false, false},
    {"torn-dat", FsOp::kPwrite, ".dat", FaultRule::Action::kTornCrash, false, false},
    {"after-dat", FsOp::kPwrite, ".idx", FaultRule::Action::kCrash, false, false},
    {"torn-idx", FsOp::kPwrite, ".idx", FaultRule::Action::kTornCrash, false, false},
    {"after-idx", FsOp::kFdatasync, ".dat", FaultRule::Action::kCrash, true, true},
};

void Prepare(const fs::path& dir) {
  auto v = Volume::Create(Names(dir), SuperBlock{}, kWidth);
  REQUIRE(v.ok());
  for (NeedleId id = 1; id <= 4; ++id) {
    std::string rec;
    REQUIRE(Apply(*v.value(), PutOf(&rec, id, id == 4)).ok());
  }
}

// Loads the crashed volume and checks what the restart finds.
void CheckAfterCrash(const fs::path& dir, const std::set<NeedleId>& live, const std::set<NeedleId>& absent, bool expect_cut) {
  auto v = Volume::Load(Names(dir), kWidth);
  REQUIRE(v.ok());
  CHECK_FALSE(v.value()->read_only());
  CHECK(v.value()->load_warning().empty());
  const TailRepair& r = v.value()->tail_repair();
  CHECK((r.truncated_to > r.truncated_from || r.idx_bytes_cut > 0) == expect_cut);
  CHECK(r.missing.empty());
  for (NeedleId id : live) {
    CAPTURE(id);
    std::string rec;
    ParsedNeedle n;
    REQUIRE(v.value()->ReadNeedle(id, &rec, &n).ok());
    CHECK(std::string(n.data) == Content(id));
  }
  for (NeedleId id : absent) {
    CAPTURE(id);
    std::string rec;
    ParsedNeedle n;
    CHECK(v.value()->ReadNeedle(id, &rec, &n).code() == Code::kNotFound);
  }
  std::string rec;
  CHECK(Apply(*v.value(), PutOf(&rec, 50, true)).ok());  // writable again
  CHECK(fs::file_size(dir / "9.dat") == v.value()->dat_size());
}

}  // namespace

TEST_CASE("crash during an append, at each step: the volume reloads writable with every acknowledged write") {
  for (const CrashPoint& p : kPoints) {
    CAPTURE(p.name);
    testing::TempDir t;
    Prepare(t.path);
    const int status = CrashChild(t.path, p, [&](Volume& v) {
      std::string rec;
      Apply(v, PutOf(&rec, 5, p.fsync));
    });
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 137);
    std::set<NeedleId> live = {1, 2, 3, 4}, absent;
    (p.takes_effect ? live : absent).insert(5);
    const bool cut = !p.takes_effect && std::string(p.name) != "before-dat";
    CheckAfterCrash(t.path, live, absent, cut);
    live.insert(50);
    Keep(t.path, std::string("crash-append-") + p.name, live, absent);
  }
}

TEST_CASE("crash during a delete, at each step: an unfinished delete does not take effect") {
  for (const CrashPoint& p : kPoints) {
    CAPTURE(p.name);
    testing::TempDir t;
    Prepare(t.path);
    const int status = CrashChild(t.path, p, [&](Volume& v) {
      Mutation m;
      m.kind = Mutation::Kind::kDelete;
      m.id = 2;
      m.cookie = kCookie;
      m.fsync = p.fsync;
      Apply(v, m);
    });
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 137);
    std::set<NeedleId> live = {1, 3, 4}, absent;
    (p.takes_effect ? absent : live).insert(2);
    const bool cut = !p.takes_effect && std::string(p.name) != "before-dat";
    CheckAfterCrash(t.path, live, absent, cut);
    live.insert(50);
    Keep(t.path, std::string("crash-delete-") + p.name, live, absent);
  }
}

TEST_CASE("indexed needles whose data a power loss dropped are named, and the volume stays read-only as in Go") {
  testing::TempDir t;
  Prepare(t.path);
  const auto dat = t.path / "9.dat";
  fs::resize_file(dat, fs::file_size(dat) - 40);  // needle 4's record lost its tail
  auto v = Volume::Load(Names(t.path), kWidth);
  REQUIRE(v.ok());
  CHECK(v.value()->read_only());
  REQUIRE(v.value()->tail_repair().missing.size() == 1);
  CHECK(v.value()->tail_repair().missing[0] == 4);
  CHECK(v.value()->load_warning().find("have no complete data: 4") != std::string::npos);
  CHECK(fs::file_size(dat) == v.value()->dat_size());  // nothing was cut
}
