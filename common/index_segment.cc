#include "common/index_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <new>

namespace kelp {

using segment_detail::Slot;
using segment_detail::Slots;

namespace {

constexpr uint64_t kOffsetMask = (uint64_t(1) << 40) - 1;
constexpr uint64_t kDeletedBit = uint64_t(1) << 40;

inline uint64_t HomeSlot(NeedleId id, uint64_t capacity) {
  return (id * 0x9E3779B97F4A7C15ull) >> (64 - std::countr_zero(capacity));
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// The one probe sequence both sides use. Readers in other processes load with
// acquire (pairing with the writer's release stores); the writer reading its own
// entries can use relaxed loads.
std::optional<IndexValue> Find(const void* base, NeedleId id, std::memory_order order) {
  const auto* h = static_cast<const SegmentHeader*>(base);
  if (id == 0) {
    const uint64_t v = h->zero_key_value.load(order);
    if (v == 0) return std::nullopt;
    return IndexValue::Unpack(v);
  }
  const uint64_t cap = h->capacity;
  const Slot* slots = Slots(const_cast<void*>(base));
  uint64_t i = HomeSlot(id, cap);
  for (uint64_t probes = 0; probes < cap; ++probes, i = (i + 1) & (cap - 1)) {
    const uint64_t k = slots[i].key.load(order);
    if (k == 0) return std::nullopt;
    if (k == id) return IndexValue::Unpack(slots[i].value.load(order));
  }
  return std::nullopt;
}

}  // namespace

uint64_t IndexValue::Pack() const {
  const uint64_t s = (size_known && size < kSizeUnknown) ? size : kSizeUnknown;
  return (offset_units & kOffsetMask) | (deleted ? kDeletedBit : 0) | (s << 41);
}

IndexValue IndexValue::Unpack(uint64_t v) {
  IndexValue r;
  r.offset_units = v & kOffsetMask;
  r.deleted = (v & kDeletedBit) != 0;
  r.size = uint32_t(v >> 41);
  r.size_known = r.size != kSizeUnknown;
  if (!r.size_known) r.size = 0;
  return r;
}

// ---- reader ----

IndexSegmentReader::~IndexSegmentReader() {
  if (base_) munmap(base_, length_);
}

IndexSegmentReader& IndexSegmentReader::operator=(IndexSegmentReader&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, length_);
    base_ = o.base_;
    length_ = o.length_;
    o.base_ = nullptr;
    o.length_ = 0;
  }
  return *this;
}

Result<IndexSegmentReader> IndexSegmentReader::Map(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::IOError(Errno("fstat index segment"));
  if (size_t(st.st_size) < kSegmentHeaderBytes) return Status::Corruption("index segment too small");
  void* p = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::IOError(Errno("mmap index segment"));
  IndexSegmentReader r;
  r.base_ = p;
  r.length_ = size_t(st.st_size);
  const SegmentHeader* h = r.header();
  if (h->magic != kSegmentMagic || h->layout_version != kSegmentLayoutVersion || !std::has_single_bit(h->capacity) ||
      kSegmentHeaderBytes + h->capacity * sizeof(Slot) != r.length_)
    return Status::Corruption("index segment header is not valid");
  return r;
}

std::optional<IndexValue> IndexSegmentReader::Lookup(NeedleId id) const {
  return Find(base_, id, std::memory_order_acquire);
}

SegmentCounters IndexSegmentReader::Counters() const {
  const SegmentHeader* h = header();
  SegmentCounters c;
  c.file_count = h->file_count.load(std::memory_order_relaxed);
  c.deleted_count = h->deleted_count.load(std::memory_order_relaxed);
  c.deleted_bytes = h->deleted_bytes.load(std::memory_order_relaxed);
  c.content_size = h->content_size.load(std::memory_order_relaxed);
  c.max_file_key = h->max_file_key.load(std::memory_order_relaxed);
  c.dat_size = h->dat_size.load(std::memory_order_relaxed);
  c.last_modified_s = h->last_modified_s.load(std::memory_order_relaxed);
  return c;
}

// ---- writer ----

IndexSegmentWriter::~IndexSegmentWriter() {
  if (base_) munmap(base_, length_);
  if (fd_ >= 0) close(fd_);
}

IndexSegmentWriter& IndexSegmentWriter::operator=(IndexSegmentWriter&& o) noexcept {
  if (this != &o) {
    if (base_) munmap(base_, length_);
    if (fd_ >= 0) close(fd_);
    base_ = o.base_;
    length_ = o.length_;
    fd_ = o.fd_;
    o.base_ = nullptr;
    o.length_ = 0;
    o.fd_ = -1;
  }
  return *this;
}

Result<IndexSegmentWriter> IndexSegmentWriter::Create(const char* name, uint64_t capacity, uint64_t generation) {
  capacity = std::bit_ceil(std::max<uint64_t>(capacity, 1024));
  const size_t length = kSegmentHeaderBytes + capacity * sizeof(Slot);
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Status::IOError(Errno("memfd_create"));
  IndexSegmentWriter w;
  w.fd_ = fd;
  if (ftruncate(fd, off_t(length)) != 0) return Status::IOError(Errno("ftruncate index segment"));
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) return Status::IOError(Errno("seal index segment"));
  void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Status::IOError(Errno("mmap index segment"));
  w.base_ = p;
  w.length_ = length;
  // The memfd starts zeroed: every slot is empty and every atomic is 0.
  auto* h = new (p) SegmentHeader{};
  h->magic = kSegmentMagic;
  h->layout_version = kSegmentLayoutVersion;
  h->header_size = uint32_t(kSegmentHeaderBytes);
  h->capacity = capacity;
  h->generation = generation;
  return w;
}

bool IndexSegmentWriter::Put(NeedleId id, const IndexValue& v) {
  const uint64_t packed = v.Pack();
  SegmentHeader* h = header();
  if (id == 0) {
    h->zero_key_value.store(packed, std::memory_order_release);
    return true;
  }
  const uint64_t cap = h->capacity;
  Slot* slots = Slots(base_);
  uint64_t i = HomeSlot(id, cap);
  for (uint64_t probes = 0; probes < cap; ++probes, i = (i + 1) & (cap - 1)) {
    const uint64_t k = slots[i].key.load(std::memory_order_relaxed);
    if (k == id) {
      slots[i].value.store(packed, std::memory_order_release);
      return true;
    }
    if (k == 0) {
      // Keep at least one empty slot so every reader probe terminates early.
      if (used_slots() + 2 > cap) return false;
      slots[i].value.store(packed, std::memory_order_relaxed);
      slots[i].key.store(id, std::memory_order_release);
      h->used_slots.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

std::optional<IndexValue> IndexSegmentWriter::Get(NeedleId id) const {
  return Find(base_, id, std::memory_order_relaxed);
}

void IndexSegmentWriter::SetCounters(const SegmentCounters& c) {
  SegmentHeader* h = header();
  h->file_count.store(c.file_count, std::memory_order_relaxed);
  h->deleted_count.store(c.deleted_count, std::memory_order_relaxed);
  h->deleted_bytes.store(c.deleted_bytes, std::memory_order_relaxed);
  h->content_size.store(c.content_size, std::memory_order_relaxed);
  h->max_file_key.store(c.max_file_key, std::memory_order_relaxed);
  h->dat_size.store(c.dat_size, std::memory_order_relaxed);
  h->last_modified_s.store(c.last_modified_s, std::memory_order_release);
}

void IndexSegmentWriter::SetReadOnly(bool ro) { header()->read_only.store(ro ? 1 : 0, std::memory_order_release); }
void IndexSegmentWriter::MarkSuperseded() { header()->superseded.store(1, std::memory_order_release); }

void IndexSegmentWriter::CopyTo(IndexSegmentWriter* dst) const {
  ForEach([&](NeedleId id, const IndexValue& v) { dst->Put(id, v); });
  dst->header()->read_only.store(header()->read_only.load(std::memory_order_relaxed), std::memory_order_relaxed);
  SegmentCounters c;
  const SegmentHeader* h = header();
  c.file_count = h->file_count.load(); c.deleted_count = h->deleted_count.load(); c.deleted_bytes = h->deleted_bytes.load();
  c.content_size = h->content_size.load(); c.max_file_key = h->max_file_key.load(); c.dat_size = h->dat_size.load();
  c.last_modified_s = h->last_modified_s.load();
  dst->SetCounters(c);
}

}  // namespace kelp
