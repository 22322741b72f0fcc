#include "storage/volume.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/idx_entry.h"
#include "common/log.h"
#include "storage/compaction.h"

namespace kelp {

namespace {

// One .idx entry as the replay keeps it.
struct Replayed {
  NeedleId id;
  uint64_t offset_units;
  int32_t size;
};

// A large array for the length of one load, in its own mapping: huge pages
// where the kernel grants them (one fault per 2 MiB instead of per 4 KiB), and
// every byte back to the system when it goes.
template <typename T>
class ScratchArray {
 public:
  explicit ScratchArray(uint64_t n) : bytes_(std::max<uint64_t>(n, 1) * sizeof(T)) {
    // Reserved, not committed: a load touches only what it writes.
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return;
    madvise(p, bytes_, MADV_HUGEPAGE);
    data_ = static_cast<T*>(p);
  }
  ~ScratchArray() {
    if (data_) munmap(data_, bytes_);
  }
  ScratchArray(const ScratchArray&) = delete;
  ScratchArray& operator=(const ScratchArray&) = delete;
  bool ok() const { return data_ != nullptr; }
  T* data() { return data_; }
  T& operator[](uint64_t i) { return data_[i]; }

 private:
  size_t bytes_;
  T* data_ = nullptr;
};

// Sorts by id, keeping the order of equal ids, by merging the ascending runs
// the array already has: the out-of-order entries of an .idx (deletes and
// overwrites of older keys) come in few runs when they come in batches, and a
// merge of k runs costs log2(k) linear passes instead of a full sort's log2(n).
void SortRunsById(Replayed* first, Replayed* last) {
  std::vector<Replayed*> bounds{first};
  for (Replayed* p = first + 1; p < last; ++p)
    if (p->id < (p - 1)->id) bounds.push_back(p);
  bounds.push_back(last);
  const auto by_id = [](const Replayed& a, const Replayed& b) { return a.id < b.id; };
  while (bounds.size() > 2) {
    std::vector<Replayed*> merged{first};
    for (size_t i = 0; i + 2 < bounds.size(); i += 2) {
      std::inplace_merge(bounds[i], bounds[i + 1], bounds[i + 2], by_id);  // stable: the left run's entries first
      merged.push_back(bounds[i + 2]);
    }
    if (bounds.size() % 2 == 0) merged.push_back(last);  // an odd run out waits for the next pass
    bounds = std::move(merged);
  }
}

}  // namespace

std::string VolumeFileNames::File(const std::string& ext) const {
  const bool index = ext == ".idx" || ext == ".cpx" || ext == ".ldb" || ext == ".cpldb" || ext == ".rdb";
  return Base(index ? idx_dir : dir) + ext;
}

std::string VolumeFileNames::Base(const std::string& d) const {
  const std::string name = collection.empty() ? std::to_string(id) : collection + "_" + std::to_string(id);
  return d + "/" + name;
}

std::string CookieMismatchText(Cookie cookie) {
  char msg[64];
  std::snprintf(msg, sizeof msg, "mismatching cookie %x", cookie);
  return msg;
}

Status ValidateRecord(const uint8_t* record, size_t length) {
  if (length < size_t(kNeedleHeaderSize)) return Status::Invalid("needle record too short");
  const NeedleHeader h = ParseNeedleHeader(record);
  if (int32_t(h.size) < 0 || ActualSize(h.size, 3) != length) return Status::Invalid("needle record length does not match its size field");
  if (h.id == 0 && h.cookie == 0 && h.size == 0) return Status::Invalid("empty needle record");
  ParsedNeedle n;
  if (Status s = ParseNeedle(record, length, h.size, 3, &n); !s.ok()) return Status::Invalid("needle record rejected: " + s.message());
  // Padding is fixed by the format: the record must be exactly what an encoder writes.
  const uint8_t* pad = record + kNeedleHeaderSize + h.size + kNeedleChecksumSize + kTimestampSize;
  uint8_t want[8];
  PutPaddingV3(want, h.size);
  if (std::memcmp(pad, want, PaddingLength(h.size, 3)) != 0) return Status::Invalid("needle record padding is not canonical");
  return Status::Ok();
}

Volume::~Volume() {
  if (dat_fd_ >= 0) env_->Close(dat_fd_);
  if (idx_fd_ >= 0) env_->Close(idx_fd_);
}

Status Volume::OpenFiles(bool create) {
  const std::string dat = names_.Dat();
  const int flags = O_RDWR | (create ? O_CREAT | O_EXCL : 0);
  dat_fd_ = env_->Open(dat, flags, 0644);
  if (dat_fd_ < 0 && !create && (errno == EACCES || errno == EROFS)) {
    dat_fd_ = env_->Open(dat, O_RDONLY, 0);
    if (dat_fd_ >= 0) {
      read_only_ = opened_read_only_ = true;
      load_warning_ = "opening " + dat + " in READONLY mode";
    }
  }
  if (dat_fd_ < 0) {
    if (create && errno == EEXIST) return Status::AlreadyExists("volume data file " + dat + " already exists");
    return Status::IOError(ErrnoMessage("open " + dat));
  }
  const std::string idx = names_.Idx();
  idx_fd_ = env_->Open(idx, opened_read_only_ ? O_RDONLY : O_RDWR | O_CREAT, 0644);
  if (idx_fd_ < 0) return Status::IOError(ErrnoMessage("open " + idx));
  return Status::Ok();
}

Result<std::unique_ptr<Volume>> Volume::Create(const VolumeFileNames& names, const SuperBlock& sb, int offset_bytes, Env* env) {
  std::unique_ptr<Volume> v(new Volume(names, offset_bytes, env));
  if (FileExists(names.Idx()) && !FileExists(names.Dat())) {
    // A stray index without data would be replayed against the wrong needles.
    if (env->Unlink(names.Idx()) != 0) return Status::IOError(ErrnoMessage("remove stale " + names.Idx()));
  }
  Status s = v->OpenFiles(true);
  if (!s.ok()) return s;
  v->super_block_ = sb;
  const std::string block = sb.Encode();
  if (s = EnvPwriteFull(env, v->dat_fd_, block.data(), block.size(), 0); !s.ok()) return s;
  if (env->Ftruncate(v->idx_fd_, 0) != 0) return Status::IOError(ErrnoMessage("truncate " + names.Idx()));
  v->dat_end_ = block.size();
  auto seg = IndexSegmentWriter::Create(("kelp-idx-" + std::to_string(names.id)).c_str(), 1024, 1);
  if (!seg.ok()) return seg.status();
  v->segment_ = std::move(seg.value());
  v->counters_.dat_size = v->dat_end_;
  VolumeInfo info;
  info.version = sb.version;
  info.bytes_offset = uint32_t(offset_bytes);
  info.replication = sb.replica_placement.String();
  if (s = v->SaveInfo(info); !s.ok()) return s;  // also syncs the data directory
  if (env->Fdatasync(v->dat_fd_) != 0) return Status::IOError(ErrnoMessage("fsync " + names.Dat()));
  if (names.idx_dir != names.dir && env->SyncDir(names.idx_dir) != 0) return Status::IOError(ErrnoMessage("fsync " + names.idx_dir));
  v->UpdateSnapshot();
  return v;
}

Result<std::unique_ptr<Volume>> Volume::Load(const VolumeFileNames& names, int offset_bytes, Env* env, uint64_t generation) {
  std::unique_ptr<Volume> v(new Volume(names, offset_bytes, env, generation));
  bool vif_exists = false;
  auto info = LoadVolumeInfo(names.Vif(), &vif_exists);
  if (!info.ok()) return info.status();
  v->info_ = info.value();
  if (v->info_.has_remote_files) return Status::Invalid("volume " + std::to_string(names.id) + " is tiered to remote storage, which is not supported");
  // Go checks this only for tiered volumes; reading a .idx with the wrong entry
  // width would misplace every needle, and appending would corrupt it for Go too.
  if (vif_exists && v->info_.bytes_offset != 0 && int(v->info_.bytes_offset) != offset_bytes)
    return Status::Invalid("BytesOffset mismatch in volume info file " + names.Vif() + ": the volume uses " +
                           std::to_string(v->info_.bytes_offset) + "-byte offsets, this build " + std::to_string(offset_bytes) +
                           " (build with make OFFSET_BYTES=" + std::to_string(v->info_.bytes_offset) + ")");
  if (!FileExists(names.Dat())) return Status::NotFound("volume data file " + names.Dat() + " does not exist");
  struct stat st;
  if (stat(names.Dat().c_str(), &st) == 0 && st.st_size > kSuperBlockSize && !FileExists(names.Idx()))
    return Status::NotFound("idx file " + names.Idx() + " does not exists");
  Status s = v->OpenFiles(false);
  if (!s.ok()) return s;

  auto size = EnvFileSize(env, v->dat_fd_);
  if (!size.ok()) return size.status();
  v->dat_end_ = uint64_t(size.value());
  uint8_t head[kSuperBlockSize];
  if (v->dat_end_ < uint64_t(kSuperBlockSize) || !EnvPreadFull(env, v->dat_fd_, head, sizeof head, 0).ok())
    return Status::Corruption("cannot read volume " + std::to_string(names.id) + " super block: file too short");
  auto sb = ParseSuperBlockHeader(head);
  if (!sb.ok()) return sb.status();
  v->super_block_ = sb.value();
  if (const uint16_t extra = ExtraSizeOf(head); extra > 0) {
    v->super_block_.extra.resize(extra);
    if (!EnvPreadFull(env, v->dat_fd_, v->super_block_.extra.data(), extra, kSuperBlockSize).ok())
      return Status::Corruption("cannot read volume " + std::to_string(names.id) + " super block extra");
  }
  // The .vif's replication wins over the superblock's: it is where Go's
  // VolumeConfigure records a change.
  if (!v->info_.replication.empty()) {
    auto rp = ParseReplicaPlacement(v->info_.replication);
    if (!rp.ok())
      return Status::Corruption("Error parse volume " + std::to_string(names.id) + " replication " + v->info_.replication + " : " +
                                rp.status().message());
    v->super_block_.replica_placement = rp.value();
  }
  if (v->info_.read_only) v->read_only_ = true;
  uint64_t indexed_end = 0;
  if (s = v->ReplayIndex(&indexed_end); !s.ok()) return s;
  if (s = v->HealTail(indexed_end); !s.ok()) return s;
  v->CheckTail();
  if (!vif_exists) {
    VolumeInfo fresh = v->info_;
    fresh.version = v->super_block_.version;
    fresh.bytes_offset = uint32_t(offset_bytes);
    if (Status vs = v->SaveInfo(fresh); !vs.ok()) KLOG_WARN("volume %u failed to save file info: %s", names.id, vs.message().c_str());
  }
  v->segment_.SetReadOnly(v->read_only_);
  v->UpdateSnapshot();
  return v;
}

void Volume::RecordPut(NeedleId id, uint32_t size, std::optional<IndexValue> old) {
  // Go's needle map metrics: every put counts as a file; replacing a live
  // needle also counts the old one as deleted.
  counters_.file_count++;
  counters_.content_size += size;
  if (id > counters_.max_file_key) counters_.max_file_key = id;
  if (old && !old->deleted && old->offset_units != 0) {
    counters_.deleted_count++;
    counters_.deleted_bytes += old->size;
  }
}

Status Volume::ReplayIndex(uint64_t* indexed_end) {
  auto size = EnvFileSize(env_, idx_fd_);
  if (!size.ok()) return size.status();
  const int entry = IdxEntrySize(offset_bytes_);
  const uint64_t idx_bytes = uint64_t(size.value());
  const uint64_t entries = idx_bytes / entry;
  idx_end_ = entries * entry;
  if (idx_bytes != idx_end_) {
    // A partial entry is an append the writer never finished, so never
    // acknowledged: it is cut (unless the files cannot be written, as Go).
    if (opened_read_only_) {
      read_only_ = true;
      load_warning_ = "index file's size is " + std::to_string(idx_bytes) + " bytes, maybe corrupted";
    } else {
      if (env_->Ftruncate(idx_fd_, off_t(idx_end_)) != 0 || env_->Fdatasync(idx_fd_) != 0)
        return Status::IOError(ErrnoMessage("truncate partial entry of " + names_.Idx()));
      repair_.idx_bytes_cut = idx_bytes - idx_end_;
      KLOG_WARN("volume %u: cut a partial .idx entry at bytes [%llu, %llu): an append that was never acknowledged", id(),
                static_cast<unsigned long long>(idx_end_), static_cast<unsigned long long>(idx_bytes));
    }
  }
  // The segment's base is every key's final value in key order. Each key's
  // entries are replayed in the order they were appended, which gives the
  // value and the counters a replay of the whole file gives.
  // The entries are split as the file is read: those whose key is at least
  // every key before them (the "spine": a volume's appends, since a master
  // hands out growing keys) stay in the file, and the rest (deletes and
  // overwrites of older keys) are kept aside and sorted by key, stably.
  // Key order is then the spine, streamed from the file again, merged with
  // the sorted side. For a key both hold, every spine entry comes before
  // every side entry in the file (a side entry's key is below a key read
  // before it, so no spine entry with its key can follow it), so the merge
  // takes the spine's first. Memory beyond the segment: the side only.
  std::vector<uint8_t> buf(size_t(entry) * 4096);
  const auto for_each_entry = [&](auto&& visit) -> Status {
    for (uint64_t done = 0; done < entries;) {
      const uint64_t n = std::min<uint64_t>(entries - done, 4096);
      if (Status s = EnvPreadFull(env_, idx_fd_, buf.data(), n * entry, off_t(done * entry)); !s.ok()) return s;
      for (uint64_t i = 0; i < n; ++i) visit(done + i, DecodeIdxEntry(buf.data() + i * entry, offset_bytes_));
      done += n;
    }
    return Status::Ok();
  };
  const auto is_put = [](uint64_t offset_units, int32_t size) { return offset_units != 0 && size >= 0; };
  // Whether entry i is on the spine, given the greatest key before it.
  struct Spine {
    NeedleId top = 0;
    bool Takes(uint64_t i, NeedleId id) {
      if (i > 0 && id < top) return false;
      top = id;
      return true;
    }
  };
  uint64_t max_end = super_block_.BlockSize();
  std::vector<NeedleId> beyond;  // entries whose record would end past the .dat
  // The base's size and key range, counted over entries in key order: a key
  // has a value after its entries exactly when one of them is a put (a delete
  // changes only a value that exists); needle 0 lives in the header.
  struct BaseExtent {
    uint64_t count = 0, min_key = 0, max_key = 0;
    void Add(NeedleId id, bool put) {
      if (id == 0 || !put || (count > 0 && id == max_key)) return;
      if (count++ == 0) min_key = id;
      max_key = id;
    }
  } extent;
  // Reserved for every entry, touched only as far as the side grows.
  ScratchArray<Replayed> side(entries);
  if (!side.ok()) return Status::IOError(ErrnoMessage("replay buffer for " + names_.Idx()));
  uint64_t side_count = 0;
  bool side_puts = false;
  Spine spine;
  Status read = for_each_entry([&](uint64_t i, const IdxEntry& e) {
    uint64_t end = 0;
    if (e.offset_units != 0) end = e.ByteOffset() + ActualSize(e.size >= 0 ? uint32_t(e.size) : 0, version());
    if (end > dat_end_) beyond.push_back(e.id);
    max_end = std::max(max_end, end);
    if (spine.Takes(i, e.id)) {
      extent.Add(e.id, is_put(e.offset_units, e.size));
    } else {
      side[side_count++] = {e.id, e.offset_units, e.size};
      side_puts |= is_put(e.offset_units, e.size);
    }
  });
  if (!read.ok()) return read;
  SortRunsById(side.data(), side.data() + side_count);
  // Every entry in key order (see above).
  const auto in_key_order = [&](auto&& visit) -> Status {
    uint64_t j = 0;
    Spine again;
    Status s = for_each_entry([&](uint64_t i, const IdxEntry& e) {
      if (!again.Takes(i, e.id)) return;
      for (; j < side_count && side[j].id < e.id; ++j) visit(side[j].id, side[j].offset_units, side[j].size);
      visit(e.id, e.offset_units, e.size);
    });
    for (; s.ok() && j < side_count; ++j) visit(side[j].id, side[j].offset_units, side[j].size);
    return s;
  };
  // Side deletes only change values the spine counted; side puts may add
  // keys, so the base is counted over the merge.
  if (side_puts) {
    extent = {};
    read = in_key_order([&](NeedleId id, uint64_t offset_units, int32_t size) { extent.Add(id, is_put(offset_units, size)); });
    if (!read.ok()) return read;
  }

  // One key's run of entries, applied in order to the value the index holds
  // for it (packed and unpacked, so a size too large to pack reads back as
  // the index gives it); `finish` stores the final value.
  BaseEntry* out = nullptr;
  BaseEntry* out_end = nullptr;
  bool overflow = false;  // more keys than were counted: refused below
  const auto apply = [&](NeedleId id, uint64_t offset_units, int32_t size, std::optional<IndexValue>* current) {
    if (is_put(offset_units, size)) {
      RecordPut(id, uint32_t(size), *current);
      *current = IndexValue::Unpack(IndexValue{offset_units, uint32_t(size), false, true}.Pack());
    } else if (*current && !(*current)->deleted) {
      counters_.deleted_count++;
      counters_.deleted_bytes += (*current)->size;
      (*current)->deleted = true;
    }
  };
  const auto finish = [&](NeedleId id, const std::optional<IndexValue>& current) {
    if (!current) return;
    if (id == 0) segment_.Put(NeedleId(0), *current);
    else if (out != out_end) *out++ = {id, current->Pack()};
    else overflow = true;
  };
  auto seg = IndexSegmentWriter::CreateForBase(("kelp-idx-" + std::to_string(names_.id)).c_str(), extent.count, extent.min_key,
                                               extent.max_key, opened_read_only_ ? 1024 : DeltaCapacityFor(extent.count),
                                               first_generation_);
  if (!seg.ok()) return seg.status();
  segment_ = std::move(seg.value());
  out = segment_.mutable_base();
  out_end = out + extent.count;
  NeedleId run_id = 0;
  bool in_run = false;
  std::optional<IndexValue> current;
  read = in_key_order([&](NeedleId id, uint64_t offset_units, int32_t size) {
    if (in_run && id != run_id) {
      finish(run_id, current);
      current.reset();
    }
    in_run = true;
    run_id = id;
    apply(id, offset_units, size, &current);
  });
  if (!read.ok()) return read;
  if (in_run) finish(run_id, current);
  if (overflow || out != out_end) return Status::Corruption("index segment base of " + names_.Idx() + " does not match its count");
  segment_.FinishBase();
  if (!beyond.empty()) {
    // Indexed, so acknowledged, yet not on disk: a power loss reordered the
    // writes. Nothing can bring them back; say which, and keep the volume
    // read-only as Go does.
    std::string ids;
    for (size_t i = 0; i < beyond.size() && i < 32; ++i) {
      char b[24];
      std::snprintf(b, sizeof b, "%s%llx", i ? "," : "", static_cast<unsigned long long>(beyond[i]));
      ids += b;
    }
    if (beyond.size() > 32) ids += ",...";
    repair_.missing = beyond;
    read_only_ = true;
    load_warning_ = "idx references end=" + std::to_string(max_end) + " but .dat is " + std::to_string(dat_end_) + " bytes; " +
                    std::to_string(beyond.size()) + " indexed needle(s) have no complete data: " + ids;
  }
  *indexed_end = max_end;
  counters_.dat_size = dat_end_;
  struct stat st;
  if (env_->Fstat(dat_fd_, &st) == 0) counters_.last_modified_s = uint64_t(st.st_mtime);
  segment_.SetCounters(counters_);
  return Status::Ok();
}

// Bytes past the end of the last indexed record were never acknowledged (the
// .idx entry is written after the record and before the reply). They are
// classified for the log and cut, so the volume stays writable; see
// docs/architecture.md for why they are not indexed instead.
Status Volume::HealTail(uint64_t indexed_end) {
  if (opened_read_only_ || !repair_.missing.empty() || dat_end_ <= indexed_end) return Status::Ok();
  const uint8_t ver = version();
  uint64_t pos = indexed_end;
  std::vector<uint8_t> rec;
  while (pos < dat_end_) {
    const uint64_t left = dat_end_ - pos;
    uint8_t h[kNeedleHeaderSize];
    if (left < uint64_t(kNeedleHeaderSize) || !EnvPreadFull(env_, dat_fd_, h, sizeof h, off_t(pos)).ok()) break;
    const NeedleHeader nh = ParseNeedleHeader(h);
    const uint64_t len = int32_t(nh.size) < 0 ? 0 : ActualSize(nh.size, ver);
    if (len == 0 || len > left) break;
    rec.resize(len);
    if (!EnvPreadFull(env_, dat_fd_, rec.data(), len, off_t(pos)).ok()) break;
    ParsedNeedle n;
    if (!ParseNeedle(rec.data(), len, nh.size, ver, &n).ok()) break;
    KLOG_WARN("volume %u: record of needle %llx at bytes [%llu, %llu) is complete but was never indexed (never acknowledged): cutting it",
              id(), static_cast<unsigned long long>(nh.id), static_cast<unsigned long long>(pos), static_cast<unsigned long long>(pos + len));
    repair_.complete_records++;
    pos += len;
  }
  if (pos < dat_end_) {
    repair_.torn_record = true;
    KLOG_WARN("volume %u: torn record at bytes [%llu, %llu): cutting it", id(), static_cast<unsigned long long>(pos),
              static_cast<unsigned long long>(dat_end_));
  }
  if (env_->Ftruncate(dat_fd_, off_t(indexed_end)) != 0 || env_->Fdatasync(dat_fd_) != 0)
    return Status::IOError(ErrnoMessage("cut unacknowledged tail of " + names_.Dat()));
  repair_.truncated_from = indexed_end;
  repair_.truncated_to = dat_end_;
  KLOG_WARN("volume %u: .dat cut from %llu to %llu bytes; the volume stays writable", id(), static_cast<unsigned long long>(dat_end_),
            static_cast<unsigned long long>(indexed_end));
  dat_end_ = indexed_end;
  counters_.dat_size = dat_end_;
  segment_.SetCounters(counters_);
  return Status::Ok();
}

// Verifies the needle physically last in the .dat against the index, as Go's
// CheckVolumeDataIntegrity does; any mismatch makes the volume read-only.
void Volume::CheckTail() {
  const int entry = IdxEntrySize(offset_bytes_);
  if (idx_end_ == 0 || !load_warning_.empty()) return;
  auto read_entry = [&](uint64_t pos, IdxEntry* e) {
    uint8_t b[17];
    if (!EnvPreadFull(env_, idx_fd_, b, entry, off_t(pos)).ok()) return false;
    *e = DecodeIdxEntry(b, offset_bytes_);
    return true;
  };
  auto disk_end = [&](const IdxEntry& e) { return e.ByteOffset() + ActualSize(e.size < 0 ? 0 : uint32_t(e.size), version()); };
  IdxEntry tail;
  if (!read_entry(idx_end_ - entry, &tail)) return;
  if (tail.offset_units == 0 || disk_end(tail) != dat_end_) {
    // Not append-ordered (e.g. rebuilt sorted by key): find the highest offset.
    bool found = false;
    for (uint64_t pos = 0; pos < idx_end_; pos += entry) {
      IdxEntry e;
      if (!read_entry(pos, &e)) return;
      if (e.offset_units != 0 && (!found || e.offset_units > tail.offset_units)) {
        tail = e;
        found = true;
      }
    }
    if (!found) return;
  }
  const uint64_t at = tail.ByteOffset();
  const uint32_t size = tail.size < 0 ? 0 : uint32_t(tail.size);
  const uint64_t end = at + ActualSize(size, version());
  auto fail = [&](const std::string& why) {
    read_only_ = true;
    load_warning_ = "volume data integrity check failed: " + why;
  };
  if (end > dat_end_) return fail("data file has " + std::to_string(dat_end_) + " bytes, less than expected " + std::to_string(end));
  if (end < dat_end_) return fail("data file actual " + std::to_string(dat_end_) + " bytes expected " + std::to_string(end) + " bytes");
  std::vector<uint8_t> rec(end - at);
  if (!EnvPreadFull(env_, dat_fd_, rec.data(), rec.size(), off_t(at)).ok()) return fail("cannot read the last needle");
  const NeedleHeader h = ParseNeedleHeader(rec.data());
  if (h.size != size) return fail("size mismatch");
  if (version() == 3) {
    // Go stops here for version 3: header size and file length agree. The data
    // CRC is checked when the needle is read.
    last_append_at_ns_ = GetU64(rec.data() + kNeedleHeaderSize + size + kNeedleChecksumSize);
    return;
  }
  ParsedNeedle n;
  if (Status s = ParseNeedle(rec.data(), rec.size(), size, version(), &n); !s.ok()) return fail(s.message());
  if (n.header.id != tail.id) return fail("index key does not match needle's Id");
}

uint64_t Volume::NextAppendAtNs(uint64_t hint) {
  uint64_t now = hint;
  if (now == 0)
    now = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (now <= last_append_at_ns_) now = last_append_at_ns_ + 1;
  last_append_at_ns_ = now;
  return now;
}

Result<uint32_t> Volume::StoredSize(const IndexValue& v) const {
  if (v.size_known) return v.size;
  uint8_t h[kNeedleHeaderSize];
  if (Status s = EnvPreadFull(env_, dat_fd_, h, sizeof h, off_t(v.offset_units * kNeedlePaddingSize)); !s.ok()) return s;
  return ParseNeedleHeader(h).size;
}

void Volume::EncodeIdx(NeedleId id, uint64_t offset_units, int32_t size, std::vector<uint8_t>* out) const {
  const int entry = IdxEntrySize(offset_bytes_);
  const size_t at = out->size();
  out->resize(at + size_t(entry));
  EncodeIdxEntry(IdxEntry{id, offset_units, size}, offset_bytes_, out->data() + at);
}

std::optional<IndexValue> Volume::LookupForWrite(NeedleId id, const std::vector<std::pair<NeedleId, IndexValue>>& pending) const {
  for (auto it = pending.rbegin(); it != pending.rend(); ++it)
    if (it->first == id) return it->second;
  return segment_.Get(id);
}

void Volume::UndoDat(uint64_t to) {
  // Never leave a partial record behind: the next load would have to cut it.
  if (env_->Ftruncate(dat_fd_, off_t(to)) != 0) KLOG_ERROR("volume %u: cannot undo a partial write: %s", id(), std::strerror(errno));
  dat_end_ = to;
}

namespace {

// The OS's reason in a Status from Env*Full ("pwrite: No space left on device"),
// worded as Go prints syscall errors ("no space left on device").
std::string OsReason(const Status& s) {
  std::string why = s.message();
  if (const size_t colon = why.find(": "); colon != std::string::npos) why = why.substr(colon + 2);
  if (!why.empty()) why[0] = char(std::tolower(static_cast<unsigned char>(why[0])));
  return why;
}

}  // namespace

// Go's wording: "append to volume 3 size 10 actualSize 48: write /d/3.dat: no space left on device".
Status Volume::AppendError(const Status& s, uint32_t size, uint64_t actual) const {
  const std::string why = OsReason(s);
  const std::string text = "append to volume " + std::to_string(id()) + " size " + std::to_string(size) + " actualSize " +
                           std::to_string(actual) + ": write " + names_.Dat() + ": " + why;
  return s.code() == Code::kFull ? Status::Full(text) : Status::IOError(text);
}

void Volume::PutOne(Mutation* m, std::vector<uint8_t>* idx_out, std::vector<std::pair<NeedleId, IndexValue>>* pending) {
  uint8_t* record = m->record;
  const NeedleHeader h = ParseNeedleHeader(record);
  if (m->length != ActualSize(h.size, 3)) {
    m->status = Status::Invalid("needle record length does not match its size field");
    return;
  }
  const NeedleId key = m->index_id ? m->index_id : h.id;
  const auto old = LookupForWrite(key, *pending);
  m->replaced.reset();
  const bool overwrites = old && !old->deleted && old->offset_units != 0;
  if (overwrites) m->replaced = old->size;
  if (overwrites && m->check_cookie) {
    uint8_t oh[kNeedleHeaderSize];
    if (Status s = EnvPreadFull(env_, dat_fd_, oh, sizeof oh, off_t(old->offset_units * kNeedlePaddingSize)); !s.ok()) {
      m->status = s;
      return;
    }
    if (ParseNeedleHeader(oh).cookie != h.cookie) {
      m->status = Status::CookieMismatch(CookieMismatchText(h.cookie));
      return;
    }
  }
  // Older volumes keep their own record version.
  std::vector<uint8_t> converted;
  const uint8_t* bytes = record;
  size_t bytes_len = m->length;
  const uint64_t append_at_ns = NextAppendAtNs(0);
  PutU64(record + kNeedleHeaderSize + h.size + kNeedleChecksumSize, append_at_ns);
  if (version() != 3) {
    const uint64_t want = ActualSize(h.size, version());
    converted.assign(record, record + kNeedleHeaderSize + h.size + kNeedleChecksumSize);
    converted.resize(want, 0);
    bytes = converted.data();
    bytes_len = want;
  }
  // Like Go, writes are bounded by what the offset width can address, not by
  // the master's volume size limit: the master stops assigning to a full
  // volume, and writes it already assigned must still succeed.
  const uint64_t max_size = MaxVolumeSizeFor(offset_bytes_);
  if (dat_end_ + bytes_len > max_size) {
    m->status = Status::Full("volume size limit " + std::to_string(max_size) + " exceeded! current size is " + std::to_string(dat_end_));
    return;
  }
  const uint64_t offset = dat_end_;
  if (Status s = EnvPwriteFull(env_, dat_fd_, bytes, bytes_len, off_t(offset)); !s.ok()) {
    UndoDat(offset);
    m->status = AppendError(s, h.size, bytes_len);
    return;
  }
  dat_end_ += bytes_len;
  const uint64_t units = offset / kNeedlePaddingSize;
  EncodeIdx(key, units, int32_t(h.size), idx_out);
  pending->push_back({key, IndexValue{units, h.size, false, true}});
  m->offset = offset;
  m->size = h.size;
  m->status = Status::Ok();
}

void Volume::DeleteOne(Mutation* m, std::vector<uint8_t>* idx_out, std::vector<std::pair<NeedleId, IndexValue>>* pending) {
  const auto old = LookupForWrite(m->id, *pending);
  m->size = 0;
  if (!old || old->deleted || old->offset_units == 0) {
    m->status = Status::Ok();
    return;
  }
  auto old_size = StoredSize(*old);
  if (!old_size.ok()) {
    m->status = old_size.status();
    return;
  }
  NeedleFields tomb;
  tomb.cookie = m->cookie;
  tomb.id = m->id;
  tomb.append_at_ns = NextAppendAtNs(m->append_at_ns_hint);
  std::string rec = EncodeNeedleV3(tomb);
  if (version() != 3) rec.resize(ActualSize(0, version()));
  // Go's tombstone carries the checksum of the needle it deletes (it read
  // that needle to check the cookie): the same bytes here.
  if (Status s = EnvPreadFull(env_, dat_fd_, rec.data() + kNeedleHeaderSize, kNeedleChecksumSize,
                              off_t(old->offset_units * kNeedlePaddingSize + kNeedleHeaderSize + old_size.value()));
      !s.ok()) {
    m->status = s;
    return;
  }
  const uint64_t offset = dat_end_;
  if (Status s = EnvPwriteFull(env_, dat_fd_, rec.data(), rec.size(), off_t(offset)); !s.ok()) {
    UndoDat(offset);
    m->status = s;
    return;
  }
  dat_end_ += rec.size();
  EncodeIdx(m->id, offset / kNeedlePaddingSize, kTombstoneSize, idx_out);
  m->offset = offset;
  IndexValue d = *old;
  d.deleted = true;
  d.size = old_size.value();
  d.size_known = true;
  pending->push_back({m->id, d});
  m->size = old_size.value();
  m->status = Status::Ok();
}

void Volume::Apply(Mutation* const* batch, size_t count) {
  std::lock_guard<std::mutex> w(write_mu_);
  {
    std::lock_guard<std::mutex> l(state_mu_);
    for (size_t i = 0; i < count; ++i) {
      Mutation* m = batch[i];
      if (retired_) m->status = Status::NotFound("volume " + std::to_string(id()) + " not found");
      else if (read_only_) m->status = Status::ReadOnly("volume " + std::to_string(id()) + " is read only");
      else m->status = Status::Ok();
    }
  }
  // Each mutation adds at most one key to the delta (a delete of a base key
  // adds its tombstone value there).
  if (count && batch[0]->status.ok()) {
    if (Status room = ReserveIndexRoom(count); !room.ok()) {
      for (size_t i = 0; i < count; ++i) batch[i]->status = room;
      return;
    }
  }
  const uint64_t dat_start = dat_end_;
  std::vector<uint8_t> idx_bytes;
  std::vector<std::pair<NeedleId, IndexValue>> pending;
  std::vector<Mutation*> applied;
  for (size_t i = 0; i < count; ++i) {
    Mutation* m = batch[i];
    if (!m->status.ok()) continue;
    if (m->kind == Mutation::Kind::kPut) PutOne(m, &idx_bytes, &pending);
    else DeleteOne(m, &idx_bytes, &pending);
    if (m->status.ok() && !(m->kind == Mutation::Kind::kDelete && m->size == 0)) applied.push_back(m);
  }
  if (idx_bytes.empty()) return;

  // One .idx write for the batch. If it fails, none of the batch happened.
  const uint64_t idx_start = idx_end_;
  if (Status s = EnvPwriteFull(env_, idx_fd_, idx_bytes.data(), idx_bytes.size(), off_t(idx_start)); !s.ok()) {
    if (env_->Ftruncate(idx_fd_, off_t(idx_start)) != 0)
      KLOG_ERROR("volume %u: cannot undo a partial index write: %s", id(), std::strerror(errno));
    UndoDat(dat_start);
    const std::string why = OsReason(s);
    for (Mutation* m : applied) {
      const NeedleId nid = m->kind != Mutation::Kind::kPut ? m->id : m->index_id ? m->index_id : ParseNeedleHeader(m->record).id;
      const std::string text = "index needle " + std::to_string(nid) + " of volume " + std::to_string(id()) + " at offset " +
                               std::to_string(m->offset) + ": write " + names_.Idx() + ": " + why;
      m->status = s.code() == Code::kFull ? Status::Full(text) : Status::IOError(text);
    }
    return;
  }
  idx_end_ += idx_bytes.size();

  // Counters follow the entries in order, as a replay of the .idx would.
  for (Mutation* m : applied) {
    if (m->kind == Mutation::Kind::kPut) {
      const NeedleHeader h = ParseNeedleHeader(m->record);
      RecordPut(m->index_id ? m->index_id : h.id, h.size, std::nullopt);
      counters_.last_modified_s = last_append_at_ns_ / 1000000000ull;
      if (m->replaced) {  // a replaced live needle counts as deleted too (Go's metrics)
        counters_.deleted_count++;
        counters_.deleted_bytes += *m->replaced;
      }
    } else {
      counters_.deleted_count++;
      counters_.deleted_bytes += m->size;
    }
  }
  counters_.dat_size = dat_end_;

  if (Status s = PublishLocked(pending); !s.ok()) {
    // The .idx has the entries, so a restart would serve them; this process
    // cannot, so it refuses further writes and says so.
    for (Mutation* m : applied) m->status = s;
    return;
  }
  if (answers_via_loop_)
    for (Mutation* m : applied) m->held_for_switch = true;

  bool want_sync = false;
  for (Mutation* m : applied) want_sync |= m->fsync;
  if (!want_sync) return;
  // Group commit: one sync of each file for every fsync=true write of the batch.
  Status synced = Status::Ok();
  if (env_->Fdatasync(dat_fd_) != 0) synced = Status::IOError(ErrnoMessage("fsync " + names_.Dat()));
  else if (env_->Fdatasync(idx_fd_) != 0) synced = Status::IOError(ErrnoMessage("fsync " + names_.Idx()));
  if (!synced.ok()) {
    FailSync(synced.message());
    for (Mutation* m : applied)
      if (m->fsync) m->status = synced;
  }
}

Status Volume::ReserveIndexRoom(size_t keys) {
  // Under the 3/4 load ceiling a probe stays short.
  if (segment_.UnderCeilingWith(keys)) return Status::Ok();
  // A second merge waits until every reader has left the old segment.
  if (!trailing_) {
    // Built without state_mu_: only this thread changes segment_, and the
    // loop only reads it, so the loop never waits for a merge.
    auto merged = IndexSegmentWriter::Merged(("kelp-idx-" + std::to_string(id())).c_str(), segment_, (keys + 1) * 2,
                                             segment_.generation() + 1);
    if (merged.ok()) {
      std::lock_guard<std::mutex> l(state_mu_);
      trailing_ = std::move(segment_);
      segment_ = std::move(merged.value());
      trailing_stale_ = false;
      announce_pending_ = true;
      KLOG_INFO("volume %u: index merged into generation %llu (%llu keys in its base, %llu delta slots)", id(),
                (unsigned long long)segment_.generation(), (unsigned long long)segment_.base_count(),
                (unsigned long long)segment_.capacity());
      return Status::Ok();
    }
    KLOG_ERROR("volume %u: cannot merge its index segment: %s", id(), merged.status().message().c_str());
  }
  // Past the ceiling probes are longer but still correct.
  if (segment_.CanTake(keys)) return Status::Ok();
  return Status::Unavailable("volume " + std::to_string(id()) + (trailing_ ? ": index segment full until its readers switch; retry"
                                                                            : ": index segment full and cannot be merged; retry"));
}

Status Volume::PublishLocked(const std::vector<std::pair<NeedleId, IndexValue>>& entries) {
  std::lock_guard<std::mutex> l(state_mu_);
  for (const auto& [nid, v] : entries) {
    // ReserveIndexRoom made room for every key of the batch.
    if (!segment_.Put(nid, v)) {
      read_only_ = true;
      load_warning_ = "index segment full; restart to rebuild it";
      segment_.SetReadOnly(true);
      KLOG_ERROR("volume %u: %s", id(), load_warning_.c_str());
      return Status::IOError("volume " + std::to_string(id()) + ": index segment full");
    }
    // The old segment's delta has a quarter of its slots left when the merge
    // starts. When a slow reader lets that run out, the old segment stops
    // here, and from now until the switch every write is answered only once
    // all readers read the new segment, which has it.
    if (trailing_ && !trailing_stale_ && !trailing_->Put(nid, v)) {
      trailing_stale_ = true;
      answers_via_loop_ = true;
      KLOG_INFO("volume %u: the old index segment is full; writes are answered after every reader switches", id());
    }
  }
  segment_.SetCounters(counters_);
  if (trailing_) trailing_->SetCounters(counters_);
  snapshot_ = counters_;
  idx_size_snapshot_ = idx_end_;
  return Status::Ok();
}

void Volume::FailSync(const std::string& why) {
  // After a failed sync the kernel may have dropped the dirty pages: nothing
  // written since the last good sync can be trusted to be on disk, and a
  // retried sync could report success for data that is gone. So no more writes.
  std::lock_guard<std::mutex> l(state_mu_);
  read_only_ = true;
  sync_failed_ = true;
  load_warning_ = "sync failed: " + why;
  segment_.SetReadOnly(true);
  if (trailing_) trailing_->SetReadOnly(true);
  KLOG_ERROR("volume %u is read-only from now on: %s", id(), why.c_str());
}

Result<AppendOutcome> Volume::Append(uint8_t* record, size_t len, NeedleId index_id, bool check_cookie) {
  if (Status s = ValidateRecord(record, len); !s.ok()) return s;
  Mutation m;
  m.record = record;
  m.length = len;
  m.index_id = index_id;
  m.check_cookie = check_cookie;
  Mutation* one = &m;
  Apply(&one, 1);
  if (!m.status.ok()) return m.status;
  return AppendOutcome{m.offset, m.size};
}

Result<uint32_t> Volume::Delete(NeedleId id, Cookie cookie, uint64_t append_at_ns_hint) {
  Mutation m;
  m.kind = Mutation::Kind::kDelete;
  m.id = id;
  m.cookie = cookie;
  m.append_at_ns_hint = append_at_ns_hint;
  Mutation* one = &m;
  Apply(&one, 1);
  if (!m.status.ok()) return m.status;
  return m.size;
}

Status Volume::Sync() {
  std::lock_guard<std::mutex> w(write_mu_);
  if (std::lock_guard<std::mutex> l(state_mu_); sync_failed_) return Status::IOError(load_warning_);
  Status s = Status::Ok();
  if (env_->Fdatasync(dat_fd_) != 0) s = Status::IOError(ErrnoMessage("fsync " + names_.Dat()));
  else if (env_->Fdatasync(idx_fd_) != 0) s = Status::IOError(ErrnoMessage("fsync " + names_.Idx()));
  if (!s.ok()) FailSync(s.message());
  return s;
}

void Volume::WriteBackAhead() const {
  // Through descriptors of its own: the kernel reports a write-back error
  // once to each open file, so one seen here is still reported to the
  // volume's descriptors, whose sync decides.
  for (const std::string& path : {names_.Dat(), names_.Idx()}) {
    Fd fd(env_, env_->Open(path, O_RDONLY | O_CLOEXEC, 0));
    if (fd.get() < 0 || env_->Fdatasync(fd.get()) != 0)
      KLOG_WARN("volume %u: write-back of %s ahead of the commit: %s", id(), path.c_str(), std::strerror(errno));
  }
}

Status Volume::ReadNeedle(NeedleId id, std::string* record, ParsedNeedle* out) const {
  const auto v = Lookup(id);
  if (!v || v->offset_units == 0) return Status::NotFound("not found");
  if (v->deleted) return Status::NotFound("already deleted");
  auto size = StoredSize(*v);
  if (!size.ok()) return size.status();
  record->resize(ActualSize(size.value(), version()));
  if (Status s = EnvPreadFull(env_, dat_fd_, record->data(), record->size(), off_t(v->offset_units * kNeedlePaddingSize)); !s.ok())
    return s;
  return ParseNeedle(reinterpret_cast<const uint8_t*>(record->data()), record->size(), size.value(), version(), out);
}

Status Volume::ReadAt(uint64_t offset, size_t length, std::string* out) const {
  out->resize(length);
  size_t got = 0;
  Status s = EnvPreadUpTo(env_, dat_fd_, out->data(), length, off_t(offset), &got);
  out->resize(got);
  return s;
}

Status Volume::SaveInfo(const VolumeInfo& info) {
  Status s = EnvWriteFileAtomically(env_, names_.Vif(), EncodeVolumeInfo(info));
  if (s.ok()) {
    std::lock_guard<std::mutex> l(state_mu_);
    info_ = info;
  }
  return s;
}

Status Volume::SetReadOnly(bool ro, bool persist) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (persist) {
    VolumeInfo next = info();
    next.read_only = ro;
    if (Status s = SaveInfo(next); !s.ok()) return s;
  }
  std::lock_guard<std::mutex> l(state_mu_);
  read_only_ = ro;
  segment_.SetReadOnly(ro);
  if (trailing_) trailing_->SetReadOnly(ro);
  return Status::Ok();
}

void Volume::Retire() { retired_ = true; }

CompactionStart Volume::BeginCopy() {
  std::lock_guard<std::mutex> w(write_mu_);
  // Go syncs here and only logs a failure: the copy reads through its own
  // descriptors, and what is not on disk yet is carried over by the commit.
  if (env_->Fdatasync(dat_fd_) != 0) KLOG_WARN("volume %u: sync before compaction: %s", id(), std::strerror(errno));
  if (env_->Fdatasync(idx_fd_) != 0) KLOG_WARN("volume %u: sync index before compaction: %s", id(), std::strerror(errno));
  CompactionStart start{super_block_, idx_end_, dat_end_, counters_.content_size, counters_.deleted_bytes};
  copy_start_ = start;
  return start;
}

void Volume::AbandonCopy() {
  std::lock_guard<std::mutex> w(write_mu_);
  copy_start_.reset();
  for (const std::string& p : {names_.Cpd(), names_.Cpx()})
    if (env_->Unlink(p) != 0 && errno != ENOENT) KLOG_WARN("volume %u: remove %s: %s", id(), p.c_str(), std::strerror(errno));
}

double Volume::GarbageRatio() const {
  const SegmentCounters c = counters();
  if (c.content_size == 0) return 0;
  if (c.deleted_count > 0 && c.deleted_bytes == 0) {
    // Go's fallback for counters that lost the deleted bytes.
    const uint64_t dat = c.dat_size;
    if (dat == 0 || dat < c.content_size + 8) return 0;
    return double(dat - c.content_size - 8) / double(dat);
  }
  return double(c.deleted_bytes) / double(c.content_size);
}

Result<std::unique_ptr<Volume>> Volume::CommitCompaction(bool* offline) {
  *offline = false;
  std::lock_guard<std::mutex> w(write_mu_);
  // Unmounted or replaced while the commit was queued: another object may own the files now.
  if (retired_) return Status::NotFound("volume " + std::to_string(id()) + " is not mounted");
  // After a failed sync nothing since the last good one is known to be on
  // disk: neither carried over nor synced again (see FailSync).
  if (std::lock_guard<std::mutex> l(state_mu_); sync_failed_) return Status::IOError(load_warning_);
  // Without a copy in this process (a restart, or a cleanup), Go replays the
  // whole .idx against whatever .cpd there is, and fails on a missing one.
  if (!copy_start_ && idx_end_ > 0) {
    // Go walks the .idx backwards down to an offset no copy recorded, one row
    // past the start, and fails there; kelp refuses with the same text.
    const std::string at = "-" + std::to_string(IdxEntrySize(offset_bytes_));
    return Status::IOError("readIndexEntry " + names_.Idx() + " at offset " + at + " failed: offset " + at + " for index file is invalid");
  }
  const uint64_t idx_from = copy_start_ ? copy_start_->idx_end : 0;
  const uint16_t revision = copy_start_ ? copy_start_->super_block.compaction_revision : super_block_.compaction_revision;
  if (env_->Fdatasync(dat_fd_) != 0 || env_->Fdatasync(idx_fd_) != 0)
    return Status::IOError(ErrnoMessage("sync volume " + std::to_string(id()) + " before commit"));
  if (Status s = CarryOverWrites(names_, offset_bytes_, idx_from, revision, version(), env_); !s.ok()) {
    for (const std::string& p : {names_.Cpd(), names_.Cpx()})
      if (env_->Unlink(p) != 0 && errno != ENOENT) KLOG_WARN("volume %u: remove %s: %s", id(), p.c_str(), std::strerror(errno));
    return s;
  }
  bool committed = false;
  Status swapped = SwapInCompacted(names_, env_, &committed);
  // From the commit point on, this object's descriptors are the old files,
  // which the directory no longer names: nothing more may be written here,
  // even if what follows fails.
  if (committed) retired_ = true;
  if (!swapped.ok()) {
    if (!committed) {
      // Refused before the commit point: the old files stand. The copy,
      // with the tail carried over, is spent.
      copy_start_.reset();
      for (const std::string& p : {names_.Cpd(), names_.Cpx()}) env_->Unlink(p);
      return swapped;
    }
    // Past the commit point the copy is complete and durable: finish the
    // swap as a load would, or the volume cannot be served from this process.
    if (auto r = ReconcileCompaction(names_, env_); !r.ok()) {
      *offline = true;
      return Status::IOError(swapped.message() + "; finishing the swap: " + r.status().message());
    }
  }
  auto next = Load(names_, offset_bytes_, env_, segment_.generation() + 1);
  if (!next.ok()) {
    *offline = true;
    return next.status();
  }
  {
    std::lock_guard<std::mutex> l(state_mu_);
    next.value()->read_only_ = next.value()->read_only_ || read_only_;  // a commit never makes a volume writable
    next.value()->segment_.SetReadOnly(next.value()->read_only_);
  }
  next.value()->answers_via_loop_ = true;
  return next;
}

bool Volume::AnnouncePending() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return announce_pending_;
}

std::optional<SegmentReplacement> Volume::TakeSegmentReplacement() {
  std::lock_guard<std::mutex> l(state_mu_);
  if (!announce_pending_) return std::nullopt;
  announce_pending_ = false;
  const int fd = fcntl(segment_.fd(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    KLOG_ERROR("volume %u: dup segment: %s", id(), std::strerror(errno));
    announce_pending_ = true;
    return std::nullopt;
  }
  return SegmentReplacement{segment_.generation(), fd};
}

void Volume::FinishHandover(uint64_t generation) {
  std::lock_guard<std::mutex> w(write_mu_);
  std::lock_guard<std::mutex> l(state_mu_);
  if (segment_.generation() == generation) answers_via_loop_ = false;
  if (!trailing_ || segment_.generation() != generation) return;
  trailing_->MarkSuperseded();
  trailing_.reset();
  trailing_stale_ = false;
}

bool Volume::handover_pending() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return trailing_.has_value();
}

uint64_t Volume::DupSegmentGeneration() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return segment_.generation();
}

std::pair<int, uint64_t> Volume::DupSegment() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return {fcntl(segment_.fd(), F_DUPFD_CLOEXEC, 0), segment_.generation()};
}

void Volume::UpdateSnapshot() {
  std::lock_guard<std::mutex> l(state_mu_);
  snapshot_ = counters_;
  idx_size_snapshot_ = idx_end_;
}

bool Volume::read_only() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return read_only_;
}

std::string Volume::load_warning() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return load_warning_;
}

uint64_t Volume::dat_size() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return snapshot_.dat_size;
}

uint64_t Volume::idx_size() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return idx_size_snapshot_;
}

SegmentCounters Volume::counters() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return snapshot_;
}

VolumeInfo Volume::info() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return info_;
}

std::optional<IndexValue> Volume::Lookup(NeedleId id) const {
  std::lock_guard<std::mutex> l(state_mu_);
  return segment_.Get(id);
}

}  // namespace kelp
