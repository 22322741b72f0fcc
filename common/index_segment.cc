#include "common/index_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <new>
#include <vector>

namespace kelp {

using segment_detail::Slot;
using segment_detail::Slots;

namespace {

constexpr uint64_t kOffsetMask = (uint64_t(1) << 40) - 1;
constexpr uint64_t kDeletedBit = uint64_t(1) << 40;

// The hashed key scaled to [0, capacity): any capacity, no modulo.
inline uint64_t HomeSlot(NeedleId id, uint64_t capacity) {
  return uint64_t((unsigned __int128)(id * 0x9E3779B97F4A7C15ull) * capacity >> 64);
}

inline uint64_t NextSlot(uint64_t i, uint64_t capacity) { return i + 1 == capacity ? 0 : i + 1; }

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

uint64_t RoundSlots(uint64_t capacity) { return (std::max<uint64_t>(capacity, 1024) + 255) / 256 * 256; }

// The directory for `count` ascending keys in [min_key, max_key]: the largest
// shift that still makes at least count/16 buckets, so between count/16 and
// count/8 (at most half a byte per entry; 8-16 entries per bucket when the
// keys are spread evenly).
struct DirectoryShape {
  uint64_t shift = 0, buckets = 1;
};
DirectoryShape ShapeFor(uint64_t count, uint64_t min_key, uint64_t max_key) {
  DirectoryShape d;
  if (count == 0) return d;
  const uint64_t span = max_key - min_key;
  const uint64_t widest = span / std::max<uint64_t>(1, count / 16);  // the widest bucket allowed
  d.shift = widest ? uint64_t(std::bit_width(widest)) - 1 : 0;
  d.buckets = (span >> d.shift) + 1;
  return d;
}

size_t SegmentLength(uint64_t capacity, uint64_t base_count, uint64_t buckets) {
  return kSegmentHeaderBytes + capacity * sizeof(Slot) + base_count * sizeof(BaseEntry) +
         (base_count ? (buckets + 1) * sizeof(uint32_t) : 0);
}

const uint32_t* Directory(const void* base) {
  const auto* h = static_cast<const SegmentHeader*>(base);
  return reinterpret_cast<const uint32_t*>(segment_detail::Base(base) + h->base_count);
}

// The base's packed value for `id`, found through the directory.
bool BaseFind(const void* base, NeedleId id, uint64_t* value) {
  const auto* h = static_cast<const SegmentHeader*>(base);
  if (h->base_count == 0 || id < h->base_min_key || id > h->base_max_key) return false;
  const uint64_t bucket = (id - h->base_min_key) >> h->directory_shift;
  const uint32_t* dir = Directory(base);
  const BaseEntry* entries = segment_detail::Base(base);
  uint64_t lo = dir[bucket], hi = std::min<uint64_t>(dir[bucket + 1], h->base_count);
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (entries[mid].key < id) lo = mid + 1;
    else hi = mid;
  }
  if (lo >= h->base_count || entries[lo].key != id) return false;
  *value = entries[lo].value;
  return true;
}

// The one lookup both sides use. Readers in other processes load with acquire
// (pairing with the writer's release stores); the writer reading its own
// entries can use relaxed loads.
std::optional<IndexValue> Find(const void* base, NeedleId id, std::memory_order order) {
  const auto* h = static_cast<const SegmentHeader*>(base);
  if (id == 0) {
    const uint64_t v = h->zero_key_value.load(order);
    if (v == 0) return std::nullopt;
    return IndexValue::Unpack(v);
  }
  uint64_t v;
  if (segment_detail::DeltaFind(base, id, order, &v) || BaseFind(base, id, &v)) return IndexValue::Unpack(v);
  return std::nullopt;
}

}  // namespace

bool segment_detail::DeltaFind(const void* base, NeedleId id, std::memory_order order, uint64_t* value) {
  const auto* h = static_cast<const SegmentHeader*>(base);
  const uint64_t cap = h->capacity;
  const Slot* slots = Slots(const_cast<void*>(base));
  uint64_t i = HomeSlot(id, cap);
  for (uint64_t probes = 0; probes < cap; ++probes, i = NextSlot(i, cap)) {
    const uint64_t k = slots[i].key.load(order);
    if (k == 0) return false;
    if (k == id) {
      *value = slots[i].value.load(order);
      return true;
    }
  }
  return false;
}

uint64_t DeltaCapacityFor(uint64_t base_count) { return RoundSlots(std::max<uint64_t>(4096, base_count / 16)); }

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
  if (h->magic != kSegmentMagic || h->layout_version != kSegmentLayoutVersion || h->capacity == 0 ||
      h->capacity > r.length_ / sizeof(Slot) || h->base_count > r.length_ / sizeof(BaseEntry) ||
      // Every key in [min, max] maps to a bucket below directory_buckets (a
      // count of 0 would be the +1 wrapping round over a full 2^64 span).
      (h->base_count && (h->base_min_key > h->base_max_key || h->directory_shift >= 64 || h->directory_buckets == 0 ||
                         ((h->base_max_key - h->base_min_key) >> h->directory_shift) + 1 != h->directory_buckets ||
                         h->directory_buckets > r.length_)) ||
      SegmentLength(h->capacity, h->base_count, h->directory_buckets) != r.length_)
    return Status::Corruption("index segment header is not valid");
  return r;
}

std::optional<IndexValue> IndexSegmentReader::Lookup(NeedleId id) const {
  return Find(base_, id, std::memory_order_acquire);
}

namespace {

SegmentCounters CountersOf(const SegmentHeader* h) {
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

}  // namespace

SegmentCounters IndexSegmentReader::Counters() const { return CountersOf(header()); }

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

// The memfd, sized and sealed, mapped writable, with its header filled in;
// the base and directory regions are left for the caller.
Status IndexSegmentWriter::Allocate(const char* name, uint64_t capacity, uint64_t base_count, uint64_t min_key,
                                    uint64_t max_key, uint64_t generation) {
  capacity = RoundSlots(capacity);
  const DirectoryShape dir = ShapeFor(base_count, min_key, max_key);
  const size_t length = SegmentLength(capacity, base_count, dir.buckets);
  fd_ = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd_ < 0) return Status::IOError(Errno("memfd_create"));
  if (ftruncate(fd_, off_t(length)) != 0) return Status::IOError(Errno("ftruncate index segment"));
  if (fcntl(fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) return Status::IOError(Errno("seal index segment"));
  // Populated at once: the builder writes every page of the base, and one
  // population costs far less than a fault per page.
  void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, 0);
  if (p == MAP_FAILED) return Status::IOError(Errno("mmap index segment"));
  base_ = p;
  length_ = length;
  // The memfd starts zeroed: every slot is empty and every atomic is 0.
  auto* h = new (p) SegmentHeader{};
  h->magic = kSegmentMagic;
  h->layout_version = kSegmentLayoutVersion;
  h->header_size = uint32_t(kSegmentHeaderBytes);
  h->capacity = capacity;
  h->base_count = base_count;
  h->base_min_key = base_count ? min_key : 0;
  h->base_max_key = base_count ? max_key : 0;
  h->directory_shift = dir.shift;
  h->directory_buckets = dir.buckets;
  h->generation = generation;
  return Status::Ok();
}

namespace {

// Fills the directory from the base already in place.
void BuildDirectory(void* base) {
  const auto* h = static_cast<const SegmentHeader*>(base);
  if (h->base_count == 0) return;
  const BaseEntry* entries = segment_detail::Base(base);
  auto* dir = const_cast<uint32_t*>(Directory(base));
  uint64_t bucket = 0;
  for (uint64_t i = 0; i < h->base_count; ++i) {
    const uint64_t b = (entries[i].key - h->base_min_key) >> h->directory_shift;
    while (bucket <= b) dir[bucket++] = uint32_t(i);
  }
  while (bucket <= h->directory_buckets) dir[bucket++] = uint32_t(h->base_count);
}

}  // namespace

Result<IndexSegmentWriter> IndexSegmentWriter::Create(const char* name, uint64_t capacity, uint64_t generation) {
  return CreateWithBase(name, nullptr, 0, capacity, generation);
}

Result<IndexSegmentWriter> IndexSegmentWriter::CreateForBase(const char* name, uint64_t count, uint64_t min_key,
                                                             uint64_t max_key, uint64_t capacity, uint64_t generation) {
  // Directory positions are u32: a base never holds more (a volume of 2^32
  // live needles would need a 64 GiB index).
  if (count > UINT32_MAX) return Status::Invalid("index segment base too large");
  if (count && (min_key == 0 || min_key > max_key || max_key - min_key < count - 1))
    return Status::Invalid("index segment base keys out of range");
  IndexSegmentWriter w;
  if (Status s = w.Allocate(name, capacity, count, min_key, max_key, generation); !s.ok()) return s;
  return w;
}

BaseEntry* IndexSegmentWriter::mutable_base() { return const_cast<BaseEntry*>(segment_detail::Base(base_)); }

void IndexSegmentWriter::FinishBase() { BuildDirectory(base_); }

Result<IndexSegmentWriter> IndexSegmentWriter::CreateWithBase(const char* name, const BaseEntry* base, uint64_t count,
                                                              uint64_t capacity, uint64_t generation) {
  auto w = CreateForBase(name, count, count ? base[0].key : 0, count ? base[count - 1].key : 0, capacity, generation);
  if (!w.ok()) return w.status();
  if (count) std::memcpy(w.value().mutable_base(), base, count * sizeof(BaseEntry));
  w.value().FinishBase();
  return w;
}

Result<IndexSegmentWriter> IndexSegmentWriter::Merged(const char* name, const IndexSegmentWriter& from, uint64_t capacity,
                                                      uint64_t generation) {
  // The delta's entries in key order; those the base lacks make it grow.
  std::vector<BaseEntry> delta;
  delta.reserve(from.used_slots());
  const Slot* slots = Slots(from.base_);
  for (uint64_t i = 0; i < from.capacity(); ++i) {
    const uint64_t k = slots[i].key.load(std::memory_order_relaxed);
    if (k != 0) delta.push_back({k, slots[i].value.load(std::memory_order_relaxed)});
  }
  std::sort(delta.begin(), delta.end(), [](const BaseEntry& a, const BaseEntry& b) { return a.key < b.key; });
  const BaseEntry* old = segment_detail::Base(from.base_);
  const uint64_t old_count = from.base_count();
  uint64_t added = 0;
  for (const BaseEntry& e : delta)
    if (uint64_t v; !BaseFind(from.base_, e.key, &v)) ++added;
  const uint64_t count = old_count + added;
  uint64_t min_key = 0, max_key = 0;
  if (count) {
    min_key = std::min(old_count ? old[0].key : UINT64_MAX, delta.empty() ? UINT64_MAX : delta.front().key);
    max_key = std::max(old_count ? old[old_count - 1].key : 0, delta.empty() ? 0 : delta.back().key);
  }
  auto made = CreateForBase(name, count, min_key, max_key, std::max(capacity, DeltaCapacityFor(count)), generation);
  if (!made.ok()) return made.status();
  IndexSegmentWriter& w = made.value();
  // Merge: the delta's value wins over the base's for the same key.
  BaseEntry* out = w.mutable_base();
  uint64_t i = 0, j = 0, n = 0;
  while (i < old_count || j < delta.size()) {
    if (j == delta.size() || (i < old_count && old[i].key < delta[j].key)) {
      out[n++] = old[i++];
    } else {
      if (i < old_count && old[i].key == delta[j].key) ++i;
      out[n++] = delta[j++];
    }
  }
  w.FinishBase();
  SegmentHeader* h = w.header();
  const SegmentHeader* fh = from.header();
  h->zero_key_value.store(fh->zero_key_value.load(std::memory_order_relaxed), std::memory_order_relaxed);
  h->read_only.store(fh->read_only.load(std::memory_order_relaxed), std::memory_order_relaxed);
  w.SetCounters(CountersOf(fh));
  return made;
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
  for (uint64_t probes = 0; probes < cap; ++probes, i = NextSlot(i, cap)) {
    const uint64_t k = slots[i].key.load(std::memory_order_relaxed);
    if (k == id) {
      slots[i].value.store(packed, std::memory_order_release);
      return true;
    }
    if (k == 0) {
      // Keep at least one empty slot so every reader probe terminates early.
      if (!CanTake(0)) return false;
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

}  // namespace kelp
