// ScrubVolume: checks volumes from their files as they are on disk, as Go
// does (its tests damage the files behind the server's back). The index
// check reads every .idx row: overlapping records and a size that is not
// whole rows are damage. The full check also reads every record a row names
// (size, body, CRC) and compares the .dat size with what the rows add up to.
// It runs here, in the gRPC worker, on read-only descriptors, while writes
// go on: what a check sees is bounded by the sizes the supervisor took
// between two writes. Broken volumes can be marked read-only, persisted.
// (upstream: weed/server/volume_grpc_scrub.go, weed/storage/volume_checking.go;
// docs/scrub-query-receive.md §2)
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/file_util.h"
#include "common/go_error.h"
#include "common/idx_entry.h"
#include "common/index_check.h"
#include "common/needle.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/volume_files.h"
#include "worker-grpc/volume_service.h"

namespace kelp {
namespace {

constexpr int kModeIndex = 1, kModeFull = 2, kModeLocal = 3, kModeReads = 5;

using Row = IndexRow;

uint64_t RecordBytes(const Row& r, uint8_t version) { return IndexRowRecordBytes(r, version); }

struct VolumeScrub {
  const VolumeFilesView& f;
  uint32_t vid;
  std::vector<Row> rows;
  std::vector<std::string> errors;

  bool ReadRows() {
    Status s = ForEachIdxEntry(f.idx_fd, f.idx_file_size, f.offset_bytes, [&](const IdxEntry& e) { rows.push_back({e, rows.size() + 1}); });
    if (s.ok()) return true;
    rows.clear();
    errors.push_back("failed to read IDX file " + f.idx_path + " for volume " + std::to_string(vid) + ": " + s.message());
    return false;
  }

  // False when the index is empty: then the only question is whether the
  // .dat holds anything past its superblock.
  bool CheckEmptyIndex() {
    if (f.idx_file_size != 0) return true;
    if (f.dat_size > kSuperBlockSize)
      errors.push_back("zero-size IDX file for volume " + std::to_string(vid) + " with store size " + std::to_string(f.dat_size));
    return false;
  }

  void CheckIndex() { CheckIndexRows(rows, f.idx_file_size, f.offset_bytes, f.version, &errors); }

  std::string ReadError(const Row& r, const std::string& why) {
    return "failed to read needle " + std::to_string(r.entry.id) + " on volume " + std::to_string(vid) + ": " + why;
  }

  void CheckData() {
    uint64_t total = 0;
    std::string record;
    for (const Row& r : rows) {
      if (r.entry.offset_units == 0 && r.deleted()) continue;
      total += RecordBytes(r, f.version);
      // Go 4.48 reads a deletion's own record too: a size-0 needle at the row's offset.
      const uint64_t at = r.entry.ByteOffset();
      const uint32_t size = r.deleted() ? 0 : uint32_t(r.entry.size);
      // A row can claim any size: nothing past the data is allocated or read.
      if (at + ActualSize(size, f.version) > f.dat_size) {
        errors.push_back(ReadError(r, "EOF"));
        continue;
      }
      record.resize(size_t(ActualSize(size, f.version)));
      if (!PreadFull(f.dat_fd, record.data(), record.size(), off_t(at)).ok()) {
        errors.push_back(ReadError(r, "EOF"));  // Go's text for a record cut short too
        continue;
      }
      const NeedleHeader h = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(record.data()));
      if (h.size != size) {
        errors.push_back(ReadError(r, "size mismatch: entry not found: offset " + std::to_string(at) + " found id " + GoHexOfNeedleId(h.id) +
                                          " size " + std::to_string(int32_t(h.size)) + ", expected size " + std::to_string(size)));
        continue;
      }
      ParsedNeedle n;
      if (Status s = ParseNeedle(reinterpret_cast<const uint8_t*>(record.data()), record.size(), size, f.version, &n); !s.ok())
        errors.push_back(ReadError(r, s.message()));
    }
    const uint64_t want = total + kSuperBlockSize;
    if (f.dat_size < want)
      errors.push_back("data file for volume " + std::to_string(vid) + " is smaller (" + std::to_string(f.dat_size) + ") than the " +
                       std::to_string(rows.size()) + " needles it contains (" + std::to_string(want) + ")");
    else if (f.dat_size > want)
      errors.push_back("data file size for volume " + std::to_string(vid) + " (" + std::to_string(f.dat_size) +
                       ") doesn't match the size for " + std::to_string(rows.size()) + " needles read (" + std::to_string(want) + ")");
  }
};

}  // namespace

grpc::Status VolumeService::ScrubVolume(grpc::ServerContext* ctx, const volume_server_pb::ScrubVolumeRequest* req,
                                        volume_server_pb::ScrubVolumeResponse* resp) {
  if (grpc::Status denied = AdmitAdmin(ctx, "ScrubVolume"); !denied.ok()) return denied;
  const bool explicit_ids = req->volume_ids_size() > 0;
  std::vector<uint32_t> ids(req->volume_ids().begin(), req->volume_ids().end());
  if (!explicit_ids) {
    kelp_internal::VolumeIdList all;
    if (grpc::Status s = supervisor_->Call("kelp.ListVolumes", kelp_internal::VolumeIdList(), &all); !s.ok()) return s;
    ids.assign(all.ids().begin(), all.ids().end());
  }
  const int mode = int(req->mode());
  std::vector<uint32_t> broken;
  for (const uint32_t vid : ids) {
    VolumeFiles files;
    if (grpc::Status s = OpenVolumeFiles(supervisor_, vid, &files); !s.ok()) {
      if (s.error_message() != "not found volume id " + std::to_string(vid)) return s;
      if (explicit_ids) return GoError("volume id " + std::to_string(vid) + " not found");
      continue;  // unmounted since the list was taken
    }
    if (mode != kModeIndex && mode != kModeFull && mode != kModeLocal && mode != kModeReads)
      return GoError("unsupported volume scrub mode " + std::to_string(mode));
    // The .idx file's size and the .dat size from one step of the writer:
    // writes that land meanwhile are past both and not looked at.
    VolumeFilesView view = files.view;
    view.dat_size = view.dat_size_with_idx;
    VolumeScrub scrub{view, vid, {}, {}};
    if (scrub.CheckEmptyIndex() && scrub.ReadRows()) {
      scrub.CheckIndex();
      if (mode != kModeIndex) scrub.CheckData();
    }
    resp->set_total_volumes(resp->total_volumes() + 1);
    resp->set_total_files(resp->total_files() + scrub.rows.size());
    if (!scrub.errors.empty()) {
      broken.push_back(vid);
      resp->add_broken_volume_ids(vid);
      for (const std::string& e : scrub.errors) resp->add_details(e);
    }
  }
  if (req->mark_broken_volumes_readonly()) {
    std::string failures;
    for (const uint32_t vid : broken) {
      volume_server_pb::VolumeMarkReadonlyRequest mark;
      mark.set_volume_id(vid);
      mark.set_persist(true);
      volume_server_pb::VolumeMarkReadonlyResponse ignored;
      if (grpc::Status s = VolumeMarkReadonly(ctx, &mark, &ignored); !s.ok()) {
        resp->add_details(s.error_message());
        failures += (failures.empty() ? "" : "\n") + s.error_message();
      } else {
        resp->add_details("volume " + std::to_string(vid) + " is now read-only");
      }
    }
    if (!failures.empty()) return GoError(failures);
  }
  return grpc::Status::OK;
}

}  // namespace kelp
