// A volume's needle index in shared memory (a sealed memfd), written by the
// supervisor only and read lock-free by worker processes.
//
// Layout: one 4 KiB SegmentHeader, then three regions:
//   delta:     `capacity` 16-byte slots {key u64, value u64}, open addressing
//              with linear probing (home slot: the hashed key scaled to the
//              capacity), for the keys written since the segment was built;
//   base:      `base_count` 16-byte entries {key u64, value u64}, keys strictly
//              ascending, immutable once the segment is published;
//   directory: `directory_buckets + 1` u32 positions into the base: bucket b
//              holds the keys k with (k - base_min_key) >> directory_shift == b,
//              at base positions [directory[b], directory[b + 1]).
// A lookup probes the delta first; the base answers only for keys the delta
// does not hold. The base costs 16 bytes per needle plus half a byte of
// directory; the delta is kept at about 1/16 of the base (DeltaCapacityFor), so
// a loaded volume costs about 17.5 bytes per needle.
// Invariants:
//  * Single writer. Readers map the segment read-only.
//  * The base and directory are written before the segment is handed to any
//    reader and never change afterwards.
//  * A delta slot's key, once set, never changes; slots are never freed (a
//    delete rewrites the value with the deleted bit), so probing stays valid.
//  * The writer stores the value before the key (release); a reader that sees
//    the key (acquire) sees a complete value. Values are single 8-byte atomics,
//    so no reader ever observes a torn entry.
//  * Needle id 0 lives in the header (zero_key_value) because key 0 marks an
//    empty delta slot; it is never in the base either.
//  * When the delta is too full, the writer builds a new segment whose base is
//    this one's base merged with its delta, publishes it to every reader, and
//    keeps writing both until every reader has switched; then it sets
//    `superseded` on the old one and unmaps it.
//  * The size of the memfd is sealed: a reader's mapping can never be cut short.
#pragma once
#include <atomic>
#include <cstdint>
#include <optional>

#include "common/status.h"
#include "common/types.h"

namespace kelp {

// Packed slot value: bits 0..39 offset in 8-byte units, bit 40 deleted,
// bits 41..63 needle size, or kSizeUnknown when it does not fit in 23 bits
// (the reader then takes the size from the needle header on disk).
struct IndexValue {
  uint64_t offset_units = 0;
  uint32_t size = 0;  // the needle's size field (body size), never negative here
  bool deleted = false;
  bool size_known = true;

  static constexpr uint32_t kSizeUnknown = (1u << 23) - 1;
  uint64_t Pack() const;
  static IndexValue Unpack(uint64_t v);
};

struct SegmentCounters {
  uint64_t file_count = 0;      // live needles
  uint64_t deleted_count = 0;
  uint64_t deleted_bytes = 0;
  uint64_t content_size = 0;    // bytes of live needle bodies
  uint64_t max_file_key = 0;
  uint64_t dat_size = 0;        // .dat length including superblock
  uint64_t last_modified_s = 0; // newest write, unix seconds
};

struct alignas(64) SegmentHeader {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t header_size;
  uint64_t capacity;  // delta slots
  uint64_t base_count;
  uint64_t base_min_key, base_max_key;
  uint64_t directory_shift, directory_buckets;
  uint64_t generation;
  std::atomic<uint64_t> superseded;
  std::atomic<uint64_t> used_slots;
  std::atomic<uint64_t> zero_key_value;
  std::atomic<uint64_t> read_only;
  std::atomic<uint64_t> file_count, deleted_count, deleted_bytes, content_size, max_file_key, dat_size, last_modified_s;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared atomics must be lock-free");

inline constexpr uint64_t kSegmentMagic = 0x4b454c5049445831ull;  // "KELPIDX1"
inline constexpr uint32_t kSegmentLayoutVersion = 2;
inline constexpr size_t kSegmentHeaderBytes = 4096;

// One entry of the base: a key and its packed IndexValue.
struct BaseEntry {
  uint64_t key;
  uint64_t value;
};

// The delta a segment gets for a base of `base_count` entries: 1/16 of the
// base, at least 4096 slots, in whole pages.
uint64_t DeltaCapacityFor(uint64_t base_count);

// Read side: maps a segment fd read-only.
class IndexSegmentReader {
 public:
  IndexSegmentReader() = default;
  ~IndexSegmentReader();
  IndexSegmentReader(const IndexSegmentReader&) = delete;
  IndexSegmentReader& operator=(const IndexSegmentReader&) = delete;
  IndexSegmentReader(IndexSegmentReader&& o) noexcept { *this = std::move(o); }
  IndexSegmentReader& operator=(IndexSegmentReader&& o) noexcept;

  // Validates magic, layout and size; does not keep `fd`.
  static Result<IndexSegmentReader> Map(int fd);

  std::optional<IndexValue> Lookup(NeedleId id) const;
  SegmentCounters Counters() const;
  bool ReadOnly() const { return header()->read_only.load(std::memory_order_acquire) != 0; }
  uint64_t Generation() const { return header()->generation; }
  bool Superseded() const { return header()->superseded.load(std::memory_order_acquire) != 0; }
  bool valid() const { return base_ != nullptr; }

 private:
  const SegmentHeader* header() const { return reinterpret_cast<const SegmentHeader*>(base_); }
  void* base_ = nullptr;
  size_t length_ = 0;
};

// Write side: owns the memfd. Only the supervisor creates these.
class IndexSegmentWriter {
 public:
  IndexSegmentWriter() = default;
  ~IndexSegmentWriter();
  IndexSegmentWriter(const IndexSegmentWriter&) = delete;
  IndexSegmentWriter& operator=(const IndexSegmentWriter&) = delete;
  IndexSegmentWriter(IndexSegmentWriter&& o) noexcept { *this = std::move(o); }
  IndexSegmentWriter& operator=(IndexSegmentWriter&& o) noexcept;

  // An empty base and a delta of `capacity` slots, rounded up to whole pages
  // (256 slots), minimum 1024.
  static Result<IndexSegmentWriter> Create(const char* name, uint64_t capacity, uint64_t generation);
  // `base` as the base (keys strictly ascending, none 0) and a delta of
  // `capacity` slots, rounded as above.
  static Result<IndexSegmentWriter> CreateWithBase(const char* name, const BaseEntry* base, uint64_t count,
                                                   uint64_t capacity, uint64_t generation);
  // A segment whose base the caller writes in place: exactly `count`
  // entries, keys strictly ascending from `min_key` to `max_key` (none 0),
  // through mutable_base(), then FinishBase(); only then may a reader map it.
  static Result<IndexSegmentWriter> CreateForBase(const char* name, uint64_t count, uint64_t min_key, uint64_t max_key,
                                                  uint64_t capacity, uint64_t generation);
  BaseEntry* mutable_base();
  void FinishBase();  // builds the directory over the written base
  // A new segment holding every entry of `from` (its delta merged into its
  // base), with its header state and a delta of at least `capacity` slots.
  static Result<IndexSegmentWriter> Merged(const char* name, const IndexSegmentWriter& from, uint64_t capacity,
                                           uint64_t generation);

  // Returns false only when the table is too full to take a new key.
  bool Put(NeedleId id, const IndexValue& v);
  std::optional<IndexValue> Get(NeedleId id) const;
  void SetCounters(const SegmentCounters& c);
  void SetReadOnly(bool ro);
  void MarkSuperseded();

  int fd() const { return fd_; }
  uint64_t capacity() const { return header()->capacity; }  // delta slots
  uint64_t used_slots() const { return header()->used_slots.load(std::memory_order_relaxed); }  // in the delta
  uint64_t base_count() const { return header()->base_count; }
  uint64_t generation() const { return header()->generation; }
  // Whether `keys` more new keys keep the delta's load at most 3/4 (probes
  // stay short); past that a merge is due.
  bool UnderCeilingWith(uint64_t keys) const { return (used_slots() + keys + 1) * 4 <= capacity() * 3; }
  // Whether Put can take `keys` more new keys at all: it keeps one slot
  // empty so that every probe ends.
  bool CanTake(uint64_t keys) const { return used_slots() + keys + 2 <= capacity(); }

  template <typename F>
  void ForEach(F&& f) const;  // f(NeedleId, IndexValue): every entry, in no particular order

 private:
  Status Allocate(const char* name, uint64_t capacity, uint64_t base_count, uint64_t min_key, uint64_t max_key,
                  uint64_t generation);
  SegmentHeader* header() const { return reinterpret_cast<SegmentHeader*>(base_); }
  void* base_ = nullptr;
  size_t length_ = 0;
  int fd_ = -1;
};

namespace segment_detail {
struct Slot {
  std::atomic<uint64_t> key;
  std::atomic<uint64_t> value;
};
static_assert(sizeof(Slot) == 16 && sizeof(BaseEntry) == 16);
inline Slot* Slots(void* base) { return reinterpret_cast<Slot*>(static_cast<char*>(base) + kSegmentHeaderBytes); }
inline const BaseEntry* Base(const void* base) {
  const auto* h = static_cast<const SegmentHeader*>(base);
  return reinterpret_cast<const BaseEntry*>(static_cast<const char*>(base) + kSegmentHeaderBytes + h->capacity * sizeof(Slot));
}
// Whether the delta holds `id` (not 0), and then its packed value.
bool DeltaFind(const void* base, NeedleId id, std::memory_order order, uint64_t* value);
}  // namespace segment_detail

template <typename F>
void IndexSegmentWriter::ForEach(F&& f) const {
  if (uint64_t v = header()->zero_key_value.load(std::memory_order_relaxed)) f(NeedleId(0), IndexValue::Unpack(v));
  const BaseEntry* entries = segment_detail::Base(base_);
  for (uint64_t i = 0; i < base_count(); ++i)
    if (uint64_t shadowed; !segment_detail::DeltaFind(base_, entries[i].key, std::memory_order_relaxed, &shadowed))
      f(NeedleId(entries[i].key), IndexValue::Unpack(entries[i].value));
  auto* slots = segment_detail::Slots(base_);
  for (uint64_t i = 0; i < capacity(); ++i) {
    const uint64_t k = slots[i].key.load(std::memory_order_relaxed);
    if (k != 0) f(NeedleId(k), IndexValue::Unpack(slots[i].value.load(std::memory_order_relaxed)));
  }
}

}  // namespace kelp
