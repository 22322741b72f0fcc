// ScrubEcVolume: checks erasure-coded volumes from their files, as Go 4.48
// does. INDEX runs the index check over the .ecx; LOCAL also reads each
// live needle's pieces from the shards mounted here, flags shards too short
// or unreadable, and parses each needle whose pieces are all here; FULL reads
// every live needle whole, each piece from a local shard or else from a
// holder the master names, never rebuilt, and flags the shards nobody
// served; READS reads as a client read does, rebuilding what nobody serves;
// CHECKSUM checks every local shard against the .ecsum
// (worker-grpc/ec_checksum_scrub.h). Read-only descriptors come from the
// supervisor. (upstream: weed/server/volume_grpc_scrub.go,
// weed/storage/erasure_coding/ec_volume_scrub.go; docs/erasure-coding.md §14)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "common/ec_client/ec_gather.h"
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
  std::map<int, std::pair<int, int64_t>> shards;  // local shard -> descriptor, size at mount
  std::map<int, int64_t> broken;                   // shard -> the size its report gives

  void Broken(int shard, int64_t size) { broken[shard] = size; }

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
          Broken(p.shard, it->second.second);
          whole = false;
          continue;
        }
        const size_t at = record.size();
        record.resize(at + size_t(p.size));
        if (Status s = PreadFull(it->second.first, record.data() + at, size_t(p.size), off_t(p.shard_offset)); !s.ok()) {
          errors.push_back("failed to read chunk " + chunk + " for needle " + needle + " from local shard " + std::to_string(p.shard) +
                           " at offset " + std::to_string(p.shard_offset) + ": " + s.message());
          Broken(p.shard, it->second.second);
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

  // FULL (rebuild false) and READS: every live needle read whole, wherever
  // its pieces are.
  void CheckNeedlesAcrossHolders(EcPeers* peers, const std::string& master, bool rebuild, bool force_deleted) {
    const uint8_t version = uint8_t(layout.version());
    EcNeedleSite site;
    site.master = master;
    site.vid = vid;
    site.where = layout;
    for (const auto& [shard, held] : shards) site.local_fd[shard] = held.first;
    const EcLayout l{int(layout.data_shards()), layout.large_block(), layout.small_block()};
    std::string record;
    for (const IndexRow& r : rows) {
      if (r.deleted()) continue;
      const uint64_t length = ActualSize(uint32_t(r.entry.size), version);
      site.id = r.entry.id;
      site.where.set_offset(r.entry.ByteOffset());
      site.where.set_size(uint32_t(r.entry.size));
      std::vector<int> ids;
      for (const EcInterval& p : LocateEcRange(l, layout.shard_dat_size(), r.entry.ByteOffset(), length)) ids.push_back(p.shard);
      std::sort(ids.begin(), ids.end());
      std::string on = "EC volume " + std::to_string(vid) + ", needle " + std::to_string(r.entry.id) + " on shards [";
      for (size_t i = 0; i < ids.size(); ++i) on += (i ? " " : "") + std::to_string(ids[i]);
      on += "]: ";
      record.assign(size_t(length), '\0');
      std::vector<EcMissedPiece> missed;
      std::string error;
      const size_t got = GatherRecordForScrub(peers, site, length, rebuild, reinterpret_cast<uint8_t*>(record.data()), &missed, &error);
      for (const EcMissedPiece& m : missed) {
        if (!rebuild)
          errors.push_back("failed to read EC shard " + std::to_string(m.piece.shard) + " for needle " + std::to_string(r.entry.id) + " on volume " +
                           std::to_string(vid) + " (interval " + std::to_string(m.index + 1) + "/" + std::to_string(ids.size()) + "): " + m.error);
        Broken(m.piece.shard, int64_t(m.piece.size));
      }
      if (!error.empty()) errors.push_back(on + error);
      if (got != length) {
        if (error.empty())
          errors.push_back(on + "expected " + std::to_string(length) + " bytes, got " + std::to_string(got));
        continue;
      }
      ParsedNeedle n;
      Status s = ParseNeedle(reinterpret_cast<const uint8_t*>(record.data()), record.size(), uint32_t(r.entry.size), version, &n);
      // A row deleted in the index over a record that is not (or the other
      // way round) cannot parse; Go reports it only when asked to.
      const bool delete_disagreement = s.message().rfind("size mismatch", 0) == 0 && r.deleted() != (n.header.size == 0);
      if (!s.ok() && (!delete_disagreement || force_deleted)) errors.push_back(on + s.message());
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
    for (int shard : found.broken) Broken(shard, shards[shard].second);
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
    const bool across = mode == kModeFull || mode == kModeReads;
    const std::string master = supervisor_->state().master;
    // FULL asks the master where the shards are before anything else; without an answer it checks nothing.
    auto holders = across ? ec_peers_.Holders(master, vid) : Result<EcHolders>(EcHolders{});
    if (!holders.ok()) scrub.errors.push_back(holders.status().message());
    if (mode != kModeChecksum && holders.ok()) scrub.CheckIndex();
    if (mode != kModeIndex && holders.ok()) {
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
    if (mode == kModeLocal) scrub.CheckLocalNeedles();
    if (across && holders.ok()) scrub.CheckNeedlesAcrossHolders(&ec_peers_, master, mode == kModeReads, req->force_deleted_needles_check());
    if (mode == kModeChecksum) scrub.CheckChecksums();
    resp->set_total_volumes(resp->total_volumes() + 1);
    resp->set_total_files(resp->total_files() + scrub.rows.size());
    if (!scrub.errors.empty() || !scrub.broken.empty()) {
      resp->add_broken_volume_ids(vid);
      for (const auto& [shard, size] : scrub.broken) {
        auto* info = resp->add_broken_shard_infos();
        info->set_shard_id(uint32_t(shard));
        info->set_size(size);
        info->set_collection(scrub.layout.collection());
        info->set_volume_id(vid);
      }
      for (const std::string& e : scrub.errors) resp->add_details(e);
    }
  }
  return grpc::Status::OK;
}

}  // namespace kelp
