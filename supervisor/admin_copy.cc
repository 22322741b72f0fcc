// Copy sources: the files of a mounted volume, opened read-only and handed to
// the gRPC worker, which streams them (CopyFile). The supervisor decides
// which file and checks Go's preconditions; the bytes never pass through it.
// (upstream: weed/server/volume_grpc_copy.go; docs/copy-and-tail.md §2)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/bytes.h"
#include "common/collection_name.h"
#include "common/file_util.h"
#include "common/go_error.h"
#include "common/go_quote.h"
#include "common/idx_entry.h"
#include "common/log.h"
#include "common/needle.h"
#include "supervisor/admin_service.h"

namespace kelp {
namespace {

constexpr uint32_t kAnyRevision = 0xFFFFFFFFu;

}  // namespace

void AdminService::OpenVolumeFile(const volume_server_pb::CopyFileRequest& req, volume_server_pb::CopyFileResponse* resp,
                                  FinishFd finish) {
  // The gRPC worker has checked the extension and collection (Go's texts);
  // they name a file here, so they are checked again.
  const VolumeId id = req.volume_id();
  if (!IsVolumeFileExtension(req.ext())) return finish(GoError("invalid file extension " + GoQuote(req.ext())), -1);
  if (!IsSafeCollectionName(req.collection())) return finish(GoError("invalid collection " + GoQuote(req.collection())), -1);
  if (req.is_ec_volume()) return OpenEcVolumeFile(req, resp, std::move(finish));
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(GoError("not found volume id " + std::to_string(id)), -1);
  if (req.compaction_revision() != kAnyRevision && req.compaction_revision() != v->super_block().compaction_revision)
    return finish(GoError("volume " + std::to_string(id) + " is compacted"), -1);
  const VolumeFileNames names = v->names();
  const std::string path = names.File(req.ext());
  const bool missing_is_empty = req.ignore_source_file_not_found() || req.stop_offset() == 0;
  struct Opened {
    int fd = -1;
    int error = 0;
    int64_t mtime_ns = 0;
  };
  auto opened = std::make_shared<Opened>();
  // On the writer: the sync is ordered after every write acknowledged so far,
  // so the copy holds all of them; then the file is opened, read-only.
  OnWriter(
      store_->WriterFor(id),
      [v, path, opened] {
        if (Status s = v->Sync(); !s.ok()) KLOG_WARN("volume %u: sync before copy: %s", v->id(), s.message().c_str());
        opened->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (opened->fd < 0) {
          opened->error = errno;
          return;
        }
        struct stat st;
        if (fstat(opened->fd, &st) == 0) opened->mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      },
      [opened, path, missing_is_empty, resp, finish = std::move(finish)] {
        if (opened->fd < 0) {
          if (opened->error == ENOENT && missing_is_empty) return finish(grpc::Status::OK, -1);
          return finish(GoError("open " + path + ": " + GoErrno(opened->error)), -1);
        }
        resp->set_modified_ts_ns(opened->mtime_ns);
        finish(grpc::Status::OK, opened->fd);
      });
}

// Erasure-coded files are found by name: every location, its data directory
// then its index directory, and the last one found wins (Go's search).
void AdminService::OpenEcVolumeFile(const volume_server_pb::CopyFileRequest& req, volume_server_pb::CopyFileResponse* resp,
                                    FinishFd finish) {
  const VolumeId id = req.volume_id();
  const std::string name = (req.collection().empty() ? std::to_string(id) : req.collection() + "_" + std::to_string(id)) + req.ext();
  std::vector<std::string> candidates;
  for (const DiskLocation& loc : store_->locations()) {
    candidates.push_back(loc.dir + "/" + name);
    if (loc.idx_dir != loc.dir) candidates.push_back(loc.idx_dir + "/" + name);
  }
  struct Opened {
    int fd = -1;
    int64_t mtime_ns = 0;
  };
  auto opened = std::make_shared<Opened>();
  const bool ignore_missing = req.ignore_source_file_not_found();
  std::vector<std::shared_ptr<EcVolume>> mounted;
  for (const auto& [li, v] : store_->EcOf(id)) mounted.push_back(v);
  auto work = [candidates, opened, mounted] {
    for (const auto& v : mounted) v->Sync();  // the index and journal as they stand
    for (const std::string& path : candidates) {
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      if (opened->fd >= 0) close(opened->fd);
      opened->fd = fd;
    }
    struct stat st;
    if (opened->fd >= 0 && fstat(opened->fd, &st) == 0) opened->mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  };
  // Off the loop: the writer of the first location (the opens touch disks).
  OnWriter(store_->LocationWriter(0), std::move(work), [id, opened, ignore_missing, resp, finish = std::move(finish)] {
    if (opened->fd < 0) {
      if (ignore_missing) return finish(grpc::Status::OK, -1);
      return finish(GoError("CopyFile not found ec volume id " + std::to_string(id)), -1);
    }
    resp->set_modified_ts_ns(opened->mtime_ns);
    finish(grpc::Status::OK, opened->fd);
  });
}

namespace {

std::string TempOf(const std::string& path) { return path + ".copying"; }

std::string NotePath(const VolumeFileNames& n) { return n.Base(n.dir) + ".note"; }

// The files a copy may have created, final and temporary.
void RemoveCopyFiles(const VolumeFileNames& n) {
  for (const std::string& p : {n.Dat(), TempOf(n.Dat()), n.Idx(), n.Vif(), TempOf(n.Vif()), NotePath(n)}) unlink(p.c_str());
}

// Go's findLastAppendAtNsFromCopiedFiles: the append time of the record the
// last .idx row names (0 when there is none to read).
uint64_t LastAppendAtNs(const VolumeFileNames& n, int offset_bytes) {
  const int entry = IdxEntrySize(offset_bytes);
  const int idx = open(n.Idx().c_str(), O_RDONLY | O_CLOEXEC);
  if (idx < 0) return 0;
  struct stat st;
  uint8_t row[17];
  uint64_t ns = 0;
  if (fstat(idx, &st) == 0 && st.st_size >= entry && st.st_size % entry == 0 &&
      PreadFull(idx, row, size_t(entry), st.st_size - entry).ok()) {
    const IdxEntry e = DecodeIdxEntry(row, offset_bytes);
    const int dat = e.offset_units ? open(n.Dat().c_str(), O_RDONLY | O_CLOEXEC) : -1;
    uint8_t head[kNeedleHeaderSize];
    uint8_t ts[8];
    if (dat >= 0 && PreadFull(dat, head, sizeof head, off_t(e.ByteOffset())).ok()) {
      const uint32_t size = ParseNeedleHeader(head).size;
      if (PreadFull(dat, ts, sizeof ts, off_t(e.ByteOffset() + kNeedleHeaderSize + size + kNeedleChecksumSize)).ok()) ns = GetU64(ts);
    }
    if (dat >= 0) close(dat);
  }
  close(idx);
  return ns;
}

// Go's checkCopyFiles, against the sizes the source reported.
Status CheckCopiedSizes(const VolumeFileNames& n, uint64_t dat_size, uint64_t idx_size) {
  struct stat st;
  if (stat(n.Idx().c_str(), &st) != 0) {
    if (idx_size != 0)
      return Status::IOError("stat idx file " + n.Idx() + " failed: stat " + n.Idx() + ": " + GoErrno(errno));
  } else if (uint64_t(st.st_size) != idx_size) {
    return Status::IOError("idx file " + n.Idx() + " size [" + std::to_string(st.st_size) + "] is not same as origin file size [" +
                           std::to_string(idx_size) + "]");
  }
  if (stat(n.Dat().c_str(), &st) != 0)
    return Status::IOError("get dat file info failed, stat " + n.Dat() + ": " + GoErrno(errno));
  if (uint64_t(st.st_size) != dat_size)
    return Status::IOError("the dat file size [" + std::to_string(st.st_size) + "] is not same as origin file size [" +
                           std::to_string(dat_size) + "]");
  return Status::Ok();
}

}  // namespace

void AdminService::BeginVolumeCopy(const kelp_internal::VolumeCopyBegin& req, kelp_internal::VolumeCopyPlaced* resp, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  const VolumeId id = req.volume_id();
  // The collection comes from the peer, through the worker: it names files here.
  if (!IsSafeCollectionName(req.collection()))
    return finish(GoError("invalid collection " + GoQuote(req.collection())));
  if (copies_.count(id) || store_->Busy(id)) return finish(GoError("volume " + std::to_string(id) + " is being copied or changed"));
  const uint64_t owner = caller_;
  auto place = [this, id, req, resp, finish, owner] {
    NewVolumeSpec spec;
    spec.id = id;
    spec.collection = req.collection();
    spec.disk_type = req.disk_type() == "hdd" ? "" : req.disk_type();
    auto where = store_->PickLocation(spec);
    if (!where.ok()) return finish(GoError("no space left for disk type " + (spec.disk_type.empty() ? std::string("hdd") : spec.disk_type)));
    CopyJob job{where.value(), store_->NamesIn(where.value(), req.collection(), id), false, owner};
    // Busy until mounted or undone: no allocation or mount of the id meanwhile.
    store_->BeginBusy(id, job.location, true);
    copies_[id] = job;
    resp->set_data_base(job.names.Base(job.names.dir));
    resp->set_idx_base(job.names.Base(job.names.idx_dir));
    auto result = std::make_shared<Status>();
    const std::string note = NotePath(job.names), text = "copying from " + req.source();
    OnWriter(
        store_->LocationWriter(job.location),
        [note, text, result] {
          const int fd = open(note.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
          if (fd < 0 || !PwriteFull(fd, text.data(), text.size(), 0).ok()) *result = Status::IOError(ErrnoMessage("write " + note));
          if (fd >= 0) close(fd);
        },
        [this, id, result, finish] {
          if (result->ok()) return finish(grpc::Status::OK);
          auto it = copies_.find(id);
          if (it != copies_.end()) {
            RemoveCopyFiles(it->second.names);
            copies_.erase(it);
          }
          store_->EndBusy(id);
          finish(GoError("write .note for volume " + std::to_string(id) + ": " + result->message()));
        });
  };
  if (!store_->Find(id)) return place();
  // A replica here is replaced, never merged: deleted first, as Go does.
  Status s = DeleteOffLoop(id, false, place);
  if (!s.ok()) return finish(GoError("failed to delete existing volume " + std::to_string(id) + ": " + s.message()));
}

void AdminService::OpenCopyTarget(const kelp_internal::VolumeCopyOpen& req, kelp_internal::VolumeCopyOpened* resp, FinishFd finish) {
  auto it = copies_.find(req.volume_id());
  if (it == copies_.end() || it->second.finishing || it->second.owner != caller_)
    return finish(GoError("volume " + std::to_string(req.volume_id()) + " is not being copied"), -1);
  const VolumeFileNames& n = it->second.names;
  std::string final_path;
  if (req.ext() == ".dat") final_path = n.Dat();
  else if (req.ext() == ".idx") final_path = n.Idx();
  else if (req.ext() == ".vif") final_path = n.Vif();
  else return finish(GoError("a copy writes .dat, .idx and .vif only"), -1);
  // Go writes the optional files (.dat, .vif) under a temporary name, so a
  // source without one never truncates a good local file; the .idx in place.
  const std::string path = req.ext() == ".idx" ? final_path : TempOf(final_path);
  resp->set_path(final_path);
  auto fd = std::make_shared<int>(-1);
  auto err = std::make_shared<int>(0);
  OnWriter(
      store_->LocationWriter(it->second.location),
      [path, fd, err] {
        *fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (*fd < 0) *err = errno;
      },
      [fd, err, final_path, finish] {
        if (*fd < 0) return finish(GoError("open file " + final_path + ": open " + final_path + ": " + GoErrno(*err)), -1);
        finish(grpc::Status::OK, *fd);
      });
}

void AdminService::FinishVolumeCopy(const kelp_internal::VolumeCopyFinish& req, volume_server_pb::VolumeCopyResponse* resp, Finish finish) {
  const VolumeId id = req.volume_id();
  auto it = copies_.find(id);
  if (it == copies_.end() || it->second.finishing || it->second.owner != caller_)
    return finish(GoError("volume " + std::to_string(id) + " is not being copied"));
  it->second.finishing = true;
  const CopyJob job = it->second;
  struct Outcome {
    Status status;
    uint64_t last_append_at_ns = 0;
  };
  auto out = std::make_shared<Outcome>();
  const int offset_bytes = store_->offset_bytes();
  Env* env = store_->env();
  OnWriter(
      store_->LocationWriter(job.location),
      [req, job, out, offset_bytes, env] {
        const VolumeFileNames& n = job.names;
        if (!req.error().empty()) {
          out->status = Status::IOError(req.error());
          RemoveCopyFiles(n);
          return;
        }
        auto settle = [&](bool present, const std::string& final_path) {
          if (!present) return unlink(TempOf(final_path).c_str()), Status::Ok();
          if (rename(TempOf(final_path).c_str(), final_path.c_str()) != 0)
            return Status::IOError("commit copied file " + final_path + ": " + GoErrno(errno));
          return Status::Ok();
        };
        if (Status s = settle(req.has_dat(), n.Dat()); !s.ok()) out->status = s;
        else if (Status v = settle(req.has_vif(), n.Vif()); !v.ok()) out->status = v;
        if (!req.has_idx()) unlink(n.Idx().c_str());
        if (out->status.ok()) out->status = CheckCopiedSizes(n, req.dat_size(), req.idx_size());
        if (!out->status.ok()) return RemoveCopyFiles(n);
        env->SyncDir(n.dir);  // the renames outlive a power loss
        if (n.idx_dir != n.dir) env->SyncDir(n.idx_dir);
        // Last: until the .note is gone, a load does not take these files for a volume.
        if (unlink(NotePath(n).c_str()) != 0 && errno != ENOENT) {
          out->status = Status::IOError("remove .note for volume " + std::to_string(n.id) + ": " + GoErrno(errno));
          return RemoveCopyFiles(n);
        }
        env->SyncDir(n.dir);
        out->last_append_at_ns = req.dat_timestamp_seconds() * 1000000000ull;
        if (req.has_dat())
          if (const uint64_t ns = LastAppendAtNs(n, offset_bytes); ns > 0) out->last_append_at_ns = ns;
      },
      [this, id, job, out, resp, finish] {
        copies_.erase(id);
        store_->EndBusy(id);
        if (!out->status.ok()) return finish(GoError(out->status.message()));
        // Mounted as VolumeMount does: the load checks everything the peer sent.
        Store::Located located{job.location, job.names};
        auto loaded = std::make_shared<Result<std::shared_ptr<Volume>>>(Status::NotFound(""));
        Store* store = store_;
        OnWriter(
            store_->LocationWriter(job.location), [store, located, loaded] { *loaded = store->LoadLocated(located); },
            [this, id, job, located, loaded, out, resp, finish] {
              if (!loaded->ok()) {
                RemoveCopyFiles(job.names);
                return finish(GoError("failed to mount or validate volume " + std::to_string(id) + ": " + loaded->status().message()));
              }
              Join(std::move(loaded->value()), located.location);
              resp->set_last_append_at_ns(out->last_append_at_ns);
              finish(grpc::Status::OK);
            });
      });
}

void AdminService::AbortCopies(uint64_t caller) {
  for (auto it = copies_.begin(); it != copies_.end();) {
    if (it->second.finishing || it->second.owner != caller) {
      ++it;
      continue;
    }
    KLOG_WARN("volume %u: the copy in progress is undone: the gRPC worker that drove it is gone", it->first);
    RemoveCopyFiles(it->second.names);
    store_->EndBusy(it->first);
    it = copies_.erase(it);
  }
}

}  // namespace kelp
