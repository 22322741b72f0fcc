// Whole needle records that come over gRPC, and the files tails read.
// Tails, both ends: as a source, the gRPC worker reads a mounted volume's
// .idx and .dat through read-only descriptors opened here, bounded by sizes
// taken between two writes. As a receiver, it hands each needle a peer sent
// to the supervisor, which checks it as it checks a worker's upload and
// appends it through the volume's writer. WriteNeedleBlob appends a record a
// peer read with ReadNeedleBlob (volume.check.disk).
// (upstream: weed/server/volume_grpc_tail.go, volume_grpc_read_write.go,
// weed/storage/volume_write.go; docs/copy-and-tail.md §7-§9)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "common/bytes.h"
#include "common/file_util.h"
#include "common/go_error.h"
#include "common/needle.h"
#include "supervisor/admin_service.h"

namespace kelp {
void AdminService::OpenTailFile(const kelp_internal::VolumeFileOpen& req, kelp_internal::VolumeFileOpened* resp, FinishFd finish) {
  const VolumeId id = req.volume_id();
  if (req.ext() != ".dat" && req.ext() != ".idx") return finish(GoError("a tail reads only .dat and .idx"), -1);
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(GoError("not found volume id " + std::to_string(id)), -1);
  const std::string path = req.ext() == ".dat" ? v->names().Dat() : v->names().Idx();
  struct Opened {
    bool retired = false;
    int fd = -1;
    int error = 0;
    uint64_t dat_size = 0, idx_size = 0, idx_file_size = 0;
  };
  auto opened = std::make_shared<Opened>();
  // On the writer, between two batches: the .idx size and the .dat size then
  // agree (every row below one names a record below the other). A volume a
  // vacuum commit retired meanwhile has new files under its names: the call
  // starts over with its successor.
  OnWriter(
      store_->WriterFor(id),
      [v, path, opened, is_idx = req.ext() == ".idx"] {
        if ((opened->retired = v->retired())) return;
        opened->idx_size = v->idx_size();
        opened->dat_size = v->dat_size();
        opened->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (opened->fd < 0) opened->error = errno;
        struct stat st;
        if (is_idx && opened->fd >= 0 && fstat(opened->fd, &st) == 0) opened->idx_file_size = uint64_t(st.st_size);
      },
      [this, req, v, opened, path, resp, finish = std::move(finish)] {
        if (opened->retired) return OpenTailFile(req, resp, finish);
        if (opened->fd < 0) return finish(GoError("open " + path + ": " + GoErrno(opened->error)), -1);
        resp->set_version(v->version());
        resp->set_compaction_revision(v->super_block().compaction_revision);
        resp->set_dat_size(opened->dat_size);
        resp->set_idx_size(opened->idx_size);
        resp->set_idx_file_size(opened->idx_file_size);
        resp->set_offset_bytes(uint32_t(v->offset_bytes()));
        resp->set_super_block_size(v->super_block().BlockSize());
        resp->set_path(path);
        finish(grpc::Status::OK, opened->fd);
      });
}

namespace {

// Go's "already exists" (isFileUnchanged, WriteNeedleBlob): the live needle
// under `key` has this record's size, cookie, checksum and data.
bool SameAsLive(const Volume& v, NeedleId key, const uint8_t* record, size_t length) {
  const NeedleHeader h = ParseNeedleHeader(record);
  const auto live = v.Lookup(key);
  if (!live || live->deleted || live->offset_units == 0 || live->size != h.size) return false;
  std::string old_record;
  ParsedNeedle old, now;
  return v.ReadNeedle(key, &old_record, &old).ok() && ParseNeedle(record, length, h.size, 3, &now).ok() &&
         old.header.cookie == now.header.cookie && old.checksum == now.checksum && old.data == now.data;
}

// The cookie of the live needle `id`, if there is one.
std::optional<Cookie> LiveCookie(const Volume& v, NeedleId id) {
  const auto live = v.Lookup(id);
  if (!live || live->deleted || live->offset_units == 0) return std::nullopt;
  std::string head;
  if (!v.ReadAt(live->offset_units * kNeedlePaddingSize, kNeedleHeaderSize, &head).ok() || head.size() != size_t(kNeedleHeaderSize))
    return std::nullopt;
  return ParseNeedleHeader(reinterpret_cast<const uint8_t*>(head.data())).cookie;
}

}  // namespace

// Go's WriteVolumeNeedle for a tailed needle: an identical one is not written
// again, a zero cookie takes the live needle's, another cookie is refused
// (by the volume's own check for a put, here for a delete).
void AdminService::AppendTailed(const kelp_internal::TailedNeedle& req, kelp_internal::TailedNeedleWritten*, Finish finish) {
  const VolumeId id = req.volume_id();
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(GoError("volume " + std::to_string(id) + " not found on " + config_->ip + ":" + std::to_string(config_->port)));
  // The worker re-encoded what a peer sent; the supervisor trusts neither.
  auto record = std::make_shared<std::string>(req.record());
  const auto* bytes = reinterpret_cast<const uint8_t*>(record->data());
  if (Status s = ValidateRecord(bytes, record->size()); !s.ok()) return finish(GoError(s.message()));
  const NeedleHeader h = ParseNeedleHeader(bytes);
  if (req.tombstone() && h.size != 0) return finish(GoError("a tombstone of needle " + std::to_string(h.id) + " with data"));
  auto result = std::make_shared<Status>();
  OnWriter(
      store_->WriterFor(id),
      [v, record, result, h, tombstone = req.tombstone()] {
        auto* r = reinterpret_cast<uint8_t*>(record->data());
        if (h.cookie == 0 || tombstone) {
          const std::optional<Cookie> live = LiveCookie(*v, h.id);
          if (h.cookie == 0 && live) PutU32(r, *live);
          const Cookie cookie = ParseNeedleHeader(r).cookie;
          if (tombstone) {
            if (live && *live != cookie) {
              *result = Status::CookieMismatch(CookieMismatchText(cookie));
              return;
            }
            auto deleted = v->Delete(h.id, cookie);
            *result = deleted.ok() ? Status::Ok() : deleted.status();
            return;
          }
        }
        if (SameAsLive(*v, h.id, r, record->size())) return;
        auto appended = v->Append(r, record->size());
        *result = appended.ok() ? Status::Ok() : appended.status();
      },
      [this, req, v, result, finish = std::move(finish)] {
        if (RetiredForSuccessor(v, *result)) return AppendTailed(req, nullptr, finish);
        if (!result->ok()) return finish(GoError(result->message()));
        // Unchanged too: the live copy may be a write whose answer is held.
        if (!hooks_.volume_mutated) return finish(grpc::Status::OK);
        hooks_.volume_mutated(req.volume_id(), [finish] { finish(grpc::Status::OK); });
      });
}

// Go checks the blob against the size and the volume's version and appends
// it as sent; kelp also refuses what is not one well-formed record (bad CRC,
// odd padding), which Go would append and later fail to read.
void AdminService::WriteNeedleBlob(const volume_server_pb::WriteNeedleBlobRequest& req, volume_server_pb::WriteNeedleBlobResponse*,
                                   Finish finish) {
  if (auto s = CheckMaintenance(); !s.ok()) return finish(s);
  const VolumeId vid = req.volume_id();
  std::shared_ptr<Volume> v = store_->Shared(vid);
  if (!v) return finish(GoError("not found volume id " + std::to_string(vid)));
  const std::string prefix = "write blob needle " + std::to_string(req.needle_id()) + " size " + std::to_string(req.size()) + ": ";
  const std::string& blob = req.needle_blob();
  const std::string id_text = "needle " + std::to_string(req.needle_id());
  if (v->read_only()) return finish(GoError(prefix + "volume " + std::to_string(vid) + " is read only"));
  if (blob.size() < size_t(kNeedleHeaderSize))
    return finish(GoError(prefix + id_text + " blob of " + std::to_string(blob.size()) + " bytes is shorter than a needle header"));
  const NeedleHeader h = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(blob.data()));
  if (int32_t(h.size) != req.size())
    return finish(GoError(prefix + id_text + " size " + std::to_string(req.size()) + " does not match its blob header size " +
                          std::to_string(int32_t(h.size))));
  const uint8_t version = v->version();
  if (req.size() < 0 || blob.size() != ActualSize(h.size, version))
    return finish(GoError(prefix + id_text + " blob of " + std::to_string(blob.size()) + " bytes does not match the " +
                          std::to_string(ActualSize(uint32_t(req.size()), version)) + " bytes size " + std::to_string(req.size()) +
                          " takes in a version " + std::to_string(version) + " volume"));
  if (version != 2 && version != 3) return finish(GoError(prefix + "unsupported version " + std::to_string(version) + "!"));
  // The record in version-3 form (the volume writes its own version back).
  auto record = std::make_shared<std::string>(blob);
  if (version == 2) RecordToV3(record.get(), GetU32(reinterpret_cast<const uint8_t*>(blob.data()) + kNeedleHeaderSize + h.size));
  if (Status s = ValidateRecord(reinterpret_cast<const uint8_t*>(record->data()), record->size()); !s.ok())
    return finish(GoError(prefix + s.message()));
  auto result = std::make_shared<Status>();
  // Filed under the request's id whatever the header says, with no cookie
  // check, as Go does (a needle can be cloned under another key).
  OnWriter(
      store_->WriterFor(vid),
      [v, record, result, key = NeedleId(req.needle_id())] {
        auto* r = reinterpret_cast<uint8_t*>(record->data());
        if (SameAsLive(*v, key, r, record->size())) return;
        auto appended = v->Append(r, record->size(), key, false);
        *result = appended.ok() ? Status::Ok() : appended.status();
      },
      [this, req, v, vid, prefix, result, finish = std::move(finish)] {
        if (RetiredForSuccessor(v, *result)) return WriteNeedleBlob(req, nullptr, finish);
        if (!result->ok()) return finish(GoError(prefix + result->message()));
        // Unchanged too: the live copy may be a write whose answer is held.
        if (!hooks_.volume_mutated) return finish(grpc::Status::OK);
        hooks_.volume_mutated(vid, [finish] { finish(grpc::Status::OK); });
      });
}

bool AdminService::RetiredForSuccessor(const std::shared_ptr<Volume>& v, const Status& result) const {
  if (result.code() != Code::kNotFound || !v->retired()) return false;
  const std::shared_ptr<Volume> now = store_->Shared(v->id());
  return now && now != v;
}

}  // namespace kelp
