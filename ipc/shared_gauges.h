// Counters shared by all HTTP workers of one server: a memfd the supervisor
// creates once and hands to every worker (the last fd of its Hello), so limits
// and metrics cover the whole server, not one process, and survive worker
// restarts. Every field is a lock-free atomic. In-flight figures are kept per
// gauge slot (one per worker process, from its Hello); when a worker exits the
// supervisor zeroes its slot, so a crash never leaves bytes counted forever.
#pragma once
#include <atomic>
#include <cstdint>

#include "common/status.h"

namespace kelp::ipc {

// Request kinds as Go's metrics label them (`type`): the method, or INVALID.
enum class RequestKind : uint8_t { kGet, kHead, kPost, kPut, kDelete, kOptions, kInvalid, kCount };
const char* RequestKindName(RequestKind k);
RequestKind RequestKindOf(const char* method);

inline constexpr int kMinStatus = 100, kMaxStatus = 599;
inline constexpr int kStatusSlots = kMaxStatus - kMinStatus + 1;
// Go's request_seconds buckets: ExponentialBuckets(0.0001, 2, 24).
inline constexpr int kLatencyBuckets = 24;
inline constexpr int kMaxWorkers = 256;

struct SharedGauges {
  static constexpr uint64_t kMagic = 0x6b656c7067617567ull;  // "kelpgaug"
  uint64_t magic;
  // In-flight figures by gauge slot; sums give the server's totals.
  std::atomic<int64_t> upload_bytes[kMaxWorkers];
  std::atomic<int64_t> download_bytes[kMaxWorkers];
  std::atomic<uint64_t> requests[size_t(RequestKind::kCount)][kStatusSlots];
  std::atomic<uint64_t> latency_buckets[size_t(RequestKind::kCount)][kLatencyBuckets];
  std::atomic<uint64_t> latency_count[size_t(RequestKind::kCount)];
  std::atomic<uint64_t> latency_sum_ns[size_t(RequestKind::kCount)];
  std::atomic<int64_t> in_flight[size_t(RequestKind::kCount)][kMaxWorkers];
  std::atomic<uint64_t> upload_limit_waits;    // handler_total{type="uploadLimitCond"}
  std::atomic<uint64_t> download_limit_waits;  // handler_total{type="downloadLimitCond"}
  std::atomic<int64_t> start_time_seconds;

  int64_t UploadBytes() const;
  int64_t DownloadBytes() const;
  int64_t InFlight(RequestKind k) const;
  void ResetSlot(int slot);
  void CountRequest(RequestKind k, int status, uint64_t elapsed_ns);
};

// Supervisor: a new zeroed region; the fd is what workers receive.
Result<int> CreateSharedGauges();
// Maps the region behind `fd` (checked for size and magic).
Result<SharedGauges*> MapSharedGauges(int fd);

}  // namespace kelp::ipc
