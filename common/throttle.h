// Go's maintenance throttle (weed/util/throttler.go's rule): bytes are
// counted in a 100 ms window; once the window is over, the excess over a
// tenth of the rate is slept off. A rate of 0 or less never sleeps.
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
    if (std::chrono::steady_clock::now() - start_ < std::chrono::milliseconds(100)) return;
    const int64_t over = counter_ - limit_ / 10;
    if (over > 0) std::this_thread::sleep_for(std::chrono::milliseconds(over * 1000 / limit_));
    counter_ = 0;
    start_ = std::chrono::steady_clock::now();
  }

 private:
  const int64_t limit_;
  int64_t counter_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace kelp
