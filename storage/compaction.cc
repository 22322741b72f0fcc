#include "storage/compaction.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/idx_entry.h"
#include "common/log.h"
#include "common/needle.h"
#include "common/throttle.h"

namespace kelp {
namespace {

constexpr Cookie kFakeTombstoneCookie = 0x12345678;

uint64_t WallNs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// The live rows of an .idx prefix: the last row per key wins; tombstones and
// offset-0 rows remove the key. Sorted by id, as Go's copy walks them.
Status ReadLiveRows(Env* env, int fd, uint64_t length, int offset_bytes, std::map<NeedleId, IdxEntry>* out) {
  const int entry = IdxEntrySize(offset_bytes);
  std::vector<uint8_t> buf(size_t(entry) * 4096);
  for (uint64_t at = 0; at + uint64_t(entry) <= length;) {
    const uint64_t n = std::min<uint64_t>((length - at) / uint64_t(entry), 4096);
    if (Status s = EnvPreadFull(env, fd, buf.data(), n * uint64_t(entry), off_t(at)); !s.ok()) return s;
    for (uint64_t i = 0; i < n; ++i) {
      const IdxEntry e = DecodeIdxEntry(buf.data() + i * uint64_t(entry), offset_bytes);
      if (e.IsDeleted()) out->erase(e.id);
      else (*out)[e.id] = e;
    }
    at += n * uint64_t(entry);
  }
  return Status::Ok();
}

// Errors a needle can have for good: the copy leaves it behind (Go 4.21+).
bool PermanentDamage(const Status& s) {
  return s.code() == Code::kCorruption || s.code() == Code::kInvalidArgument || s.code() == Code::kNotFound;
}

// The record as Go's copy writes it: re-encoded, so the size is recomputed and
// the CRC is the data's computed one. Other versions are copied verbatim.
std::string Reencode(const ParsedNeedle& n, const uint8_t* raw, size_t len, uint8_t version) {
  if (version != kVersion3) return std::string(reinterpret_cast<const char*>(raw), len);
  NeedleFields f;
  f.cookie = n.header.cookie;
  f.id = n.header.id;
  f.data = n.data;
  f.flags = n.flags;
  f.name = n.name;
  f.mime = n.mime;
  f.last_modified = n.last_modified;
  f.ttl = n.ttl;
  f.pairs = n.pairs;
  f.append_at_ns = n.append_at_ns;
  return EncodeNeedleV3(f);
}

Status SyncDirs(Env* env, const VolumeFileNames& names) {
  if (env->SyncDir(names.dir) != 0) return Status::IOError("sync dir " + names.dir + ": " + GoErrno(errno));
  if (names.idx_dir != names.dir && env->SyncDir(names.idx_dir) != 0)
    return Status::IOError("sync dir " + names.idx_dir + ": " + GoErrno(errno));
  return Status::Ok();
}

// Go removes the derived leveldb and redb maps on every swap: a Go server
// running -index=leveldb must not trust a map of the old generation.
void RemoveDerivedIndexes(const VolumeFileNames& names) {
  std::error_code ec;
  std::filesystem::remove_all(names.Base(names.idx_dir) + ".ldb", ec);
  std::filesystem::remove(names.Base(names.idx_dir) + ".rdb", ec);
}

}  // namespace

std::string FakeTombstone(NeedleId id, uint8_t version, uint64_t append_at_ns) {
  std::string out(version == kVersion3 ? 32 : 24, '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(out.data());
  PutU32(p, kFakeTombstoneCookie);
  PutU64(p + 4, id);
  // size 0 at [12, 16), the CRC of no data at [16, 20)
  if (version == kVersion3) {
    PutU64(p + 20, append_at_ns);
  } else {
    uint8_t id_bytes[8];
    PutU64(id_bytes, id);
    std::memcpy(p + 20, id_bytes, 4);  // Go's scratch padding: the first bytes of the big-endian id
  }
  return out;
}

Result<CompactionFiles> OpenCompactionFiles(const VolumeFileNames& names, int64_t preallocate, Env* env) {
  CompactionFiles files(env);
  files.idx = env->Open(names.Idx(), O_RDONLY | O_CLOEXEC, 0);
  if (files.idx < 0) return Status::IOError(ErrnoMessage("open " + names.Idx()));
  files.dat = env->Open(names.Dat(), O_RDONLY | O_CLOEXEC, 0);
  if (files.dat < 0) return Status::IOError(ErrnoMessage("open " + names.Dat()));
  // An older copy's index must never describe this copy's data.
  if (env->Unlink(names.Cpx()) != 0 && errno != ENOENT) return Status::IOError(ErrnoMessage("remove " + names.Cpx()));
  files.cpd = env->Open(names.Cpd(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (files.cpd < 0) return Status::IOError(ErrnoMessage("create " + names.Cpd()));
  if (preallocate > 0) (void)fallocate(files.cpd, FALLOC_FL_KEEP_SIZE, 0, preallocate);  // advisory, as Go's
  files.cpx = env->Open(names.Cpx(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (files.cpx < 0) return Status::IOError(ErrnoMessage("create " + names.Cpx()));
  return files;
}

CompactionFiles::~CompactionFiles() {
  for (int fd : {idx, dat, cpd, cpx})
    if (fd >= 0) env_->Close(fd);
}

CompactionFiles::CompactionFiles(CompactionFiles&& o) noexcept : idx(o.idx), dat(o.dat), cpd(o.cpd), cpx(o.cpx), env_(o.env_) {
  o.idx = o.dat = o.cpd = o.cpx = -1;
}

Result<CompactionOutcome> CopyLiveNeedlesInto(const CompactionFiles& files, const VolumeFileNames& names, int offset_bytes,
                                              const CompactionStart& plan, const CompactionOptions& options, Env* env) {
  const uint8_t version = plan.super_block.version;
  std::map<NeedleId, IdxEntry> live;
  if (Status s = ReadLiveRows(env, files.idx, plan.idx_end, offset_bytes, &live); !s.ok()) return s;
  SuperBlock sb = plan.super_block;
  sb.compaction_revision = uint16_t(sb.compaction_revision + 1);
  const std::string block = sb.Encode();
  if (Status s = EnvPwriteFull(env, files.cpd, block.data(), block.size(), 0); !s.ok()) return s;

  CompactionOutcome out;
  uint64_t end = block.size();
  const uint64_t now_s = options.now_s ? options.now_s : WallNs() / 1000000000ull;
  const uint32_t ttl_minutes = plan.super_block.ttl.Minutes();
  Throttle throttle(options.bytes_per_second);
  std::vector<uint8_t> idx_rows;
  const int entry = IdxEntrySize(offset_bytes);
  std::vector<uint8_t> rec;
  for (const auto& [id, e] : live) {
    if (options.progress && !options.progress(e.ByteOffset())) return Status::IOError("interrupted");
    const uint32_t size = uint32_t(e.size);
    rec.resize(ActualSize(size, version));
    ParsedNeedle n;
    Status s = EnvPreadFull(env, files.dat, rec.data(), rec.size(), off_t(e.ByteOffset()));
    if (s.ok()) s = ParseNeedle(rec.data(), rec.size(), size, version, &n);
    else if (s.code() != Code::kCorruption) return Status::IOError("cannot hydrate needle from file: " + s.message());
    if (!s.ok()) {
      if (!PermanentDamage(s)) return Status::IOError("cannot hydrate needle from file: " + s.message());
      KLOG_WARN("vacuum volume %u: dropping unreadable needle key=%llx offset=%llu size=%u: %s", names.id,
                static_cast<unsigned long long>(id), static_cast<unsigned long long>(e.ByteOffset()), size, s.message().c_str());
      out.dropped++;
      out.dropped_bytes += size;
      continue;
    }
    if ((n.flags & kFlagHasTtl) && now_s >= n.last_modified + uint64_t(ttl_minutes) * 60) {
      out.expired++;
      continue;
    }
    const std::string bytes = Reencode(n, rec.data(), rec.size(), version);
    if (Status w = EnvPwriteFull(env, files.cpd, bytes.data(), bytes.size(), off_t(end)); !w.ok()) return w;
    const uint32_t new_size = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(bytes.data())).size;
    const size_t at = idx_rows.size();
    idx_rows.resize(at + size_t(entry));
    EncodeIdxEntry(IdxEntry{id, end / kNeedlePaddingSize, int32_t(new_size)}, offset_bytes, idx_rows.data() + at);
    end += bytes.size();
    out.copied++;
    throttle.Add(bytes.size());
  }
  out.cpd_size = end;
  if (ttl_minutes == 0) {
    // Go's sanity check: the copy cannot be smaller than the live content.
    const uint64_t removed = plan.deleted_bytes + out.dropped_bytes;
    const uint64_t expected = plan.content_bytes > removed ? plan.content_bytes - removed : 0;
    if (plan.content_bytes > plan.deleted_bytes && expected > end)
      return Status::IOError("volume " + std::to_string(names.id) + " unexpected new data size: " + std::to_string(end) +
                             " does not match size of content minus deleted: " + std::to_string(expected));
  }
  if (Status s = EnvPwriteFull(env, files.cpx, idx_rows.data(), idx_rows.size(), 0); !s.ok()) return s;
  if (env->Fdatasync(files.cpx) != 0) return Status::IOError("sync compacted idx " + names.Cpx() + ": " + GoErrno(errno));
  if (env->Fdatasync(files.cpd) != 0) return Status::IOError("close compacted dat " + names.Cpd() + ": " + GoErrno(errno));
  return out;
}

Result<CompactionOutcome> CopyLiveNeedles(const VolumeFileNames& names, int offset_bytes, const CompactionStart& plan,
                                          const CompactionOptions& options, Env* env) {
  auto files = OpenCompactionFiles(names, options.preallocate, env);
  if (!files.ok()) return files.status();
  auto out = CopyLiveNeedlesInto(files.value(), names, offset_bytes, plan, options, env);
  if (!out.ok()) return out;
  const int cpd = files.value().cpd;
  files.value().cpd = -1;
  if (env->Close(cpd) != 0) return Status::IOError("close compacted dat " + names.Cpd() + ": " + GoErrno(errno));
  return out;
}

Status CheckCompactedCopy(const VolumeFileNames& names, int offset_bytes, const CompactionStart& plan, const CompactionOutcome& claimed,
                          Env* env) {
  auto bad = [&](const std::string& why) { return Status::Corruption("the compaction job's output is not a copy of volume " + std::to_string(names.id) + ": " + why); };
  Fd idx(env, env->Open(names.Idx(), O_RDONLY | O_CLOEXEC, 0));
  if (idx.get() < 0) return Status::IOError(ErrnoMessage("open " + names.Idx()));
  std::map<NeedleId, IdxEntry> live;
  if (Status s = ReadLiveRows(env, idx.get(), plan.idx_end, offset_bytes, &live); !s.ok()) return s;
  if (claimed.copied + claimed.dropped + claimed.expired != live.size())
    return bad(std::to_string(claimed.copied) + " copied, " + std::to_string(claimed.dropped) + " dropped and " + std::to_string(claimed.expired) +
               " expired of " + std::to_string(live.size()) + " live needles");
  Fd cpd(env, env->Open(names.Cpd(), O_RDONLY | O_CLOEXEC, 0));
  if (cpd.get() < 0) return Status::IOError(ErrnoMessage("open " + names.Cpd()));
  Fd cpx(env, env->Open(names.Cpx(), O_RDONLY | O_CLOEXEC, 0));
  if (cpx.get() < 0) return Status::IOError(ErrnoMessage("open " + names.Cpx()));
  auto cpd_size = EnvFileSize(env, cpd.get());
  if (!cpd_size.ok()) return cpd_size.status();
  auto cpx_size = EnvFileSize(env, cpx.get());
  if (!cpx_size.ok()) return cpx_size.status();
  const uint64_t entry = uint64_t(IdxEntrySize(offset_bytes));
  if (uint64_t(cpd_size.value()) != claimed.cpd_size) return bad(".cpd holds " + std::to_string(cpd_size.value()) + " bytes, not " + std::to_string(claimed.cpd_size));
  if (uint64_t(cpx_size.value()) != claimed.copied * entry) return bad(".cpx holds " + std::to_string(cpx_size.value()) + " bytes for " + std::to_string(claimed.copied) + " needles");

  SuperBlock expected = plan.super_block;
  expected.compaction_revision = uint16_t(expected.compaction_revision + 1);
  const std::string block = expected.Encode();
  std::string head(block.size(), '\0');
  if (Status s = EnvPreadFull(env, cpd.get(), head.data(), head.size(), 0); !s.ok()) return s;
  if (head != block) return bad("its superblock is not the volume's with the revision bumped");

  // Rows in ascending id order, each a live id, records back to back from the
  // superblock to the end of .cpd, each headed by its row's id and size.
  const uint8_t version = plan.super_block.version;
  std::vector<uint8_t> rows(size_t(cpx_size.value()));
  if (Status s = EnvPreadFull(env, cpx.get(), rows.data(), rows.size(), 0); !s.ok()) return s;
  uint64_t at = block.size();
  NeedleId previous = 0;
  for (size_t i = 0; i < claimed.copied; ++i) {
    const IdxEntry e = DecodeIdxEntry(rows.data() + i * entry, offset_bytes);
    if (i > 0 && e.id <= previous) return bad(".cpx ids are not ascending at row " + std::to_string(i));
    previous = e.id;
    if (!live.count(e.id)) return bad("needle " + GoHexOfNeedleId(e.id) + " is not live in the volume");
    if (e.ByteOffset() != at || e.size < 0) return bad(".cpx row " + std::to_string(i) + " does not follow the record before it");
    uint8_t header[kNeedleHeaderSize];
    if (Status s = EnvPreadFull(env, cpd.get(), header, sizeof header, off_t(at)); !s.ok()) return bad("row " + std::to_string(i) + ": " + s.message());
    const NeedleHeader h = ParseNeedleHeader(header);
    if (h.id != e.id || h.size != uint32_t(e.size)) return bad("the record at " + std::to_string(at) + " is not the one its row names");
    at += ActualSize(uint32_t(e.size), version);
  }
  if (at != claimed.cpd_size) return bad("the records end at " + std::to_string(at) + ", .cpd at " + std::to_string(claimed.cpd_size));
  return Status::Ok();
}

Status CarryOverWrites(const VolumeFileNames& names, int offset_bytes, uint64_t idx_from, uint16_t revision, uint8_t version, Env* env) {
  const int entry = IdxEntrySize(offset_bytes);
  Fd idx(env, env->Open(names.Idx(), O_RDONLY | O_CLOEXEC, 0));
  if (idx.get() < 0) return Status::IOError(ErrnoMessage("open " + names.Idx()));
  auto size = EnvFileSize(env, idx.get());
  if (!size.ok()) return size.status();
  const uint64_t idx_size = uint64_t(size.value());
  if (idx_size % uint64_t(entry) != 0)
    return Status::IOError("verifyIndexFileIntegrity " + names.Idx() + " failed: index file's size is " + std::to_string(idx_size) +
                           " bytes, maybe corrupted");
  if (idx_size == 0 || idx_size <= idx_from) return Status::Ok();
  Fd dat(env, env->Open(names.Dat(), O_RDONLY | O_CLOEXEC, 0));
  if (dat.get() < 0) return Status::IOError(ErrnoMessage("open " + names.Dat()));
  uint8_t head[kSuperBlockSize];
  if (Status s = EnvPreadFull(env, dat.get(), head, sizeof head, 0); !s.ok()) return s;
  const uint16_t old_revision = GetU16(head + 4);
  if (old_revision != revision)
    return Status::IOError("current old dat file's compact revision " + std::to_string(old_revision) + " is not the expected one " +
                           std::to_string(revision));

  // The newest row per key, in the order the keys were last written.
  std::vector<uint8_t> tail(size_t(idx_size - idx_from));
  if (Status s = EnvPreadFull(env, idx.get(), tail.data(), tail.size(), off_t(idx_from)); !s.ok()) return s;
  std::unordered_map<NeedleId, size_t> newest;
  std::vector<IdxEntry> rows;
  for (size_t at = 0; at + size_t(entry) <= tail.size(); at += size_t(entry)) {
    const IdxEntry e = DecodeIdxEntry(tail.data() + at, offset_bytes);
    newest[e.id] = rows.size();
    rows.push_back(e);
  }

  Fd cpd(env, env->Open(names.Cpd(), O_RDWR | O_CLOEXEC, 0));
  if (cpd.get() < 0) return Status::IOError("open dat file " + names.Cpd() + " failed: open " + names.Cpd() + ": " + GoErrno(errno));
  Fd cpx(env, env->Open(names.Cpx(), O_RDWR | O_CLOEXEC, 0));
  if (cpx.get() < 0) return Status::IOError("open idx file " + names.Cpx() + " failed: open " + names.Cpx() + ": " + GoErrno(errno));
  uint8_t new_head[kSuperBlockSize];
  if (Status s = EnvPreadFull(env, cpd.get(), new_head, sizeof new_head, 0); !s.ok()) return s;
  const uint16_t new_revision = GetU16(new_head + 4);
  if (new_revision != uint16_t(old_revision + 1))
    return Status::IOError("oldDatFile " + names.Dat() + " 's compact revision is " + std::to_string(old_revision) + " while newDatFile " +
                           names.Cpd() + " 's compact revision is " + std::to_string(new_revision));
  auto dat_size = EnvFileSize(env, cpd.get());
  if (!dat_size.ok()) return dat_size.status();
  uint64_t end = uint64_t(dat_size.value());
  if (end % kNeedlePaddingSize != 0) {
    const uint64_t pad = kNeedlePaddingSize - end % kNeedlePaddingSize;
    const char zeros[8] = {0};
    if (Status s = EnvPwriteFull(env, cpd.get(), zeros, pad, off_t(end)); !s.ok()) return s;
    end += pad;
  }
  auto idx_len = EnvFileSize(env, cpx.get());
  if (!idx_len.ok()) return idx_len.status();
  uint64_t idx_end = uint64_t(idx_len.value());

  // Nothing here needs an order on disk: until the commit marker exists a
  // crash rolls the copy back. The data is synced before the rows naming it
  // are written all the same, and once for all rows: the volume's writes wait
  // for this, so its time is that of one sync, not one per carried write.
  std::vector<uint8_t> rec;
  std::vector<uint8_t> new_rows;
  uint8_t row[17];
  for (size_t i = 0; i < rows.size(); ++i) {
    const IdxEntry& e = rows[i];
    if (newest[e.id] != i) continue;  // superseded by a later row of the same key
    std::string_view bytes;
    std::string tomb;
    int32_t size = e.size;
    if (e.offset_units != 0 && e.size > 0) {
      rec.resize(ActualSize(uint32_t(e.size), version));
      if (Status s = EnvPreadFull(env, dat.get(), rec.data(), rec.size(), off_t(e.ByteOffset())); !s.ok())
        return Status::IOError("ReadNeedleBlob " + names.Dat() + " key " + std::to_string(e.id) + " offset " +
                               std::to_string(e.offset_units) + " size " + std::to_string(e.size) + " failed: " + s.message());
      bytes = std::string_view(reinterpret_cast<const char*>(rec.data()), rec.size());
    } else {
      tomb = FakeTombstone(e.id, version, WallNs());
      bytes = tomb;
    }
    if (Status s = EnvPwriteFull(env, cpd.get(), bytes.data(), bytes.size(), off_t(end)); !s.ok()) return s;
    EncodeIdxEntry(IdxEntry{e.id, end / kNeedlePaddingSize, size}, offset_bytes, row);
    new_rows.insert(new_rows.end(), row, row + entry);
    end += bytes.size();
  }
  if (env->Fdatasync(cpd.get()) != 0) return Status::IOError("sync " + names.Cpd() + ": " + GoErrno(errno));
  if (!new_rows.empty())
    if (Status s = EnvPwriteFull(env, cpx.get(), new_rows.data(), new_rows.size(), off_t(idx_end)); !s.ok()) return s;
  if (env->Fdatasync(cpx.get()) != 0) return Status::IOError("sync idx " + names.Cpx() + ": " + GoErrno(errno));
  if (cpd.Release() != 0) return Status::IOError("close " + names.Cpd() + ": " + GoErrno(errno));
  return Status::Ok();
}

Status SwapInCompacted(const VolumeFileNames& names, Env* env, bool* committed) {
  *committed = false;
  // Checked before the marker exists, so a refused commit leaves none.
  if (!FileExists(names.Cpd()) || !FileExists(names.Cpx()))
    return Status::IOError("volume " + std::to_string(names.id) + " compact swap aborted: missing .cpd/.cpx");
  // Both copies' names must be durable before the marker is: a load that
  // finds the marker renames what it finds.
  if (Status s = SyncDirs(env, names); !s.ok()) return s;
  {
    Fd marker(env, env->Open(names.Cpc(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (marker.get() < 0) return Status::IOError("create commit marker " + names.Cpc() + ": " + GoErrno(errno));
    *committed = true;
    if (env->Fdatasync(marker.get()) != 0) return Status::IOError("sync commit marker " + names.Cpc() + ": " + GoErrno(errno));
    if (marker.Release() != 0) return Status::IOError("close commit marker " + names.Cpc() + ": " + GoErrno(errno));
  }
  if (env->SyncDir(names.dir) != 0) return Status::IOError("sync dir " + names.dir + ": " + GoErrno(errno));
  // The commit point is behind us: from here a crash rolls forward.
  if (env->Rename(names.Cpd(), names.Dat()) != 0) return Status::IOError("rename " + names.Cpd() + ": " + GoErrno(errno));
  if (env->Rename(names.Cpx(), names.Idx()) != 0) return Status::IOError("rename " + names.Cpx() + ": " + GoErrno(errno));
  if (Status s = SyncDirs(env, names); !s.ok()) return s;
  RemoveDerivedIndexes(names);
  if (Status s = EnvRemoveIfExists(env, names.Cpc()); !s.ok()) return s;
  if (env->SyncDir(names.dir) != 0) return Status::IOError("sync dir " + names.dir + ": " + GoErrno(errno));
  return Status::Ok();
}

Status RemoveCompactionFiles(const VolumeFileNames& names, Env* env) {
  if (FileExists(names.Cpc()))
    return Status::IOError("volume " + std::to_string(names.id) + ": refusing cleanup while commit marker present");
  Status first = Status::Ok();
  for (const std::string& p : {names.Cpd(), names.Cpx()})
    if (Status s = EnvRemoveIfExists(env, p); !s.ok() && first.ok()) first = s;
  std::error_code ec;
  std::filesystem::remove_all(names.Base(names.idx_dir) + ".cpldb", ec);
  if (ec && first.ok()) first = Status::IOError("remove " + names.Base(names.idx_dir) + ".cpldb: " + ec.message());
  return first;
}

Result<bool> ReconcileCompaction(const VolumeFileNames& names, Env* env) {
  const bool cpd = FileExists(names.Cpd()), cpx = FileExists(names.Cpx()), cpc = FileExists(names.Cpc());
  if (!cpd && !cpx && !cpc) return false;
  if (cpc && cpd && !cpx) {
    // The data's rename comes first, so a copy with its data but without its
    // index never got past the marker's making: roll back, never pair the
    // copy's .dat with the old .idx.
    if (env->Unlink(names.Cpd()) != 0 || env->Unlink(names.Cpc()) != 0) return Status::IOError(ErrnoMessage("remove " + names.Cpd()));
    if (Status s = SyncDirs(env, names); !s.ok()) return s;
    KLOG_WARN("volume %u: a commit marker without the compacted index: rolled back", names.id);
    return true;
  }
  if (cpc) {
    bool renamed = false;
    if (cpd) {
      if (env->Rename(names.Cpd(), names.Dat()) != 0) return Status::IOError("rename " + names.Cpd() + ": " + GoErrno(errno));
      renamed = true;
    }
    if (cpx) {
      if (env->Rename(names.Cpx(), names.Idx()) != 0) return Status::IOError("rename " + names.Cpx() + ": " + GoErrno(errno));
      renamed = true;
    }
    if (renamed) {
      if (Status s = SyncDirs(env, names); !s.ok()) return s;
      RemoveDerivedIndexes(names);
    }
    if (Status s = EnvRemoveIfExists(env, names.Cpc()); !s.ok()) return s;
    if (env->SyncDir(names.dir) != 0) return Status::IOError("sync dir " + names.dir + ": " + GoErrno(errno));
    KLOG_INFO("volume %u: finished an interrupted compaction commit", names.id);
    return true;
  }
  for (const std::string& p : {names.Cpd(), names.Cpx()})
    if (Status s = EnvRemoveIfExists(env, p); !s.ok()) return s;
  RemoveDerivedIndexes(names);
  KLOG_INFO("volume %u: removed the files of an unfinished compaction", names.id);
  return true;
}

}  // namespace kelp
