#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "common/throttle.h"

using namespace kelp;
using Clock = std::chrono::steady_clock;

// Lower bounds only: pacing may take longer on a loaded machine, never less.
TEST_CASE("the throttle paces a burst from its first bytes") {
  Throttle throttle(1000000);  // 1 MB/s
  const auto start = Clock::now();
  for (int i = 0; i < 30; i++) throttle.Add(10000);  // 300 kB: at least 0.3 s
  CHECK(Clock::now() - start >= std::chrono::milliseconds(300));
}

TEST_CASE("a throttle of 0 never sleeps") {
  Throttle none(0);
  for (int i = 0; i < 1000; i++) none.Add(1 << 30);  // hours, if it slept
}

TEST_CASE("an idle spell earns at most one window of burst credit") {
  Throttle throttle(1000000);  // 1 MB/s
  throttle.Add(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const auto start = Clock::now();
  for (int i = 0; i < 20; i++) throttle.Add(100000);  // 2 MB: at least 1 s after the idle window's credit
  CHECK(Clock::now() - start >= std::chrono::milliseconds(1000));
}
