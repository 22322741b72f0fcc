#include "storage/ec_volume.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/needle.h"

namespace kelp {
namespace {

constexpr size_t kEcjRecord = 8;


}  // namespace

EcVolume::~EcVolume() {
  if (ecx_fd_ >= 0) env_->Close(ecx_fd_);
  if (ecj_fd_ >= 0) env_->Close(ecj_fd_);
  for (auto& [shard, f] : shards_)
    if (f.fd >= 0) env_->Close(f.fd);
}

namespace {

// A sidecar is a few hundred bytes per shard per GiB; anything past this is not one.
constexpr int64_t kMaxEcsumBytes = 16 << 20;

}  // namespace

EcsumFile ReadEcsumFile(Env* env, const std::vector<std::string>& candidates) {
  EcsumFile file;
  for (const std::string& path : candidates) {
    const int64_t size = FileSizeOf(path);
    if (size < 0) continue;
    file.present = true;
    file.path = path;
    const int fd = size <= kMaxEcsumBytes ? env->Open(path, O_RDONLY | O_CLOEXEC, 0) : -1;
    if (fd < 0) {
      file.unreadable = true;
      return file;
    }
    file.bytes.resize(size_t(size));
    file.unreadable = !EnvPreadFull(env, fd, file.bytes.data(), file.bytes.size(), 0).ok();
    env->Close(fd);
    return file;
  }
  return file;
}

Result<std::shared_ptr<EcVolume>> EcVolume::Open(Env* env, const EcBases& bases, VolumeId id, const std::string& collection,
                                                 int offset_bytes) {
  std::shared_ptr<EcVolume> v(new EcVolume());
  v->env_ = env;
  v->id_ = id;
  v->collection_ = collection;
  v->bases_ = bases;
  v->offset_bytes_ = offset_bytes;
  // The index: a non-empty one in the data directory, then the index
  // directory; else whichever exists (an empty index is a valid one).
  const std::string data_ecx = bases.data + ".ecx", idx_ecx = bases.idx + ".ecx";
  const int64_t data_size = FileSizeOf(data_ecx), idx_size = FileSizeOf(idx_ecx);
  std::string base;
  if (data_size > 0) {
    base = bases.data;
  } else if (idx_size > 0) {
    base = bases.idx;
  } else if (data_size == 0) {
    base = bases.data;
  } else if (idx_size == 0) {
    base = bases.idx;
  } else {
    return Status::NotFound("cannot open ec volume index " + bases.data + ".ecx (or " + bases.idx + ".ecx): file does not exist");
  }
  v->ecx_path_ = base + ".ecx";
  v->ecj_path_ = base + ".ecj";
  v->ecx_fd_ = env->Open(v->ecx_path_, O_RDONLY | O_CLOEXEC, 0);
  if (v->ecx_fd_ < 0) return Status::IOError("cannot open ec volume index " + v->ecx_path_ + ": " + GoErrno(errno));
  auto ecx_size = EnvFileSize(env, v->ecx_fd_);
  if (!ecx_size.ok()) return ecx_size.status();
  v->ecx_rows_ = uint64_t(ecx_size.value()) / uint64_t(IdxEntrySize(offset_bytes));

  v->ecj_fd_ = env->Open(v->ecj_path_, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (v->ecj_fd_ < 0) return Status::IOError("cannot open ec volume journal " + v->ecj_path_ + ": " + GoErrno(errno));
  auto ecj_size = EnvFileSize(env, v->ecj_fd_);
  if (!ecj_size.ok()) return ecj_size.status();
  uint64_t whole = uint64_t(ecj_size.value()) / kEcjRecord * kEcjRecord;
  if (whole != uint64_t(ecj_size.value())) {
    KLOG_WARN("ec volume %u: truncating torn .ecj tail %lld -> %llu bytes", id, static_cast<long long>(ecj_size.value()),
              static_cast<unsigned long long>(whole));
    if (env->Ftruncate(v->ecj_fd_, off_t(whole)) != 0 || env->Fdatasync(v->ecj_fd_) != 0)
      return Status::IOError("ec volume " + std::to_string(id) + ": repair torn .ecj tail: " + GoErrno(errno));
  }
  std::vector<uint8_t> journal(whole);
  if (whole > 0) {
    if (Status s = EnvPreadFull(env, v->ecj_fd_, journal.data(), journal.size(), 0); !s.ok()) return s;
  }
  for (size_t at = 0; at < journal.size(); at += kEcjRecord) v->deleted_.insert(GetU64(journal.data() + at));
  v->ecj_size_ = whole;

  // The .vif: the data directory's, else the index directory's; an empty
  // or absent one leaves version 3 and the default ratio.
  for (const std::string& vif : {bases.data + ".vif", bases.idx + ".vif"}) {
    bool exists = false;
    if (FileSizeOf(vif) <= 0) continue;
    auto info = LoadVolumeInfo(vif, &exists);
    if (!exists) continue;
    if (!info.ok()) {
      KLOG_WARN("ec volume %u: %s: %s", id, vif.c_str(), info.status().message().c_str());
      break;
    }
    const VolumeInfo& i = info.value();
    if (i.version != 0) v->version_ = i.version;
    v->dat_file_size_ = i.dat_file_size;
    v->expire_at_sec_ = i.expire_at_sec;
    if (i.ec_shard_config) {
      const EcShardConfigInfo& c = *i.ec_shard_config;
      if (c.data_shards > 0 && c.parity_shards > 0 && c.data_shards + c.parity_shards <= uint32_t(kMaxEcShards)) {
        v->data_shards_ = int(c.data_shards);
        v->parity_shards_ = int(c.parity_shards);
      } else if (c.data_shards != 0 || c.parity_shards != 0) {
        KLOG_WARN("ec volume %u: invalid EC config in %s (data=%u, parity=%u), using 10+4", id, vif.c_str(), c.data_shards,
                  c.parity_shards);
      }
      v->encode_ts_ns_ = c.encode_ts_ns;
      v->block_size_ = c.block_size;
    }
    break;
  }
  v->checksum_sidecar_ = ReadEcsumFile(env, {bases.data + ".ecsum", bases.idx + ".ecsum"});
  return v;
}

EcLayout EcVolume::layout() const {
  return block_size_ > 0 ? EcLayout::Uniform(data_shards_, uint64_t(block_size_)) : EcLayout::Legacy(data_shards_);
}

uint64_t EcVolume::ShardDatSize() const {
  if (dat_file_size_ > 0) return uint64_t(dat_file_size_) / uint64_t(data_shards_);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [shard, f] : shards_)
    if (f.size > 0) return uint64_t(f.size) - 1;
  return 0;
}

Result<std::optional<IdxEntry>> EcVolume::Find(NeedleId key) const {
  const size_t row = size_t(IdxEntrySize(offset_bytes_));
  uint8_t buf[32];
  uint64_t lo = 0, hi = ecx_rows_;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (Status s = EnvPreadFull(env_, ecx_fd_, buf, row, off_t(mid * row)); !s.ok()) return s;
    const IdxEntry e = DecodeIdxEntry(buf, offset_bytes_);
    if (e.id == key) return std::optional<IdxEntry>(e);
    if (e.id < key) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return std::optional<IdxEntry>();
}

bool EcVolume::Journaled(NeedleId key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return deleted_.count(key) != 0;
}

Status EcVolume::JournalDelete(NeedleId key) {
  auto found = Find(key);
  if (!found.ok()) return found.status();
  if (!found.value()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  if (found.value()->size < 0) {  // folded into the index already
    deleted_.insert(key);
    return Status::Ok();
  }
  if (deleted_.count(key)) return Status::Ok();
  if (ecj_fd_ < 0) return Status::IOError("ec volume " + std::to_string(id_) + " closed");
  // Appended after what the file holds now (a copied journal may have grown it).
  if (auto size = EnvFileSize(env_, ecj_fd_); size.ok()) ecj_size_ = std::max(ecj_size_, uint64_t(size.value()) / kEcjRecord * kEcjRecord);
  uint8_t record[kEcjRecord];
  PutU64(record, key);
  if (Status s = EnvPwriteFull(env_, ecj_fd_, record, sizeof record, off_t(ecj_size_)); !s.ok()) {
    env_->Ftruncate(ecj_fd_, off_t(ecj_size_));
    return Status::IOError("write ecj: " + s.message());
  }
  if (env_->Fdatasync(ecj_fd_) != 0) {
    const int e = errno;
    env_->Ftruncate(ecj_fd_, off_t(ecj_size_));
    return Status::IOError("sync ecj: " + GoErrno(e));
  }
  ecj_size_ += kEcjRecord;
  deleted_.insert(key);
  return Status::Ok();
}

size_t EcVolume::deleted_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return deleted_.size();
}

void EcVolume::Sync() const {
  env_->Fdatasync(ecx_fd_);
  std::lock_guard<std::mutex> lock(mu_);
  if (ecj_fd_ >= 0) env_->Fdatasync(ecj_fd_);
}

Result<EcVolume::IndexCounts> EcVolume::CountIndex() const {
  IndexCounts c;
  Status s = ForEachIdxEntry(ecx_fd_, ecx_rows_ * uint64_t(IdxEntrySize(offset_bytes_)), offset_bytes_, [&](const IdxEntry& e) {
    if (e.size < 0) {
      c.deleted++;
    } else {
      c.live++;
      c.live_bytes += uint64_t(e.size);
    }
  });
  if (!s.ok()) return s;
  return c;
}

Result<std::string> EcVolume::ReadLocalRecord(const IdxEntry& row) const {
  const uint64_t length = ActualSize(uint32_t(row.size), uint8_t(version_));
  const std::vector<EcInterval> pieces = LocateEcRange(layout(), ShardDatSize(), row.ByteOffset(), length);
  std::string record;
  record.reserve(size_t(length));
  for (const EcInterval& piece : pieces) {
    int fd = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = shards_.find(piece.shard);
      if (it != shards_.end()) fd = it->second.fd;
    }
    if (fd < 0) return Status::NotFound("ec shard " + std::to_string(id_) + "." + std::to_string(piece.shard) + " is not mounted here");
    const size_t at = record.size();
    record.resize(at + size_t(piece.size));
    size_t got = 0;
    if (Status s = EnvPreadUpTo(env_, fd, record.data() + at, size_t(piece.size), off_t(piece.shard_offset), &got); !s.ok()) return s;
    if (got != piece.size)
      return Status::IOError("short read of ec shard " + std::to_string(id_) + "." + std::to_string(piece.shard) + " at " +
                             std::to_string(piece.shard_offset) + ": got " + std::to_string(got) + " want " + std::to_string(piece.size));
  }
  return record;
}

void EcVolume::AddShard(int shard, EcShardFile file) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(shard);
  if (it != shards_.end() && it->second.fd >= 0) env_->Close(it->second.fd);
  shards_[shard] = file;
}

bool EcVolume::RemoveShard(int shard) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(shard);
  if (it == shards_.end()) return false;
  if (it->second.fd >= 0) env_->Close(it->second.fd);
  shards_.erase(it);
  return true;
}

std::map<int, EcShardFile> EcVolume::shards() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shards_;
}

bool EcVolume::HasShard(int shard) const {
  std::lock_guard<std::mutex> lock(mu_);
  return shards_.count(shard) != 0;
}

int EcVolume::DupShard(int shard, int64_t* size) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(shard);
  if (it == shards_.end()) return -1;
  if (size) *size = it->second.size;
  return fcntl(it->second.fd, F_DUPFD_CLOEXEC, 0);
}

bool EcVolume::empty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shards_.empty();
}

std::string EcVolume::disk_type() const {
  std::lock_guard<std::mutex> lock(mu_);
  return disk_type_;
}

void EcVolume::set_disk_type(const std::string& t) {
  std::lock_guard<std::mutex> lock(mu_);
  disk_type_ = t;
}

namespace {

// Marks the .ecx rows of `ids` deleted through a writable descriptor of it, then syncs it.
Status MarkRowsDeleted(Env* env, const std::string& ecx_path, int offset_bytes, const std::vector<NeedleId>& ids) {
  if (ids.empty()) return Status::Ok();
  const int fd = env->Open(ecx_path, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return Status::IOError("open " + ecx_path + ": " + GoErrno(errno));
  struct Closer {
    Env* env;
    int fd;
    ~Closer() { env->Close(fd); }
  } closer{env, fd};
  auto size = EnvFileSize(env, fd);
  if (!size.ok()) return size.status();
  const uint64_t row = uint64_t(IdxEntrySize(offset_bytes)), rows = uint64_t(size.value()) / row;
  const uint8_t tombstone[4] = {0xff, 0xff, 0xff, 0xff};
  uint8_t buf[32];
  for (NeedleId key : ids) {
    uint64_t lo = 0, hi = rows;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo) / 2;
      if (Status s = EnvPreadFull(env, fd, buf, size_t(row), off_t(mid * row)); !s.ok()) return s;
      const NeedleId id = GetU64(buf);
      if (id == key) {
        if (Status s = EnvPwriteFull(env, fd, tombstone, 4, off_t(mid * row + row - 4)); !s.ok()) return s;
        break;
      }
      if (id < key) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
  }
  if (env->Fdatasync(fd) != 0) return Status::IOError("sync " + ecx_path + ": " + GoErrno(errno));
  return Status::Ok();
}

}  // namespace

Status EcVolume::FoldJournal() {
  std::lock_guard<std::mutex> lock(mu_);
  if (ecj_fd_ < 0) return Status::Ok();
  // The file as it is on disk: a copy (VolumeEcShardsCopy of the .ecj, as
  // decode gathers peers' journals) may have written it behind this object.
  auto size = EnvFileSize(env_, ecj_fd_);
  if (!size.ok()) return size.status();
  std::vector<uint8_t> journal(uint64_t(size.value()) / kEcjRecord * kEcjRecord);
  if (!journal.empty())
    if (Status s = EnvPreadFull(env_, ecj_fd_, journal.data(), journal.size(), 0); !s.ok()) return s;
  for (size_t at = 0; at < journal.size(); at += kEcjRecord) deleted_.insert(GetU64(journal.data() + at));
  // Every delete this volume knows, not only what the file holds now: a
  // copied journal writes over the start of the local one (Go's quirk).
  const std::vector<NeedleId> ids(deleted_.begin(), deleted_.end());
  if (ids.empty()) return Status::Ok();
  if (Status s = MarkRowsDeleted(env_, ecx_path_, offset_bytes_, ids); !s.ok()) return s;
  if (env_->Ftruncate(ecj_fd_, 0) != 0 || env_->Fdatasync(ecj_fd_) != 0) return Status::IOError("empty " + ecj_path_ + ": " + GoErrno(errno));
  ecj_size_ = 0;
  return Status::Ok();
}

Status FoldEcJournalFile(Env* env, const std::string& ecx_path, const std::string& ecj_path, int offset_bytes) {
  const int fd = env->Open(ecj_path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return errno == ENOENT ? Status::Ok() : Status::IOError("open " + ecj_path + ": " + GoErrno(errno));
  auto size = EnvFileSize(env, fd);
  std::vector<uint8_t> journal(size.ok() ? size_t(size.value()) : 0);
  Status read = size.ok() ? (journal.empty() ? Status::Ok() : EnvPreadFull(env, fd, journal.data(), journal.size(), 0)) : size.status();
  env->Close(fd);
  if (!read.ok()) return read;
  if (journal.size() % kEcjRecord != 0) return Status::Corruption("rebuild: read ecj: unexpected EOF");
  std::vector<NeedleId> ids;
  for (size_t at = 0; at < journal.size(); at += kEcjRecord) ids.push_back(GetU64(journal.data() + at));
  if (Status s = MarkRowsDeleted(env, ecx_path, offset_bytes, ids); !s.ok()) return s;
  return EnvRemoveIfExists(env, ecj_path);
}

int EcShardIdOfName(const std::string& name, const std::string& base_name) {
  if (name.size() < base_name.size() + 5 || name.compare(0, base_name.size(), base_name) != 0) return -1;
  const std::string rest = name.substr(base_name.size());
  if (rest.size() < 5 || rest.size() > 6 || rest.compare(0, 3, ".ec") != 0) return -1;
  int id = 0;
  for (size_t i = 3; i < rest.size(); ++i) {
    if (rest[i] < '0' || rest[i] > '9') return -1;
    id = id * 10 + (rest[i] - '0');
  }
  return id < kMaxEcShards ? id : -1;
}

}  // namespace kelp
