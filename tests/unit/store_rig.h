// What the DiskWriter and WorkerPool tests stand on: a loop, and a Store of
// one location holding one empty volume, its disk writers started.
#pragma once
#include <doctest/doctest.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "supervisor/store.h"
#include "tests/unit/fixtures.h"

namespace kelp::testing {

// Runs `loop` until `done` holds; false if it did not within 30 s.
inline bool RunLoopUntil(uv_loop_t* loop, const std::function<bool()>& done) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  struct Ctx {
    const std::function<bool()>* done;
    uv_loop_t* loop;
    int ticks = 0;
    bool ok = false;
  } ctx{&done, loop};
  t.data = &ctx;
  uv_timer_start(&t, [](uv_timer_t* h) {
    auto* c = static_cast<Ctx*>(h->data);
    if ((*c->done)()) c->ok = true;
    if (c->ok || ++c->ticks > 3000) uv_stop(c->loop);
  }, 10, 10);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_timer_stop(&t);
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return ctx.ok;
}

struct OneVolumeStore {
  TempDir dir;
  uv_loop_t loop{};
  std::unique_ptr<Store> store;
  Volume* volume = nullptr;

  explicit OneVolumeStore(VolumeId id) {
    uv_loop_init(&loop);
    DiskLocation loc;
    loc.dir = loc.idx_dir = dir.path.string();
    store = std::make_unique<Store>(std::vector<DiskLocation>{loc}, kBuildOffsetBytes);
    REQUIRE(store->LoadAll().ok());
    NewVolumeSpec spec;
    spec.id = id;
    auto v = store->AddVolume(spec);
    REQUIRE(v.ok());
    volume = v.value();
    store->StartWriters(&loop);
  }
  bool RunUntil(const std::function<bool()>& done) { return RunLoopUntil(&loop, done); }
  ~OneVolumeStore() {
    store->StopWriters();
    store.reset();
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
  }
  OneVolumeStore(const OneVolumeStore&) = delete;
  OneVolumeStore& operator=(const OneVolumeStore&) = delete;
};

}  // namespace kelp::testing
