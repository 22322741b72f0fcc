// Whole-volume streams read straight from a volume's files: ReadAllNeedles
// (the live needles in .dat order) and VolumeIncrementalCopy (the raw .dat
// bytes appended after a time, for `weed backup`). Both read through the
// supervisor's read-only descriptors and never past the sizes it took.
// (upstream: weed/server/volume_grpc_read_all.go, volume_grpc_copy_incremental.go,
// weed/storage/volume_read_all.go; docs/copy-and-tail.md §5, §9)
#include <unistd.h>

#include <cstring>
#include <limits>
#include <unordered_map>

#include "common/appended_since.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/go_error.h"
#include "common/idx_entry.h"
#include "common/needle.h"
#include "worker-grpc/volume_files.h"
#include "worker-grpc/volume_service.h"

namespace kelp {
namespace {

constexpr size_t kBlock = 2 << 20;  // Go's BufferSizeLimit

// Where each needle's current record starts, as Go's in-memory map keeps it:
// a delete leaves the key at the offset of its last put.
Result<std::unordered_map<NeedleId, uint64_t>> CurrentOffsets(const VolumeFilesView& f) {
  std::unordered_map<NeedleId, uint64_t> at;
  Status s = ForEachIdxEntry(f.idx_fd, f.idx_size, f.offset_bytes, [&](const IdxEntry& e) {
    if (!e.IsDeleted()) at[e.id] = e.ByteOffset();
  });
  if (!s.ok()) return Status::IOError("read " + f.idx_path + ": " + s.message());
  return at;
}

}  // namespace

grpc::Status VolumeService::ReadAllNeedles(grpc::ServerContext* ctx, const volume_server_pb::ReadAllNeedlesRequest* req,
                                           grpc::ServerWriter<volume_server_pb::ReadAllNeedlesResponse>* writer) {
  if (grpc::Status denied = AdmitAdmin(ctx, "ReadAllNeedles"); !denied.ok()) return denied;
  for (const uint32_t vid : req->volume_ids()) {
    VolumeFiles files;
    if (grpc::Status s = OpenVolumeFiles(supervisor_, vid, &files); !s.ok()) return s;
    auto current = CurrentOffsets(files.view);
    if (!current.ok()) return GoError(current.status().message());
    std::string record;
    uint64_t ignored_ns = 0;
    Status scan = ScanRecordsFrom(
        files.view, files.view.first_record, std::numeric_limits<uint32_t>::max(),
        [&](const RecordSlice& r) -> Status {
          const NeedleHeader h = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(r.header.data()));
          record.assign(r.header);
          record.append(r.body);
          ParsedNeedle n;
          // Go sends what it read even when the body does not parse; so does kelp.
          const bool parsed = ParseNeedle(reinterpret_cast<const uint8_t*>(record.data()), record.size(), h.size, files.view.version, &n).ok();
          volume_server_pb::ReadAllNeedlesResponse msg;
          msg.set_volume_id(vid);
          msg.set_needle_id(h.id);
          msg.set_cookie(h.cookie);
          if (parsed) {
            msg.set_needle_blob(n.data.data(), n.data.size());
            msg.set_needle_blob_compressed(n.IsCompressed());
            msg.set_last_modified(n.last_modified);
            msg.set_crc(LegacyCrcValue(n.checksum));
            msg.set_name(n.name.data(), n.name.size());
            msg.set_mime(n.mime.data(), n.mime.size());
          }
          if (!writer->Write(msg)) return Status::IOError("the caller went away");
          return Status::Ok();
        },
        &ignored_ns,
        // Only the record the map names for its key is sent: superseded ones are not read.
        [&](uint64_t offset, std::string_view header) {
          auto it = current.value().find(ParseNeedleHeader(reinterpret_cast<const uint8_t*>(header.data())).id);
          return it != current.value().end() && it->second == offset;
        });
    if (!scan.ok()) return GoError(scan.message());
  }
  return grpc::Status::OK;
}

grpc::Status VolumeService::VolumeIncrementalCopy(grpc::ServerContext*, const volume_server_pb::VolumeIncrementalCopyRequest* req,
                                                  grpc::ServerWriter<volume_server_pb::VolumeIncrementalCopyResponse>* writer) {
  VolumeFiles files;
  if (grpc::Status s = OpenVolumeFiles(supervisor_, req->volume_id(), &files); !s.ok()) return s;
  auto found = FindFirstAppendedAfter(files.view, req->since_ns());
  if (!found.ok()) return GoError("fail to locate by appendAtNs " + std::to_string(req->since_ns()) + ": " + found.status().message());
  if (found.value().nothing_newer) return grpc::Status::OK;
  // Go reads whole 2 MiB blocks past its stop offset, possibly into a record
  // being appended; kelp stops at the last whole record.
  const uint64_t stop = files.view.dat_size;
  std::string buf(kBlock, '\0');
  for (uint64_t at = found.value().offset; at < stop;) {
    const size_t want = size_t(std::min<uint64_t>(kBlock, stop - at));
    const ssize_t n = pread(files.view.dat_fd, buf.data(), want, off_t(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return GoError("read " + files.view.dat_path + ": " + std::strerror(errno));
    if (n == 0) break;
    volume_server_pb::VolumeIncrementalCopyResponse msg;
    msg.set_file_content(buf.data(), size_t(n));
    if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away");
    at += uint64_t(n);
  }
  return grpc::Status::OK;
}

}  // namespace kelp
