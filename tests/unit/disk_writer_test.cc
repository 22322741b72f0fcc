// DiskWriter: mutations from a write lane are applied and answered on the
// writer thread without the loop, in order with submitted work; a finished
// lane is unwatched and its reader released on that thread; and the volumes
// it serves follow the Store.
#include <doctest/doctest.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <string>
#include <vector>

#include "tests/unit/store_rig.h"

using namespace kelp;

namespace {

struct WriterRig : testing::OneVolumeStore {
  WriterRig() : OneVolumeStore(7) {}
  DiskWriter* writer() { return store->LocationWriter(0); }
};

// A lane reader that turns each datagram into a put of its bytes.
struct LaneState {
  std::vector<std::string> records;  // kept alive until applied
  std::vector<Mutation> mutations;
  std::atomic<int> answered{0};
  std::atomic<int> loop_completions{0};
  std::atomic<bool> answered_off_loop{true};
  std::atomic<bool> reader_destroyed_off_loop{false};
  pthread_t loop_thread = pthread_self();
};

}  // namespace

TEST_CASE("a write lane's mutations are applied and answered on the writer thread; the loop is not woken for them") {
  WriterRig rig;
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  LaneState st;
  st.records.reserve(16);
  st.mutations.reserve(16);
  const uint64_t before = rig.volume->dat_size();
  struct Guard {
    LaneState* st;
    int fd;
    ~Guard() {
      if (!pthread_equal(pthread_self(), st->loop_thread)) st->reader_destroyed_off_loop = true;
      close(fd);
    }
  };
  std::shared_ptr<Guard> guard(new Guard{&st, fds[0]});
  DiskWriter* writer = rig.writer();
  const bool added = writer->AddLane(fds[0], [&st, writer, guard](DiskWriter::Batch& batch) {
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(guard->fd, buf, sizeof buf, 0);
      if (n == 0) return false;  // peer closed: the lane is finished
      if (n < 0) return true;
      st.records.emplace_back(buf, size_t(n));
      Mutation& m = st.mutations.emplace_back();
      m.record = reinterpret_cast<uint8_t*>(st.records.back().data());
      m.length = st.records.back().size();
      std::shared_ptr<Volume> v = writer->Served(7);
      if (!v) return false;  // fails the test: nothing is answered
      batch.Add(std::move(v), &m, [&st] { ++st.loop_completions; }, [&st] {
        if (pthread_equal(pthread_self(), st.loop_thread)) st.answered_off_loop = false;
        ++st.answered;
        return false;  // answered here: nothing for the loop
      });
    }
  });
  REQUIRE(added);
  guard.reset();
  for (int i = 1; i <= 3; ++i) {
    const std::string rec = testing::NeedleRecord(NeedleId(100 + i), 0x01020304, "lane payload " + std::to_string(i));
    REQUIRE(send(fds[1], rec.data(), rec.size(), 0) == ssize_t(rec.size()));
  }
  // No loop iteration is needed for the writes to be applied and answered.
  for (int i = 0; i < 10000 && st.answered < 3; ++i) usleep(1000);
  CHECK(st.answered == 3);
  CHECK(st.answered_off_loop);
  CHECK(rig.volume->dat_size() > before);
  for (const Mutation& m : st.mutations) CHECK(m.status.ok());
  std::string record;
  ParsedNeedle parsed;
  CHECK(rig.volume->ReadNeedle(102, &record, &parsed).ok());
  // Closing the peer finishes the lane: its reader goes, on the writer thread.
  close(fds[1]);
  CHECK(rig.RunUntil([&] { return st.reader_destroyed_off_loop.load(); }));
  uv_run(&rig.loop, UV_RUN_NOWAIT);
  CHECK(st.loop_completions == 0);
}

TEST_CASE("a lane sees submitted work that came before it, and the served volumes follow the store") {
  WriterRig rig;
  DiskWriter* writer = rig.writer();
  CHECK(writer->Served(7) != nullptr);
  CHECK(writer->Served(8) == nullptr);
  // Work queued before a lane's datagram arrives runs before the lane is read,
  // even when both are found in the same pass: the writer is held in a task
  // while the next task is queued and the datagram sent.
  std::atomic<int> step{0};
  std::atomic<bool> holding{false}, release{false};
  std::atomic<int> seen_by_lane{-1};
  int fds[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  const bool added = writer->AddLane(fds[0], [&, fd = fds[0]](DiskWriter::Batch&) {
    char c;
    if (recv(fd, &c, 1, 0) == 1) seen_by_lane = step.load();
    return true;
  });
  REQUIRE(added);
  writer->Post([&] {
    holding = true;
    for (int i = 0; i < 10000 && !release; ++i) usleep(1000);
  });
  for (int i = 0; i < 10000 && !holding; ++i) usleep(1000);
  REQUIRE(holding);
  writer->Post([&] { step = 1; });
  REQUIRE(send(fds[1], "x", 1, 0) == 1);
  release = true;
  CHECK(rig.RunUntil([&] { return seen_by_lane.load() >= 0; }));
  CHECK(seen_by_lane == 1);
  // Unmounting takes the volume out of the writer's table at once.
  CHECK(rig.store->UnmountVolume(7).ok());
  CHECK(writer->Served(7) == nullptr);
  rig.volume = nullptr;
  rig.store->StopWriters();
  close(fds[0]);
  close(fds[1]);
}
