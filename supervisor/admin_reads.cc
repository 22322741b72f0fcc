// Maintenance reads of a volume and of needles at known offsets: what
// `volume.check.disk` and replica sync ask for. The counters come from the loop; the .dat reads run on the location's
// writer thread, in order with the writes, so a stalled disk holds only them.
// (upstream: weed/server/volume_grpc_read_write.go, volume_grpc_copy_incremental.go; weed/storage/needle/needle_read*.go)
#include <cinttypes>
#include <cstdio>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/go_error.h"
#include "common/needle.h"
#include "supervisor/admin_service.h"

namespace kelp {
namespace {

// Go's GetActualSize for any int32 size: ActualSize, and for a negative size
// (a request may carry a tombstone's) the same sum with Go's signed remainder.
int64_t GoActualSize(int32_t size, uint8_t version) {
  if (size >= 0) return int64_t(ActualSize(uint32_t(size), version));
  const int64_t tail = kNeedleChecksumSize + (version == kVersion3 ? kTimestampSize : 0);
  const int64_t padding = kNeedlePaddingSize - ((kNeedleHeaderSize + int64_t(size) + tail) % kNeedlePaddingSize);
  return kNeedleHeaderSize + int64_t(size) + tail + padding;
}

struct MetaRead {
  Status status;
  ParsedNeedle needle;
  std::string bytes;
};

// Go's Needle.ReadNeedleMeta: the header and DataSize, then everything after
// the data (flags .. pairs, checksum, timestamp), without reading the data.
Status ReadNeedleMetaOnce(const Volume& v, int64_t offset, int32_t requested_size, MetaRead* out, bool* size_mismatch) {
  const uint32_t size = requested_size < 0 ? 0 : uint32_t(requested_size);
  std::string head;
  if (Status s = v.ReadAt(uint64_t(offset), kNeedleHeaderSize + 4, &head); !s.ok()) return s;
  if (head.size() != kNeedleHeaderSize + 4) return Status::IOError("EOF");
  const auto* h = reinterpret_cast<const uint8_t*>(head.data());
  out->needle.header = ParseNeedleHeader(h);
  if (out->needle.header.size != size) {
    *size_mismatch = true;
    // Go formats the id with %x, which applies to NeedleId's String() (the id
    // in hex): the hex digits come out hex-encoded again ("1" -> "31").
    const std::string id_text = GoHexOfNeedleId(out->needle.header.id);
    char text[200];
    std::snprintf(text, sizeof text, "size mismatch for entry at offset %" PRId64 ": found id %s size %d, expected size %d", offset,
                  id_text.c_str(), int32_t(out->needle.header.size), int32_t(size));
    return Status::Corruption(text);
  }
  const bool has_body = size > 0;
  const uint32_t data_size = GetU32(h + kNeedleHeaderSize);
  const int64_t start = offset + kNeedleHeaderSize + (has_body ? 4 + int64_t(data_size) : 0);
  const int64_t stop = offset + int64_t(ActualSize(size, v.version()));
  const int64_t meta_size = stop - start;
  if (meta_size < 0 || meta_size > 128 * 1024) {
    return Status::Corruption("invalid needle meta size " + std::to_string(meta_size) + ": DataSize=" + std::to_string(data_size) +
                              ", size=" + std::to_string(size) + ", offset=" + std::to_string(offset));
  }
  if (Status s = v.ReadAt(uint64_t(start), size_t(meta_size), &out->bytes); !s.ok()) return s;
  if (out->bytes.size() != size_t(meta_size)) return Status::IOError("EOF");
  const auto* m = reinterpret_cast<const uint8_t*>(out->bytes.data());
  // The non-data fields end where the header's size ends; the tail follows.
  const size_t fields = has_body ? size_t(offset + kNeedleHeaderSize + size - start) : 0;
  if (fields > out->bytes.size()) return Status::Corruption("invalid needle meta size " + std::to_string(meta_size));
  if (has_body)
    if (Status s = ParseNeedleNonData(m, fields, &out->needle); !s.ok()) return s;
  if (fields + kNeedleChecksumSize > out->bytes.size()) return Status::IOError("EOF");
  out->needle.checksum = GetU32(m + fields);
  if (v.version() == kVersion3 && fields + kNeedleChecksumSize + kTimestampSize <= out->bytes.size())
    out->needle.append_at_ns = GetU64(m + fields + kNeedleChecksumSize);
  return Status::Ok();
}

// With 4-byte offsets Go retries a size mismatch 32 GiB further on, where
// an offset that wrapped would point.
Status ReadNeedleMetaAt(const Volume& v, int64_t offset, int32_t size, MetaRead* out) {
  bool mismatch = false;
  Status s = ReadNeedleMetaOnce(v, offset, size, out, &mismatch);
  constexpr int64_t kMaxVolumeSize4 = int64_t(1) << 35;
  if (mismatch && kBuildOffsetBytes == 4 && offset < kMaxVolumeSize4) {
    *out = MetaRead{};
    mismatch = false;
    s = ReadNeedleMetaOnce(v, offset + kMaxVolumeSize4, size, out, &mismatch);
    if (mismatch) s = Status::Corruption("size mismatch");
  }
  return s;
}

}  // namespace

grpc::Status AdminService::VolumeSyncStatus(const volume_server_pb::VolumeSyncStatusRequest& req,
                                            volume_server_pb::VolumeSyncStatusResponse* resp) {
  const Volume* v = store_->Find(req.volume_id());
  if (!v) return GoError("not found volume id " + std::to_string(req.volume_id()));
  const SuperBlock& sb = v->super_block();
  resp->set_volume_id(v->id());
  resp->set_collection(v->collection());
  resp->set_replication(sb.replica_placement.String());
  resp->set_ttl(sb.ttl.String());
  resp->set_tail_offset(v->dat_size());
  resp->set_compact_revision(sb.compaction_revision);
  resp->set_idx_file_size(v->idx_size());
  resp->set_version(sb.version);
  return grpc::Status::OK;
}

void AdminService::ReadNeedleBlob(const volume_server_pb::ReadNeedleBlobRequest& req, volume_server_pb::ReadNeedleBlobResponse* resp,
                                  Finish finish) {
  std::shared_ptr<Volume> v = store_->Shared(req.volume_id());
  if (!v) return finish(GoError("not found volume id " + std::to_string(req.volume_id())));
  const int64_t offset = req.offset();
  const int32_t size = req.size();
  const int64_t length = GoActualSize(size, v->version());
  auto out = std::make_shared<MetaRead>();
  OnWriter(store_->WriterFor(req.volume_id()),
           [v, out, offset, length] {
             if (offset < 0 || length < 0) out->status = Status::Invalid("negative offset");
             else out->status = v->ReadAt(uint64_t(offset), size_t(length), &out->bytes);
             if (out->status.ok() && out->bytes.size() != size_t(length)) out->status = Status::IOError("EOF");
           },
           [out, resp, offset, size, finish] {
             if (!out->status.ok()) {
               return finish(GoError("read needle blob offset " + std::to_string(offset) + " size " + std::to_string(size) + ": " +
                                     out->status.message()));
             }
             resp->set_needle_blob(std::move(out->bytes));
             finish(grpc::Status::OK);
           });
}

void AdminService::ReadNeedleMeta(const volume_server_pb::ReadNeedleMetaRequest& req, volume_server_pb::ReadNeedleMetaResponse* resp,
                                  Finish finish) {
  std::shared_ptr<Volume> v = store_->Shared(req.volume_id());
  if (!v) {
    return finish(GoError("not found volume id " + std::to_string(req.volume_id()) +
                          " and read needle metadata at ec shards is not supported"));
  }
  auto out = std::make_shared<MetaRead>();
  const int64_t offset = req.offset();
  const int32_t size = req.size();
  OnWriter(store_->WriterFor(req.volume_id()), [v, out, offset, size] { out->status = ReadNeedleMetaAt(*v, offset, size, out.get()); },
           [out, resp, finish] {
             if (!out->status.ok()) return finish(GoError(out->status.message()));
             const ParsedNeedle& n = out->needle;
             resp->set_cookie(n.header.cookie);
             resp->set_last_modified(n.last_modified);
             resp->set_crc(LegacyCrcValue(n.checksum));
             if (n.flags & kFlagHasTtl) resp->set_ttl(n.ttl.String());
             resp->set_append_at_ns(n.append_at_ns);
             finish(grpc::Status::OK);
           });
}

// For Query: the needle's stored data (no gunzip), read on the writer as
// every admin read is. A size-0 needle is not read, as in Go.
void AdminService::ReadNeedleData(const kelp_internal::NeedleRead& req, kelp_internal::NeedleData* resp, Finish finish) {
  std::shared_ptr<Volume> v = store_->Shared(req.volume_id());
  if (!v) return finish(GoError("volume " + std::to_string(req.volume_id()) + " not found"));
  struct Out {
    Status status;
    std::string record;
    ParsedNeedle needle;
    bool empty = false;
  };
  auto out = std::make_shared<Out>();
  const NeedleId id = req.needle_id();
  OnWriter(store_->WriterFor(req.volume_id()),
           [v, out, id] {
             if (auto live = v->Lookup(id); live && !live->deleted && live->offset_units != 0 && live->size == 0) {
               out->empty = true;
               return;
             }
             out->status = v->ReadNeedle(id, &out->record, &out->needle);
           },
           [out, resp, finish] {
             if (!out->status.ok()) return finish(GoError(out->status.message()));
             if (!out->empty) {
               resp->set_cookie(out->needle.header.cookie);
               resp->set_size(out->needle.header.size);
               resp->set_data(out->needle.data.data(), out->needle.data.size());
             }
             finish(grpc::Status::OK);
           });
}

}  // namespace kelp
