// A volume as its single writer (the supervisor) sees it: the .dat opened
// read-write, the .idx appended to, and the shared index segment it publishes.
// (upstream: weed/storage/volume*.go, needle_map_memory.go)
//
// Write ordering, the invariant readers depend on: needle bytes reach the .dat
// first, then the .idx entry, then the index segment, then (for fsync=true)
// both files are synced, and only then is the write acknowledged. A reader
// that finds a key in the segment always finds the complete needle in the .dat,
// and a record the .idx does not name was never acknowledged.
//
// Threads: mutations run on the disk writer of the volume's location (or, for
// administrative calls, on the event loop) and are serialised by `write_mu_`.
// What the event loop reads about a volume (counters, sizes, read-only, the
// segment to hand to a new worker) sits behind `state_mu_`, which is never held
// across disk I/O, so the loop never waits for a slow disk to answer a report.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/index_segment.h"
#include "common/needle.h"
#include "common/status.h"
#include "common/super_block.h"
#include "common/volume_info.h"
#include "storage/env.h"

namespace kelp {

struct VolumeFileNames {
  std::string dir;      // holds .dat and .vif
  std::string idx_dir;  // holds .idx (== dir unless -dir.idx is set)
  std::string collection;
  VolumeId id = 0;

  std::string Base(const std::string& d) const;  // d/collection_id or d/id
  // Go's Volume.FileName: index files (.idx, .cpx, .ldb, .cpldb, .rdb) in
  // idx_dir, every other extension in dir.
  std::string File(const std::string& ext) const;
  std::string Dat() const { return Base(dir) + ".dat"; }
  std::string Idx() const { return Base(idx_dir) + ".idx"; }
  std::string Vif() const { return Base(dir) + ".vif"; }
  // A compaction's files: the copy, its index, and the commit marker.
  std::string Cpd() const { return Base(dir) + ".cpd"; }
  std::string Cpx() const { return Base(idx_dir) + ".cpx"; }
  std::string Cpc() const { return Base(dir) + ".cpc"; }
};

struct AppendOutcome {
  uint64_t offset = 0;
  uint32_t size = 0;
};

// One write or delete, in and out. A batch of them is applied in order.
struct Mutation {
  enum class Kind { kPut, kDelete } kind = Kind::kPut;
  // kPut: a complete version-3 record built by a worker, already validated
  // (ValidateRecord). Its append_at_ns is patched in place.
  uint8_t* record = nullptr;
  size_t length = 0;
  // kPut: the key the .idx files it under; 0 is the record's own id (Go's
  // WriteNeedleBlob may file a needle under another key).
  NeedleId index_id = 0;
  // kPut: an overwrite must carry the live needle's cookie (WriteNeedleBlob skips that check).
  bool check_cookie = true;
  // kDelete
  NeedleId id = 0;
  Cookie cookie = 0;
  uint64_t append_at_ns_hint = 0;
  bool fsync = false;

  Status status;
  uint64_t offset = 0;  // kPut: where the record went
  uint32_t size = 0;    // kPut: the needle size; kDelete: the deleted needle's size (0: absent)
  std::optional<uint32_t> replaced;  // kPut: the size of the live needle it overwrote
  // Applied while a reader may still read a segment without it (see
  // Volume::answers_via_loop): acknowledge only once every reader switched.
  bool held_for_switch = false;
};

// Go's refusal of an overwrite or delete that names the needle with another cookie.
std::string CookieMismatchText(Cookie cookie);

// A record from a worker is appended only if it is one well-formed version-3
// needle of exactly `length` bytes whose data CRC matches.
Status ValidateRecord(const uint8_t* record, size_t length);

// What a load found past the last indexed record and did about it.
struct CompactionStart {
  SuperBlock super_block;
  uint64_t idx_end = 0, dat_end = 0;
  uint64_t content_bytes = 0, deleted_bytes = 0;
};

struct TailRepair {
  uint64_t truncated_from = 0, truncated_to = 0;  // .dat bytes cut (from == to: none)
  int complete_records = 0;                       // whole, CRC-valid, never indexed
  bool torn_record = false;                       // a last record cut short
  uint64_t idx_bytes_cut = 0;                     // a partial .idx entry
  std::vector<NeedleId> missing;                  // indexed, data absent: acknowledged writes lost by the disk
};

// A new segment waiting to be announced to the workers.
struct SegmentReplacement {
  uint64_t generation = 0;
  int fd = -1;  // a duplicate, owned by the caller
};

class Volume {
 public:
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  // Loads an existing volume and heals its tail (see docs/architecture.md,
  // "Volume loading"). Damage it cannot heal does not fail the load: the
  // volume comes up read-only with `load_warning()` set, as Go does.
  // `generation` is the first index segment's (a reload continues the old count).
  static Result<std::unique_ptr<Volume>> Load(const VolumeFileNames& names, int offset_bytes, Env* env = Env::Default(),
                                              uint64_t generation = 1);
  // Creates a new, empty volume; fails if its .dat already exists.
  static Result<std::unique_ptr<Volume>> Create(const VolumeFileNames& names, const SuperBlock& sb, int offset_bytes,
                                                Env* env = Env::Default());

  // Applies mutations in order with one .idx write and at most one sync for
  // the batch. Each mutation gets its own status.
  void Apply(Mutation* const* batch, size_t count);
  // One-mutation conveniences.
  Result<AppendOutcome> Append(uint8_t* record, size_t len, NeedleId index_id = 0, bool check_cookie = true);
  Result<uint32_t> Delete(NeedleId id, Cookie cookie, uint64_t append_at_ns_hint = 0);

  // Reads and verifies the live needle `id`; `record` owns the bytes `out` views.
  // NotFound ("not found" / "already deleted", Go's texts) otherwise.
  Status ReadNeedle(NeedleId id, std::string* record, ParsedNeedle* out) const;
  // Up to `length` .dat bytes at `offset` into `out` (resized to what was
  // read: shorter only at the end of the file).
  Status ReadAt(uint64_t offset, size_t length, std::string* out) const;

  // Makes everything written so far durable; a failure makes the volume read-only for good.
  Status Sync();
  // Writes back what is dirty in both files without holding the volume's
  // writes, so that a sync made under them later (a commit's) has little
  // left to do. Proves nothing: only Sync and the commit's own sync count.
  void WriteBackAhead() const;
  Status SetReadOnly(bool read_only, bool persist);
  // Marks the volume gone: queued mutations then fail as "not found".
  void Retire();
  bool retired() const { return retired_; }

  // Vacuum (storage/compaction.h). One flag, shared by compaction and
  // commit, says one of them runs; the loser of a race does nothing (Go's).
  bool TryBeginCompaction() { return !compacting_.exchange(true); }
  void EndCompaction() { compacting_ = false; }
  bool compacting() const { return compacting_; }
  // Syncs both files and records where the copy starts (the commit replays
  // the rest of the .idx). Blocks the volume's writes only for the syncs.
  CompactionStart BeginCopy();
  // A copy that failed: its files are removed and a commit will not use them.
  void AbandonCopy();
  // Go's garbage ratio: deleted bytes over content bytes, from the counters.
  double GarbageRatio() const;
  // The commit: with this volume's writes held, carries over what was
  // written since BeginCopy, swaps the copy in and loads the result, which
  // replaces this (now retired) volume. Runs on the volume's writer thread.
  // An error before the commit marker leaves this volume as it was; after
  // it, the result is loaded if the swap can be finished, or the error says
  // the volume must go offline (`offline`).
  Result<std::unique_ptr<Volume>> CommitCompaction(bool* offline);
  // Set while a write could be missing from a segment some reader still
  // reads: after a compaction's swap until every reader has the new files,
  // and during a segment handover once the old segment could not take a new
  // key. Each write applied meanwhile is marked Mutation::held_for_switch.
  bool answers_via_loop() const { return answers_via_loop_; }

  // A segment grown since the last call, to announce to the workers.
  std::optional<SegmentReplacement> TakeSegmentReplacement();
  // A replacement is waiting to be taken (any thread).
  bool AnnouncePending() const;
  // Every reader has switched to `generation`: the old segment is released.
  void FinishHandover(uint64_t generation);
  // An old segment is still kept up to date for readers that have not switched.
  bool handover_pending() const;
  // The published segment's descriptor (duplicated) and generation, for a new reader.
  std::pair<int, uint64_t> DupSegment() const;
  uint64_t DupSegmentGeneration() const;  // the published segment's generation

  VolumeId id() const { return names_.id; }
  const std::string& collection() const { return names_.collection; }
  const VolumeFileNames& names() const { return names_; }
  const SuperBlock& super_block() const { return super_block_; }
  uint8_t version() const { return super_block_.version; }
  int offset_bytes() const { return offset_bytes_; }
  bool read_only() const;
  std::string load_warning() const;
  const TailRepair& tail_repair() const { return repair_; }
  uint64_t dat_size() const;
  uint64_t idx_size() const;
  SegmentCounters counters() const;
  VolumeInfo info() const;
  int dat_fd() const { return dat_fd_; }
  std::optional<IndexValue> Lookup(NeedleId id) const;

 private:
  Volume(VolumeFileNames names, int offset_bytes, Env* env, uint64_t generation = 1)
      : names_(std::move(names)), offset_bytes_(offset_bytes), env_(env), first_generation_(generation) {}
  Status OpenFiles(bool create);
  Status ReplayIndex(uint64_t* indexed_end);
  Status HealTail(uint64_t indexed_end);
  void CheckTail();
  void PutOne(Mutation* m, std::vector<uint8_t>* idx_out, std::vector<std::pair<NeedleId, IndexValue>>* pending);
  void DeleteOne(Mutation* m, std::vector<uint8_t>* idx_out, std::vector<std::pair<NeedleId, IndexValue>>* pending);
  std::optional<IndexValue> LookupForWrite(NeedleId id, const std::vector<std::pair<NeedleId, IndexValue>>& pending) const;
  void RecordPut(NeedleId id, uint32_t size, std::optional<IndexValue> old);
  // Makes room in the segment for `keys` new keys before anything of the
  // batch is written, merging when the load ceiling would be passed; an
  // error refuses the batch and changes nothing. With write_mu_ held.
  Status ReserveIndexRoom(size_t keys);
  Status PublishLocked(const std::vector<std::pair<NeedleId, IndexValue>>& entries);
  void EncodeIdx(NeedleId id, uint64_t offset_units, int32_t size, std::vector<uint8_t>* out) const;
  uint64_t NextAppendAtNs(uint64_t hint);
  Result<uint32_t> StoredSize(const IndexValue& v) const;
  Status SaveInfo(const VolumeInfo& info);
  void FailSync(const std::string& why);
  void UndoDat(uint64_t to);
  Status AppendError(const Status& s, uint32_t size, uint64_t actual) const;
  void UpdateSnapshot();

  const VolumeFileNames names_;
  const int offset_bytes_;
  Env* const env_;
  const uint64_t first_generation_;
  SuperBlock super_block_;
  int dat_fd_ = -1;
  int idx_fd_ = -1;

  // Writer state: touched only with write_mu_ held.
  mutable std::mutex write_mu_;
  uint64_t dat_end_ = 0;
  uint64_t idx_end_ = 0;
  uint64_t last_append_at_ns_ = 0;
  SegmentCounters counters_;
  std::atomic<bool> retired_{false};
  std::atomic<bool> compacting_{false};
  std::atomic<bool> answers_via_loop_{false};
  std::optional<CompactionStart> copy_start_;  // the last BeginCopy's, for the commit
  TailRepair repair_;

  // Published state: written with both locks held, read with state_mu_ only.
  mutable std::mutex state_mu_;
  IndexSegmentWriter segment_;
  std::optional<IndexSegmentWriter> trailing_;  // the old segment while readers switch
  // trailing_ could not take a key: it is no longer updated, and writes are
  // answered only after the switch (answers_via_loop_).
  bool trailing_stale_ = false;
  bool announce_pending_ = false;
  bool read_only_ = false;
  bool opened_read_only_ = false;  // the files could not be opened for writing
  bool sync_failed_ = false;       // sticky: see FailSync
  std::string load_warning_;
  VolumeInfo info_;
  SegmentCounters snapshot_;
  uint64_t idx_size_snapshot_ = 0;
};

}  // namespace kelp
