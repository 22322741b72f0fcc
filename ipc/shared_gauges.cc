#include "ipc/shared_gauges.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <type_traits>

namespace kelp::ipc {

static_assert(std::atomic<int64_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "shared counters must be lock-free to live in shared memory");
static_assert(std::is_standard_layout_v<SharedGauges>);

const char* RequestKindName(RequestKind k) {
  switch (k) {
    case RequestKind::kGet: return "GET";
    case RequestKind::kHead: return "HEAD";
    case RequestKind::kPost: return "POST";
    case RequestKind::kPut: return "PUT";
    case RequestKind::kDelete: return "DELETE";
    case RequestKind::kOptions: return "OPTIONS";
    default: return "INVALID";
  }
}

RequestKind RequestKindOf(const char* m) {
  if (!std::strcmp(m, "GET")) return RequestKind::kGet;
  if (!std::strcmp(m, "HEAD")) return RequestKind::kHead;
  if (!std::strcmp(m, "POST")) return RequestKind::kPost;
  if (!std::strcmp(m, "PUT")) return RequestKind::kPut;
  if (!std::strcmp(m, "DELETE")) return RequestKind::kDelete;
  if (!std::strcmp(m, "OPTIONS")) return RequestKind::kOptions;
  return RequestKind::kInvalid;
}

int64_t SharedGauges::UploadBytes() const {
  int64_t sum = 0;
  for (const auto& v : upload_bytes) sum += v.load(std::memory_order_relaxed);
  return sum;
}

int64_t SharedGauges::DownloadBytes() const {
  int64_t sum = 0;
  for (const auto& v : download_bytes) sum += v.load(std::memory_order_relaxed);
  return sum;
}

int64_t SharedGauges::InFlight(RequestKind k) const {
  int64_t sum = 0;
  for (const auto& v : in_flight[size_t(k)]) sum += v.load(std::memory_order_relaxed);
  return sum;
}

void SharedGauges::ResetSlot(int slot) {
  if (slot < 0 || slot >= kMaxWorkers) return;
  upload_bytes[slot].store(0);
  download_bytes[slot].store(0);
  for (auto& kind : in_flight) kind[slot].store(0);
}

void SharedGauges::CountRequest(RequestKind k, int status, uint64_t elapsed_ns) {
  const size_t kind = size_t(k);
  if (status >= kMinStatus && status <= kMaxStatus) requests[kind][status - kMinStatus].fetch_add(1, std::memory_order_relaxed);
  // Bucket i holds observations <= 0.1 ms * 2^i (cumulative sums are made when exported).
  double bound_ns = 100000;
  for (int i = 0; i < kLatencyBuckets; ++i, bound_ns *= 2) {
    if (double(elapsed_ns) <= bound_ns) {
      latency_buckets[kind][i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  latency_count[kind].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns[kind].fetch_add(elapsed_ns, std::memory_order_relaxed);
}

Result<int> CreateSharedGauges() {
  const int fd = memfd_create("kelp-gauges", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Status::IOError(std::string("memfd_create: ") + std::strerror(errno));
  if (ftruncate(fd, sizeof(SharedGauges)) != 0) {
    const int e = errno;
    close(fd);
    return Status::IOError(std::string("ftruncate gauges: ") + std::strerror(e));
  }
  // Its size is fixed from now on: a worker cannot shrink it under the others.
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  void* p = mmap(nullptr, sizeof(SharedGauges), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    close(fd);
    return Status::IOError(std::string("mmap gauges: ") + std::strerror(errno));
  }
  auto* g = static_cast<SharedGauges*>(p);
  g->start_time_seconds.store(int64_t(time(nullptr)));
  g->magic = SharedGauges::kMagic;
  munmap(p, sizeof(SharedGauges));
  return fd;
}

Result<SharedGauges*> MapSharedGauges(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || size_t(st.st_size) != sizeof(SharedGauges)) return Status::Invalid("gauges region has the wrong size");
  void* p = mmap(nullptr, sizeof(SharedGauges), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::IOError(std::string("mmap gauges: ") + std::strerror(errno));
  auto* g = static_cast<SharedGauges*>(p);
  if (g->magic != SharedGauges::kMagic) {
    munmap(p, sizeof(SharedGauges));
    return Status::Invalid("gauges region has no magic");
  }
  return g;
}

}  // namespace kelp::ipc
