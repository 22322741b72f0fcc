// Vacuum on disk: copying a volume's live needles into <base>.cpd/.cpx,
// carrying over what was written meanwhile, swapping the copy in behind a
// <base>.cpc commit marker, and finishing or undoing an interrupted swap at
// load. The files are Go's, so either server loads what the other left.
// (upstream: weed/storage/volume_vacuum.go; the behaviour is docs/vacuum.md)
//
// Crash safety, the invariant every step keeps: until the marker exists the
// old .dat/.idx are complete (writes made during the copy included) and a
// load rolls back; once it exists the copy is complete and fsynced, and a
// load rolls forward. The marker is removed only after both renames.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "common/super_block.h"
#include "storage/env.h"
#include "storage/volume.h"

namespace kelp {

struct CompactionOptions {
  int64_t preallocate = 0;       // bytes reserved for .cpd (FALLOC_FL_KEEP_SIZE)
  int64_t bytes_per_second = 0;  // 0: unthrottled
  uint64_t now_s = 0;            // "now" for TTL expiry; 0: the wall clock
  // Called before each live needle with its offset in the old .dat; false
  // interrupts the copy.
  std::function<bool(uint64_t source_offset)> progress;
};

struct CompactionOutcome {
  uint64_t copied = 0;         // needles written to .cpd
  uint64_t dropped = 0;        // unreadable needles left behind
  uint64_t dropped_bytes = 0;
  uint64_t expired = 0;        // TTL-expired needles left behind
  uint64_t cpd_size = 0;
};

// The four descriptors of a copy: the old .idx and .dat read-only, and the
// new .cpd (read-write) and .cpx (write-only), created empty. Closed with it.
struct CompactionFiles {
  explicit CompactionFiles(Env* env) : env_(env) {}
  ~CompactionFiles();
  CompactionFiles(CompactionFiles&& o) noexcept;
  CompactionFiles& operator=(CompactionFiles&&) = delete;
  int idx = -1, dat = -1, cpd = -1, cpx = -1;

 private:
  Env* env_;
};

// Opens the old files and creates the new ones (an older .cpx is removed
// first), reserving `preallocate` bytes of .cpd.
Result<CompactionFiles> OpenCompactionFiles(const VolumeFileNames& names, int64_t preallocate, Env* env);

// The copy itself, over descriptors only (the job worker runs it): writes the
// superblock with the revision bumped, then every live needle of the plan's
// .idx prefix in ascending id order, re-encoded, and their rows to .cpx; both
// fsynced. `names` is used in messages only.
Result<CompactionOutcome> CopyLiveNeedlesInto(const CompactionFiles& files, const VolumeFileNames& names, int offset_bytes,
                                              const CompactionStart& plan, const CompactionOptions& options, Env* env);

// Opens and copies in one call (tests, and servers without a job worker).
Result<CompactionOutcome> CopyLiveNeedles(const VolumeFileNames& names, int offset_bytes, const CompactionStart& plan,
                                          const CompactionOptions& options, Env* env);

// What the supervisor checks of a copy another process wrote before a commit
// may use it: the outcome accounts for every live needle of the plan; .cpd
// starts with the expected superblock; .cpx rows are live ids in ascending
// order whose records lie back to back to the end of .cpd, each headed by its
// row's id and size. (Needle bodies are not re-read: every read checks their CRC.)
Status CheckCompactedCopy(const VolumeFileNames& names, int offset_bytes, const CompactionStart& plan, const CompactionOutcome& claimed,
                          Env* env);

// Go's makeupDiff: appends to .cpd/.cpx what the old .idx holds past
// `idx_from` (the newest row per key): live needles as raw bytes, anything
// else as a fake tombstone. `revision` is the old .dat's expected revision.
// The caller holds the volume's writes still.
Status CarryOverWrites(const VolumeFileNames& names, int offset_bytes, uint64_t idx_from, uint16_t revision, uint8_t version, Env* env);

// The commit point and the swap: .cpc written and fsynced, .cpd->.dat,
// .cpx->.idx, directories fsynced, .ldb/.rdb removed, .cpc removed.
// Refuses (leaving no marker) when .cpd or .cpx is missing. `committed` is
// set once the marker exists: a failure after that is finished by
// ReconcileCompaction, never undone.
Status SwapInCompacted(const VolumeFileNames& names, Env* env, bool* committed);

// Unlinks .cpd, .cpx, .cpldb and .cpc; refuses while a commit marker exists.
Status RemoveCompactionFiles(const VolumeFileNames& names, Env* env);

// At load, before the volume is opened: with a .cpc the swap is finished,
// without one any .cpd/.cpx is removed. True when something was done.
Result<bool> ReconcileCompaction(const VolumeFileNames& names, Env* env);

// Go's fake tombstone (cookie 0x12345678, no data) for a version 2 or 3 volume.
std::string FakeTombstone(NeedleId id, uint8_t version, uint64_t append_at_ns);

}  // namespace kelp
