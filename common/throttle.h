// The -compactionMBps / -maintenanceMBps limit. Bytes are paced against the
// clock from the first one: after Add, the bytes counted in the current
// window never run ahead of the rate by more than the time already slept
// off. (Go's rule checks only every 100 ms, so a copy that fits in 100 ms
// is never slowed; this one is.) Windows restart each second, so an idle
// spell earns no burst credit beyond that. A rate of 0 or less never sleeps.
#pragma once
#include <chrono>
#include <cstdint>
#include <thread>

namespace kelp {

class Throttle {
 public:
  explicit Throttle(int64_t bytes_per_second) : limit_(bytes_per_second), start_(std::chrono::steady_clock::now()) {}
  void Add(uint64_t bytes) {
    if (limit_ <= 0) return;
    counter_ += int64_t(bytes);
    using namespace std::chrono;
    const auto due = start_ + microseconds(counter_ * 1000000 / limit_);
    const auto now = steady_clock::now();
    if (due > now) std::this_thread::sleep_until(due);
    if (steady_clock::now() - start_ >= seconds(1)) {
      counter_ = 0;
      start_ = steady_clock::now();
    }
  }

 private:
  const int64_t limit_;
  int64_t counter_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace kelp
