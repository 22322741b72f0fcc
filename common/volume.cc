#include "common/volume.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/idx_entry.h"
#include "common/log.h"

namespace kelp {

std::string VolumeFileNames::Base(const std::string& d) const {
  const std::string name = collection.empty() ? std::to_string(id) : collection + "_" + std::to_string(id);
  return d + "/" + name;
}

Volume::~Volume() {
  if (dat_fd_ >= 0) close(dat_fd_);
  if (idx_fd_ >= 0) close(idx_fd_);
}

Status Volume::OpenFiles(bool create) {
  const std::string dat = names_.Dat();
  const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
  dat_fd_ = open(dat.c_str(), flags, 0644);
  if (dat_fd_ < 0 && !create && (errno == EACCES || errno == EROFS)) {
    dat_fd_ = open(dat.c_str(), O_RDONLY | O_CLOEXEC);
    if (dat_fd_ >= 0) {
      read_only_ = true;
      load_warning_ = "opening " + dat + " in READONLY mode";
    }
  }
  if (dat_fd_ < 0) {
    if (create && errno == EEXIST) return Status::AlreadyExists("volume data file " + dat + " already exists");
    return Status::IOError(ErrnoMessage("open " + dat));
  }
  const std::string idx = names_.Idx();
  idx_fd_ = open(idx.c_str(), (read_only_ ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0644);
  if (idx_fd_ < 0) return Status::IOError(ErrnoMessage("open " + idx));
  return Status::Ok();
}

Result<std::unique_ptr<Volume>> Volume::Create(const VolumeFileNames& names, const SuperBlock& sb, int offset_bytes) {
  std::unique_ptr<Volume> v(new Volume(names, offset_bytes));
  if (FileExists(names.Idx()) && !FileExists(names.Dat())) {
    // A stray index without data would be replayed against the wrong needles.
    if (unlink(names.Idx().c_str()) != 0) return Status::IOError(ErrnoMessage("remove stale " + names.Idx()));
  }
  Status s = v->OpenFiles(true);
  if (!s.ok()) return s;
  v->super_block_ = sb;
  const std::string block = sb.Encode();
  if (s = PwriteFull(v->dat_fd_, block.data(), block.size(), 0); !s.ok()) return s;
  if (ftruncate(v->idx_fd_, 0) != 0) return Status::IOError(ErrnoMessage("truncate " + names.Idx()));
  v->dat_end_ = block.size();
  auto seg = IndexSegmentWriter::Create(("kelp-idx-" + std::to_string(names.id)).c_str(), 1024, 1);
  if (!seg.ok()) return seg.status();
  v->segment_ = std::move(seg.value());
  v->counters_.dat_size = v->dat_end_;
  v->segment_.SetCounters(v->counters_);
  v->info_.version = sb.version;
  v->info_.bytes_offset = uint32_t(offset_bytes);
  v->info_.replication = sb.replica_placement.String();
  if (s = v->SaveInfo(); !s.ok()) return s;
  return v;
}

Result<std::unique_ptr<Volume>> Volume::Load(const VolumeFileNames& names, int offset_bytes) {
  std::unique_ptr<Volume> v(new Volume(names, offset_bytes));
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

  auto size = FileSize(v->dat_fd_);
  if (!size.ok()) return size.status();
  v->dat_end_ = uint64_t(size.value());
  uint8_t head[kSuperBlockSize];
  if (v->dat_end_ < uint64_t(kSuperBlockSize) || !PreadFull(v->dat_fd_, head, sizeof head, 0).ok())
    return Status::Corruption("cannot read volume " + std::to_string(names.id) + " super block: file too short");
  auto sb = ParseSuperBlockHeader(head);
  if (!sb.ok()) return sb.status();
  v->super_block_ = sb.value();
  if (const uint16_t extra = ExtraSizeOf(head); extra > 0) {
    v->super_block_.extra.resize(extra);
    if (!PreadFull(v->dat_fd_, v->super_block_.extra.data(), extra, kSuperBlockSize).ok())
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
  if (s = v->ReplayIndex(); !s.ok()) return s;
  v->CheckTail();
  if (!vif_exists) {
    v->info_.version = v->super_block_.version;
    v->info_.bytes_offset = uint32_t(offset_bytes);
    if (Status vs = v->SaveInfo(); !vs.ok()) KLOG_WARN("volume %u failed to save file info: %s", names.id, vs.message().c_str());
  }
  v->segment_.SetReadOnly(v->read_only_);
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

Status Volume::ReplayIndex() {
  auto size = FileSize(idx_fd_);
  if (!size.ok()) return size.status();
  const int entry = IdxEntrySize(offset_bytes_);
  const uint64_t idx_bytes = uint64_t(size.value());
  if (idx_bytes % entry != 0) {
    read_only_ = true;
    load_warning_ = "index file's size is " + std::to_string(idx_bytes) + " bytes, maybe corrupted";
  }
  const uint64_t entries = idx_bytes / entry;
  idx_end_ = entries * entry;
  auto seg = IndexSegmentWriter::Create(("kelp-idx-" + std::to_string(names_.id)).c_str(), entries * 2, 1);
  if (!seg.ok()) return seg.status();
  segment_ = std::move(seg.value());

  std::vector<uint8_t> buf(size_t(entry) * 4096);
  uint64_t max_end = 0;
  for (uint64_t done = 0; done < entries;) {
    const uint64_t n = std::min<uint64_t>(entries - done, 4096);
    if (Status s = PreadFull(idx_fd_, buf.data(), n * entry, off_t(done * entry)); !s.ok()) return s;
    for (uint64_t i = 0; i < n; ++i) {
      const IdxEntry e = DecodeIdxEntry(buf.data() + i * entry, offset_bytes_);
      const auto old = segment_.Get(e.id);
      if (e.offset_units != 0 && e.size >= 0) {
        RecordPut(e.id, uint32_t(e.size), old);
        IndexValue v{e.offset_units, uint32_t(e.size), false, true};
        if (!segment_.Put(e.id, v)) return Status::Corruption("index segment overflow while loading");
        max_end = std::max(max_end, e.ByteOffset() + ActualSize(uint32_t(e.size), version()));
      } else {
        if (old && !old->deleted) {
          counters_.deleted_count++;
          counters_.deleted_bytes += old->size;
          IndexValue d = *old;
          d.deleted = true;
          segment_.Put(e.id, d);
        }
        if (e.offset_units != 0) max_end = std::max(max_end, e.ByteOffset() + ActualSize(0, version()));
      }
    }
    done += n;
  }
  if (max_end > dat_end_) {
    read_only_ = true;
    load_warning_ = "idx references end=" + std::to_string(max_end) + " but .dat is " + std::to_string(dat_end_) + " bytes";
  }
  counters_.dat_size = dat_end_;
  struct stat st;
  if (fstat(dat_fd_, &st) == 0) counters_.last_modified_s = uint64_t(st.st_mtime);
  segment_.SetCounters(counters_);
  return Status::Ok();
}

// Verifies the needle physically last in the .dat against the index, as Go's
// CheckVolumeDataIntegrity does; any mismatch makes the volume read-only.
void Volume::CheckTail() {
  const int entry = IdxEntrySize(offset_bytes_);
  if (idx_end_ == 0) return;
  auto read_entry = [&](uint64_t pos, IdxEntry* e) {
    uint8_t b[17];
    if (!PreadFull(idx_fd_, b, entry, off_t(pos)).ok()) return false;
    *e = DecodeIdxEntry(b, offset_bytes_);
    return true;
  };
  auto disk_end = [&](const IdxEntry& e) { return e.ByteOffset() + ActualSize(e.size < 0 ? 0 : uint32_t(e.size), version()); };
  IdxEntry tail;
  if (!read_entry(idx_end_ - entry, &tail)) return;
  if (tail.offset_units == 0 || disk_end(tail) != dat_end_) {
    // Not append-ordered (e.g. rebuilt sorted by key): find the highest offset.
    bool found = false;
    std::vector<uint8_t> buf(entry);
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
  if (!PreadFull(dat_fd_, rec.data(), rec.size(), off_t(at)).ok()) return fail("cannot read the last needle");
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
  if (Status s = PreadFull(dat_fd_, h, sizeof h, off_t(v.offset_units * kNeedlePaddingSize)); !s.ok()) return s;
  return ParseNeedleHeader(h).size;
}

void Volume::Publish(NeedleId id, const IndexValue& v) {
  segment_.Put(id, v);
  segment_.SetCounters(counters_);
  if (trailing_) {
    trailing_->Put(id, v);
    trailing_->SetCounters(counters_);
  }
}

Status Volume::AppendIdx(NeedleId id, uint64_t offset_units, int32_t size) {
  uint8_t b[17];
  EncodeIdxEntry(IdxEntry{id, offset_units, size}, offset_bytes_, b);
  const int entry = IdxEntrySize(offset_bytes_);
  if (Status s = PwriteFull(idx_fd_, b, entry, off_t(idx_end_)); !s.ok()) return s;
  idx_end_ += entry;
  return Status::Ok();
}

Result<AppendOutcome> Volume::Append(uint8_t* record, size_t len, uint64_t size_limit) {
  if (read_only_) return Status::ReadOnly("volume " + std::to_string(id()) + " is read only");
  if (len < size_t(kNeedleHeaderSize)) return Status::Invalid("needle record too short");
  const NeedleHeader h = ParseNeedleHeader(record);
  if (ActualSize(h.size, 3) != len) return Status::Invalid("needle record length does not match its size field");

  const auto old = segment_.Get(h.id);
  if (old && !old->deleted && old->offset_units != 0) {
    uint8_t oh[kNeedleHeaderSize];
    if (Status s = PreadFull(dat_fd_, oh, sizeof oh, off_t(old->offset_units * kNeedlePaddingSize)); !s.ok()) return s;
    const NeedleHeader existing = ParseNeedleHeader(oh);
    if (existing.cookie != h.cookie) {
      char msg[64];
      std::snprintf(msg, sizeof msg, "mismatching cookie %x", h.cookie);
      return Status::CookieMismatch(msg);
    }
  }

  // Older volumes keep their own record version.
  std::vector<uint8_t> converted;
  const uint8_t* bytes = record;
  size_t bytes_len = len;
  const uint64_t append_at_ns = NextAppendAtNs(0);
  PutU64(record + kNeedleHeaderSize + h.size + kNeedleChecksumSize, append_at_ns);
  if (version() != 3) {
    const uint64_t want = ActualSize(h.size, version());
    converted.assign(record, record + kNeedleHeaderSize + h.size + kNeedleChecksumSize);
    converted.resize(want, 0);
    bytes = converted.data();
    bytes_len = want;
  }

  const uint64_t max_size = MaxVolumeSizeFor(offset_bytes_);
  if (dat_end_ + bytes_len > max_size)
    return Status::Full("volume size limit " + std::to_string(max_size) + " exceeded! current size is " + std::to_string(dat_end_));
  if (size_limit > 0 && dat_end_ + bytes_len > size_limit)
    return Status::Full("volume size limit " + std::to_string(size_limit) + " exceeded! current size is " + std::to_string(dat_end_));

  const uint64_t offset = dat_end_;
  if (Status s = PwriteFull(dat_fd_, bytes, bytes_len, off_t(offset)); !s.ok()) {
    // Never leave a partial record behind: the next load would see a bad tail.
    if (ftruncate(dat_fd_, off_t(offset)) != 0) KLOG_ERROR("volume %u: cannot undo a partial write: %s", id(), std::strerror(errno));
    return s;
  }
  dat_end_ += bytes_len;
  const uint64_t units = offset / kNeedlePaddingSize;
  if (Status s = AppendIdx(h.id, units, int32_t(h.size)); !s.ok()) {
    dat_end_ = offset;
    if (ftruncate(dat_fd_, off_t(offset)) != 0) KLOG_ERROR("volume %u: cannot undo a partial write: %s", id(), std::strerror(errno));
    return s;
  }
  RecordPut(h.id, h.size, old);
  counters_.dat_size = dat_end_;
  counters_.last_modified_s = append_at_ns / 1000000000ull;
  Publish(h.id, IndexValue{units, h.size, false, true});
  return AppendOutcome{offset, h.size};
}

Result<uint32_t> Volume::Delete(NeedleId id, Cookie cookie, uint64_t append_at_ns_hint) {
  if (read_only_) return Status::ReadOnly("volume " + std::to_string(this->id()) + " is read only");
  const auto old = segment_.Get(id);
  if (!old || old->deleted || old->offset_units == 0) return uint32_t(0);
  auto old_size = StoredSize(*old);
  if (!old_size.ok()) return old_size.status();

  NeedleFields tomb;
  tomb.cookie = cookie;
  tomb.id = id;
  tomb.append_at_ns = NextAppendAtNs(append_at_ns_hint);
  std::string rec = EncodeNeedleV3(tomb);
  if (version() != 3) rec.resize(ActualSize(0, version()));
  const uint64_t offset = dat_end_;
  if (Status s = PwriteFull(dat_fd_, rec.data(), rec.size(), off_t(offset)); !s.ok()) {
    if (ftruncate(dat_fd_, off_t(offset)) != 0) KLOG_ERROR("volume %u: cannot undo a partial write", this->id());
    return s;
  }
  dat_end_ += rec.size();
  if (Status s = AppendIdx(id, offset / kNeedlePaddingSize, kTombstoneSize); !s.ok()) {
    dat_end_ = offset;
    if (ftruncate(dat_fd_, off_t(offset)) != 0) KLOG_ERROR("volume %u: cannot undo a partial write", this->id());
    return s;
  }
  counters_.deleted_count++;
  counters_.deleted_bytes += old_size.value();
  counters_.dat_size = dat_end_;
  IndexValue d = *old;
  d.deleted = true;
  Publish(id, d);
  return old_size.value();
}

Status Volume::Sync() {
  if (fdatasync(dat_fd_) != 0) return Status::IOError(ErrnoMessage("fsync " + names_.Dat()));
  if (fdatasync(idx_fd_) != 0) return Status::IOError(ErrnoMessage("fsync " + names_.Idx()));
  return Status::Ok();
}

Status Volume::ReadNeedle(NeedleId id, std::string* record, ParsedNeedle* out) const {
  const auto v = segment_.Get(id);
  if (!v || v->offset_units == 0) return Status::NotFound("not found");
  if (v->deleted) return Status::NotFound("already deleted");
  auto size = StoredSize(*v);
  if (!size.ok()) return size.status();
  record->resize(ActualSize(size.value(), version()));
  if (Status s = PreadFull(dat_fd_, record->data(), record->size(), off_t(v->offset_units * kNeedlePaddingSize)); !s.ok()) return s;
  return ParseNeedle(reinterpret_cast<const uint8_t*>(record->data()), record->size(), size.value(), version(), out);
}

Status Volume::SaveInfo() { return SaveVolumeInfo(names_.Vif(), info_); }

Status Volume::SetReadOnly(bool ro, bool persist) {
  read_only_ = ro;
  segment_.SetReadOnly(ro);
  if (trailing_) trailing_->SetReadOnly(ro);
  if (persist) {
    info_.read_only = ro;
    return SaveInfo();
  }
  return Status::Ok();
}

Result<IndexSegmentWriter> Volume::GrowSegment() {
  auto bigger = IndexSegmentWriter::Create(("kelp-idx-" + std::to_string(id())).c_str(), segment_.capacity() * 2,
                                           segment_.generation() + 1);
  if (!bigger.ok()) return bigger.status();
  segment_.CopyTo(&bigger.value());
  IndexSegmentWriter old = std::move(segment_);
  segment_ = std::move(bigger.value());
  return old;
}

}  // namespace kelp
