#include "worker-http/inflight_limits.h"

namespace kelp {

namespace {
constexpr uint64_t kPollMs = 5;
}

InflightLimits::InflightLimits(uv_loop_t* loop, ipc::SharedGauges* gauges, int slot, Config config)
    : loop_(loop), gauges_(gauges), slot_(slot % ipc::kMaxWorkers), config_(config) {}

InflightLimits::~InflightLimits() {
  if (timer_) {
    uv_timer_stop(timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

bool InflightLimits::Within(bool upload) const {
  return upload ? UploadBytes() <= config_.upload_limit : DownloadBytes() <= config_.download_limit;
}

void InflightLimits::WaitForUpload(std::function<void(bool)> done) { Wait(true, std::move(done)); }
void InflightLimits::WaitForDownload(std::function<void(bool)> done) { Wait(false, std::move(done)); }

void InflightLimits::Wait(bool upload, std::function<void(bool)> done) {
  if (!(upload ? UploadLimited() : DownloadLimited()) || Within(upload)) return done(true);
  (upload ? gauges_->upload_limit_waits : gauges_->download_limit_waits).fetch_add(1, std::memory_order_relaxed);
  const double timeout = upload ? config_.upload_timeout_s : config_.download_timeout_s;
  waiters_.push_back(Waiter{upload, std::chrono::steady_clock::now() + std::chrono::microseconds(int64_t(timeout * 1e6)),
                            std::move(done)});
  if (!timer_) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(timer_)))
    uv_timer_start(timer_, [](uv_timer_t* t) { static_cast<InflightLimits*>(t->data)->Tick(); }, kPollMs, kPollMs);
}

// Oldest first: an admitted request's hold is taken inside `done`, so the next
// waiter sees the total with it.
void InflightLimits::Tick() {
  const auto now = std::chrono::steady_clock::now();
  std::deque<Waiter> still;
  while (!waiters_.empty()) {
    Waiter w = std::move(waiters_.front());
    waiters_.pop_front();
    if (Within(w.upload)) w.done(true);
    else if (now >= w.deadline) w.done(false);
    else still.push_back(std::move(w));
  }
  // Callbacks may have queued new waiters meanwhile.
  for (auto& w : waiters_) still.push_back(std::move(w));
  waiters_ = std::move(still);
  if (waiters_.empty()) uv_timer_stop(timer_);
}

std::shared_ptr<void> InflightLimits::HoldUpload(int64_t bytes) {
  if (!gauges_ || bytes <= 0) return nullptr;
  auto* counter = &gauges_->upload_bytes[slot_];
  counter->fetch_add(bytes, std::memory_order_relaxed);
  return std::shared_ptr<void>(nullptr, [counter, bytes](void*) { counter->fetch_sub(bytes, std::memory_order_relaxed); });
}

std::shared_ptr<void> InflightLimits::HoldDownload(int64_t bytes) {
  if (!gauges_ || bytes <= 0) return nullptr;
  auto* counter = &gauges_->download_bytes[slot_];
  counter->fetch_add(bytes, std::memory_order_relaxed);
  return std::shared_ptr<void>(nullptr, [counter, bytes](void*) { counter->fetch_sub(bytes, std::memory_order_relaxed); });
}

}  // namespace kelp
