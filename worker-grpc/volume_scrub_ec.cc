// ScrubEcVolume: checks erasure-coded volumes from their files, as Go 4.48
// does. INDEX runs the index check over the .ecx; LOCAL (and FULL, which
// kelp answers from the local shards only) also reads each live needle's
// pieces from the shards mounted here, flags shards too short or unreadable,
// and parses each needle whose pieces are all here; CHECKSUM checks every
// local shard against the .ecsum (worker-grpc/ec_checksum_scrub.h).
// Read-only descriptors come from the supervisor. (upstream: weed/server/volume_grpc_scrub.go,
// weed/storage/erasure_coding/ec_volume_scrub.go; docs/erasure-coding.md §14)
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>
#include <vector>

#include "common/ec_layout.h"
#include "common/file_util.h"
#include "common/go_error.h"
#include "common/index_check.h"
#include "common/log.h"
#include "common/needle.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/ec_checksum_scrub.h"
#include "worker-grpc/volume_files.h"
#include "worker-grpc/volume_service.h"

namespace kelp {
namespace {

constexpr int kModeIndex = 1, kModeFull = 2, kModeLocal = 3, kModeChecksum = 4, kModeReads = 5;

struct EcScrub {
  uint32_t vid = 0;
  kelp_internal::EcNeedleLocated layout;
  int ecx_fd = -1;
  uint64_t ecx_size = 0;
  int offset_bytes = 4;
  std::vector<IndexRow> rows;
  std::vector<std::string> errors;
  std::map<int, std::pair<int, int64_t>> shards;  // local shard -> descriptor, size
  std::set<int> broken;

  void CheckIndex() {
    if (ecx_size == 0) {
      errors.push_back("zero-size ECX file for EC volume " + std::to_string(vid));
      return;
    }
    Status s = ForEachIdxEntry(ecx_fd, ecx_size, offset_bytes, [&](const IdxEntry& e) { rows.push_back({e, rows.size() + 1}); });
    if (!s.ok()) {
      errors.push_back("failed to read ECX file for EC volume " + std::to_string(vid) + ": " + s.message());
      return;
    }
    CheckIndexRows(rows, ecx_size, offset_bytes, uint8_t(layout.version()), &errors);
  }

  void CheckLocalNeedles() {
    const EcLayout l{int(layout.data_shards()), layout.large_block(), layout.small_block()};
    const uint8_t version = uint8_t(layout.version());
    std::string record;
    for (const IndexRow& r : rows) {
      if (r.deleted()) continue;
      const uint64_t length = ActualSize(uint32_t(r.entry.size), version);
      const std::vector<EcInterval> pieces = LocateEcRange(l, layout.shard_dat_size(), r.entry.ByteOffset(), length);
      record.clear();
      bool whole = true;
      std::vector<int> used;
      for (size_t i = 0; i < pieces.size(); ++i) {
        const EcInterval& p = pieces[i];
        used.push_back(p.shard);
        auto it = shards.find(p.shard);
        if (it == shards.end()) {
          whole = false;
          continue;
        }
        const std::string chunk = std::to_string(i + 1) + "/" + std::to_string(pieces.size());
        const std::string needle = std::to_string(r.entry.id);
        if (int64_t(p.shard_offset + p.size) > it->second.second) {
          errors.push_back("local shard " + std::to_string(p.shard) + " for needle " + needle + " is too short (" +
                           std::to_string(it->second.second) + "), cannot read chunk " + chunk);
          broken.insert(p.shard);
          whole = false;
          continue;
        }
        const size_t at = record.size();
        record.resize(at + size_t(p.size));
        if (Status s = PreadFull(it->second.first, record.data() + at, size_t(p.size), off_t(p.shard_offset)); !s.ok()) {
          errors.push_back("failed to read chunk " + chunk + " for needle " + needle + " from local shard " + std::to_string(p.shard) +
                           " at offset " + std::to_string(p.shard_offset) + ": " + s.message());
          broken.insert(p.shard);
          whole = false;
        }
      }
      if (!whole) continue;
      ParsedNeedle n;
      if (Status s = ParseNeedle(reinterpret_cast<const uint8_t*>(record.data()), record.size(), uint32_t(r.entry.size), version, &n); !s.ok()) {
        std::string ids = "[";
        for (size_t i = 0; i < used.size(); ++i) ids += (i ? " " : "") + std::to_string(used[i]);
        errors.push_back("needle " + std::to_string(r.entry.id) + " on volume " + std::to_string(vid) + ", shards " + ids + "]: " + s.message());
      }
    }
  }

  void CheckChecksums() {
    const int data = int(layout.data_shards()), parity = int(layout.parity_shards());
    EcsumFile file;
    file.present = layout.checksum_sidecar_present();
    file.unreadable = layout.checksum_sidecar_unreadable();
    file.bytes = layout.checksum_sidecar();
    file.path = layout.checksum_sidecar_path();
    EcChecksumManifest manifest;
    std::string why;
    const EcsumState state = EvaluateEcsum(file, data, parity, &manifest, &why);
    if (state == EcsumState::kInvalid) KLOG_WARN("ec volume %u: %s", vid, why.c_str());
    std::vector<LocalEcShard> local;
    for (const auto& [shard, held] : shards) local.push_back({shard, held.first, held.second});  // ascending ids
    EcChecksumScrub found = ScrubEcShardChecksums(vid, state, manifest, local, data, parity);
    errors.insert(errors.end(), found.errors.begin(), found.errors.end());
    broken.insert(found.broken.begin(), found.broken.end());
  }
};

}  // namespace

grpc::Status VolumeService::ScrubEcVolume(grpc::ServerContext* ctx, const volume_server_pb::ScrubEcVolumeRequest* req,
                                          volume_server_pb::ScrubEcVolumeResponse* resp) {
  if (grpc::Status denied = AdmitAdmin(ctx, "ScrubEcVolume"); !denied.ok()) return denied;
  const int mode = int(req->mode());
  if (req->force_deleted_needles_check() && mode != kModeFull && mode != kModeReads)
    return GoError("deleted needle checks are only supported for FULL and READS scrubs");
  std::vector<uint32_t> ids(req->volume_ids().begin(), req->volume_ids().end());
  if (ids.empty()) {
    kelp_internal::VolumeIdList all;
    if (grpc::Status s = supervisor_->Call("kelp.ListEcVolumes", kelp_internal::VolumeIdList(), &all); !s.ok()) return s;
    ids.assign(all.ids().begin(), all.ids().end());
  }
  for (const uint32_t vid : ids) {
    EcScrub scrub;
    scrub.vid = vid;
    kelp_internal::EcNeedleLocate open;
    open.set_volume_id(vid);
    OwnedFd ecx;
    if (grpc::Status s = supervisor_->CallForFd("kelp.OpenEcIndex", open, &scrub.layout, &ecx.fd); !s.ok()) return s;
    if (mode != kModeIndex && mode != kModeFull && mode != kModeLocal && mode != kModeChecksum && mode != kModeReads)
      return GoError("unsupported EC volume scrub mode " + std::to_string(mode));
    struct stat st;
    if (ecx.fd < 0 || fstat(ecx.fd, &st) != 0) return GoError("EC volume id " + std::to_string(vid) + " not found");
    scrub.ecx_fd = ecx.fd;
    scrub.ecx_size = uint64_t(st.st_size);
    scrub.offset_bytes = scrub.layout.offset_bytes() == 4 ? 4 : 5;
    std::vector<std::unique_ptr<OwnedFd>> held;
    if (mode != kModeChecksum) scrub.CheckIndex();
    if (mode != kModeIndex) {
      // Sizes are those at mount, as Go checks against its mounted shards'.
      for (int i = 0; i < scrub.layout.local_shards_size(); ++i) {
        const uint32_t shard = scrub.layout.local_shards(i);
        volume_server_pb::VolumeEcShardReadRequest r;
        r.set_volume_id(vid);
        r.set_shard_id(shard);
        volume_server_pb::VolumeEcShardReadResponse ignored;
        auto fd = std::make_unique<OwnedFd>();
        if (!supervisor_->CallForFd("kelp.OpenEcShardRead", r, &ignored, &fd->fd).ok() || fd->fd < 0) continue;
        const int64_t size = i < scrub.layout.local_shard_sizes_size() ? scrub.layout.local_shard_sizes(i) : 0;
        scrub.shards.emplace(int(shard), std::make_pair(fd->fd, size));
        held.push_back(std::move(fd));
      }
    }
    if (mode == kModeLocal || mode == kModeFull || mode == kModeReads) scrub.CheckLocalNeedles();
    if (mode == kModeChecksum) scrub.CheckChecksums();
    resp->set_total_volumes(resp->total_volumes() + 1);
    resp->set_total_files(resp->total_files() + scrub.rows.size());
    if (!scrub.errors.empty() || !scrub.broken.empty()) {
      resp->add_broken_volume_ids(vid);
      for (int shard : scrub.broken) {
        auto* info = resp->add_broken_shard_infos();
        info->set_shard_id(uint32_t(shard));
        info->set_size(scrub.shards[shard].second);
        info->set_collection(scrub.layout.collection());
        info->set_volume_id(vid);
      }
      for (const std::string& e : scrub.errors) resp->add_details(e);
    }
  }
  return grpc::Status::OK;
}

}  // namespace kelp
