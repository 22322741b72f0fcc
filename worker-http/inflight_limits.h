// Go's -concurrentUploadLimitMB / -concurrentDownloadLimitMB over the whole
// server: the bytes of uploads being received and of needles being sent are
// counted in the shared gauges (every worker's sum). A request arriving while
// the total is over the limit waits, checked every few milliseconds, until it
// is not or the in-flight timeout passes (then Go's 429). Holds are handles:
// the bytes stay counted until the last copy is dropped.
#pragma once
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "ipc/shared_gauges.h"

namespace kelp {

class InflightLimits {
 public:
  struct Config {
    int64_t upload_limit = 0, download_limit = 0;  // bytes; 0: none
    double upload_timeout_s = 60, download_timeout_s = 60;
  };
  // `gauges` may be null (then nothing is counted or limited).
  InflightLimits(uv_loop_t* loop, ipc::SharedGauges* gauges, int slot, Config config);
  ~InflightLimits();

  bool UploadLimited() const { return gauges_ && config_.upload_limit > 0; }
  bool DownloadLimited() const { return gauges_ && config_.download_limit > 0; }
  int slot() const { return slot_; }
  int64_t upload_limit() const { return config_.upload_limit; }
  int64_t download_limit() const { return config_.download_limit; }
  int64_t UploadBytes() const { return gauges_ ? gauges_->UploadBytes() : 0; }
  int64_t DownloadBytes() const { return gauges_ ? gauges_->DownloadBytes() : 0; }
  bool DownloadOver() const { return DownloadLimited() && DownloadBytes() > config_.download_limit; }

  // Calls `done(true)` once the total is within the limit (at once if it is),
  // or `done(false)` when the timeout passes first.
  void WaitForUpload(std::function<void(bool)> done);
  void WaitForDownload(std::function<void(bool)> done);

  std::shared_ptr<void> HoldUpload(int64_t bytes);
  std::shared_ptr<void> HoldDownload(int64_t bytes);

 private:
  struct Waiter {
    bool upload;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(bool)> done;
  };
  void Wait(bool upload, std::function<void(bool)> done);
  bool Within(bool upload) const;
  void Tick();

  uv_loop_t* loop_;
  ipc::SharedGauges* gauges_;
  int slot_;
  Config config_;
  uv_timer_t* timer_ = nullptr;
  std::deque<Waiter> waiters_;
};

}  // namespace kelp
