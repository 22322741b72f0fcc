// WorkerPool against workers that lie (tests/unit/hostile_worker.cc): the
// supervisor survives every message, appends nothing it did not validate,
// and drops the worker. And the segment handover when an index grows.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <cstdlib>
#include <functional>

#include "ipc/shared_gauges.h"
#include "supervisor/worker_pool.h"
#include "tests/unit/store_rig.h"

using namespace kelp;

namespace {

struct PoolRig : testing::OneVolumeStore {
  std::unique_ptr<WorkerPool> pool;
  int exe = -1;
  int gauges = -1;

  PoolRig() : OneVolumeStore(3) {
    exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    auto g = ipc::CreateSharedGauges();
    REQUIRE(g.ok());
    gauges = g.value();
    WorkerPoolOptions opts;
    opts.http_worker_exe = exe;
    opts.http_workers = 1;
    opts.gauges_fd = gauges;
    pool = std::make_unique<WorkerPool>(&loop, store.get(), opts);
  }

  void Stop() {
    bool done = false;
    pool->Shutdown([](void* arg) { *static_cast<bool*>(arg) = true; }, &done);
    CHECK(RunUntil([&] { return done; }));
    store->StopWriters();
  }

  ~PoolRig() {
    // The writers' last completions may still call into the pool.
    store->StopWriters();
    pool.reset();
    close(exe);
    close(gauges);
    // A case that failed half-way must not hand its lies to the next one.
    unsetenv("KELP_HOSTILE");
    unsetenv("KELP_HOSTILE_LANE");
    unsetenv("KELP_HOSTILE_MARK");
  }
};

uint64_t Generation(const Volume& v) {
  auto [fd, generation] = v.DupSegment();
  close(fd);
  return generation;
}

}  // namespace

TEST_CASE("a worker that lies is dropped, and nothing it sent is appended (on its main channel and on a write lane)") {
  const char* acts[] = {"bad-crc",        "bad-size-field", "length-mismatch", "truncated-memfd", "unsealed-memfd",
                        "growing-memfd",  "pipe-fd",        "unknown-type",    "wrong-version",   "short-delete",
                        "admin-from-http", "admin-delete-from-http"};
  for (const bool lane : {false, true})
  for (const char* act : acts) {
    CAPTURE(act);
    CAPTURE(lane);
    if (lane) setenv("KELP_HOSTILE_LANE", "1", 1);
    else unsetenv("KELP_HOSTILE_LANE");
    PoolRig rig;
    const uint64_t before = rig.volume->dat_size();
    setenv("KELP_HOSTILE", act, 1);
    setenv("KELP_HOSTILE_VID", "3", 1);
    rig.pool->Start();
    CHECK(rig.RunUntil([&] { return rig.pool->dropped() >= 1; }));
    rig.Stop();  // replacements lie the same way until the pool stops
    unsetenv("KELP_HOSTILE");
    unsetenv("KELP_HOSTILE_LANE");
    CHECK(rig.volume->dat_size() == before);
    CHECK(rig.store->Find(3) != nullptr);
  }
}

TEST_CASE("a worker that sends an empty datagram is stopped, not left running unpolled") {
  PoolRig rig;
  setenv("KELP_HOSTILE", "empty-datagram", 1);
  setenv("KELP_HOSTILE_VID", "3", 1);
  rig.pool->Start();
  // It never exits by itself: only the supervisor's kill ends it, and the
  // slot is respawned.
  CHECK(rig.RunUntil([&] { return rig.pool->restarts() >= 1; }));
  rig.Stop();
  unsetenv("KELP_HOSTILE");
}

TEST_CASE("a dropped worker's lanes apply nothing more, even from a process that inherited them") {
  PoolRig rig;
  const uint64_t before = rig.volume->dat_size();
  const std::string mark = (rig.dir.path / "child-tried").string();
  setenv("KELP_HOSTILE", "forked-lane-writer", 1);
  setenv("KELP_HOSTILE_LANE", "1", 1);
  setenv("KELP_HOSTILE_VID", "3", 1);
  setenv("KELP_HOSTILE_MARK", mark.c_str(), 1);
  rig.pool->Start();
  CHECK(rig.RunUntil([&] { return rig.pool->dropped() >= 1 && access(mark.c_str(), F_OK) == 0; }));
  rig.Stop();
  unsetenv("KELP_HOSTILE");
  unsetenv("KELP_HOSTILE_LANE");
  unsetenv("KELP_HOSTILE_MARK");
  CHECK(rig.volume->dat_size() == before);
}

TEST_CASE("the same channels append a valid record, inline and in a sealed memfd (the hostile cases have teeth)") {
  for (const bool lane : {false, true})
  for (const char* act : {"valid", "valid-memfd"}) {
    CAPTURE(act);
    CAPTURE(lane);
    if (lane) setenv("KELP_HOSTILE_LANE", "1", 1);
    else unsetenv("KELP_HOSTILE_LANE");
    PoolRig rig;
    const uint64_t before = rig.volume->dat_size();
    setenv("KELP_HOSTILE", act, 1);
    setenv("KELP_HOSTILE_VID", "3", 1);
    rig.pool->Start();
    CHECK(rig.RunUntil([&] { return rig.volume->dat_size() > before; }));
    rig.Stop();
    unsetenv("KELP_HOSTILE");
    unsetenv("KELP_HOSTILE_LANE");
    CHECK(rig.pool->dropped() == 0);
    CHECK(rig.volume->dat_size() > before);
  }
}

TEST_CASE("segment handover: a grown index reaches the workers, and the old one is released once each has switched") {
  for (const char* act : {"grow-ack", "grow-noack"}) {
    CAPTURE(act);
    PoolRig rig;
    setenv("KELP_HOSTILE", act, 1);
    setenv("KELP_HOSTILE_VID", "3", 1);
    const uint64_t first_generation = Generation(*rig.volume);
    rig.pool->Start();
    // 900 needles outgrow the first 1024-slot segment at a load factor of 3/4.
    REQUIRE(rig.RunUntil([&] { return rig.volume->counters().file_count >= 900; }));
    CHECK(Generation(*rig.volume) > first_generation);
    if (std::string(act) == "grow-ack") {
      CHECK(rig.RunUntil([&] { return !rig.volume->handover_pending(); }));
    } else {
      // A worker that never switches keeps the old segment alive, and updated...
      CHECK(rig.volume->handover_pending());
    }
    rig.Stop();  // ...until it is gone
    unsetenv("KELP_HOSTILE");
    unsetenv("KELP_HOSTILE_LANE");
    CHECK_FALSE(rig.volume->handover_pending());
    CHECK(rig.pool->dropped() == 0);
    for (NeedleId id = 1000; id < 1900; ++id) CHECK(rig.volume->Lookup(id).has_value());
  }
}

TEST_CASE("segment handover: when the old segment is full, writes wait for the switch, and a worker that never switches is dropped") {
  PoolRig rig;
  setenv("KELP_HOSTILE", "grow-past-old-noack", 1);
  setenv("KELP_HOSTILE_VID", "3", 1);
  rig.pool->Start();
  // The old 1024-slot segment takes about 250 keys after the merge; the
  // write it cannot take is applied to the new one and its answer held.
  REQUIRE(rig.RunUntil([&] { return rig.volume->answers_via_loop(); }));
  CHECK(rig.volume->handover_pending());
  const uint64_t held_at = rig.volume->counters().file_count;
  CHECK(held_at > 900);
  CHECK(held_at < 1500);
  // The worker waits for that answer and never acknowledges the segment:
  // the handover deadline drops it, which ends the handover.
  REQUIRE(rig.RunUntil([&] { return rig.pool->dropped() >= 1; }));
  CHECK(rig.RunUntil([&] { return !rig.volume->handover_pending() && !rig.volume->answers_via_loop(); }));
  rig.Stop();
  unsetenv("KELP_HOSTILE");
  CHECK_FALSE(rig.volume->read_only());  // was: read-only once the old segment filled
  for (NeedleId id = 1000; id < 1000 + held_at; ++id) CHECK(rig.volume->Lookup(id).has_value());
}
