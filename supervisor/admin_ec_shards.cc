// Mounted erasure-coded volumes (Go 4.48's semantics and texts): mounting and
// unmounting shards, deleting shard files, the volume's info, deletes into
// its journal, and the descriptor a shard read streams from. File work runs
// on a location's writer thread; the registry changes on the loop, and every
// mount or unmount reaches the master as a delta.
// (upstream: weed/server/volume_grpc_erasure_coding.go, weed/storage/store_ec.go;
// docs/erasure-coding.md §8-§11, §13)
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <set>

#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/go_error.h"
#include "common/log.h"
#include "common/needle.h"
#include "common/needle_status.h"
#include "ipc/wire_code.h"
#include "supervisor/admin_service.h"
#include "supervisor/heartbeat_report.h"

namespace kelp {
namespace {

using EcMessage = master_pb::VolumeEcShardInformationMessage;

std::string ShardName(VolumeId id, uint32_t shard) { return std::to_string(id) + "." + std::to_string(shard); }


// The generation (encodeTsNs) a location's .vif records, 0 when none.
int64_t GenerationIn(const EcBases& bases) {
  for (const std::string& vif : {bases.data + ".vif", bases.idx + ".vif"}) {
    bool exists = false;
    auto info = LoadVolumeInfo(vif, &exists);
    if (!exists) continue;
    if (!info.ok() || !info.value().ec_shard_config) return 0;
    return info.value().ec_shard_config->encode_ts_ns;
  }
  return 0;
}

// Shard files of a volume in a directory.
int ShardFilesIn(const std::string& base) {
  int n = 0;
  for (int shard = 0; shard < kMaxEcShards; ++shard)
    if (FileSizeOf(base + EcShardExt(shard)) >= 0) ++n;
  return n;
}

}  // namespace

void AdminService::DropEcVolume(VolumeId id) {
  for (const auto& [li, v] : store_->EcOf(id)) store_->DropEc(id, li);
}

// --- Mount ---------------------------------------------------------------

void AdminService::VolumeEcShardsMount(const volume_server_pb::VolumeEcShardsMountRequest& req,
                                       volume_server_pb::VolumeEcShardsMountResponse*, Finish finish) {
  const VolumeId id = req.volume_id();
  struct Mounted {
    size_t location;
    int shard;
    EcShardFile file;
    std::shared_ptr<EcVolume> volume;
  };
  struct Plan {
    std::vector<Mounted> mounted;
    std::string error;  // the first failure; the shards before it stay mounted
  };
  auto plan = std::make_shared<Plan>();
  std::vector<std::shared_ptr<EcVolume>> existing(store_->locations().size());
  std::vector<EcBases> bases;
  for (size_t li = 0; li < store_->locations().size(); ++li) {
    existing[li] = store_->FindEc(id, li);
    bases.push_back(store_->EcBasesIn(li, req.collection(), id));
  }
  std::vector<uint32_t> shards(req.shard_ids().begin(), req.shard_ids().end());
  Env* env = store_->env();
  const int offset_bytes = store_->offset_bytes();
  auto work = [plan, existing, bases, shards, env, offset_bytes, id, collection = req.collection()]() mutable {
    bool any_ecx = false;
    for (const EcBases& b : bases)
      if (FileSizeOf(b.idx + ".ecx") > 0 || FileSizeOf(b.data + ".ecx") > 0) any_ecx = true;
    for (uint32_t shard : shards) {
      if (shard >= uint32_t(kMaxEcShards)) {
        plan->error = "mount " + ShardName(id, shard) + ": MountEcShards " + ShardName(id, shard) + " not found on disk";
        return;
      }
      std::vector<std::string> failures;
      bool done = false;
      for (size_t li = 0; li < bases.size() && !done; ++li) {
        const std::string path = bases[li].data + EcShardExt(int(shard));
        auto f = Store::OpenEcShard(env, path);
        if (!f.ok()) {
          if (f.status().code() != Code::kNotFound)
            failures.push_back(bases[li].data + ": failed to create ec shard " + ShardName(id, shard) + ": cannot read ec volume shard " +
                               path + ": " + f.status().message());
          continue;
        }
        if (!existing[li]) {
          auto opened = EcVolume::Open(env, bases[li], id, collection, offset_bytes);
          if (!opened.ok()) {
            env->Close(f.value().fd);
            if (opened.status().code() != Code::kNotFound)
              failures.push_back(bases[li].data + ": failed to create ec volume " + std::to_string(id) + ": " + opened.status().message());
            continue;
          }
          existing[li] = opened.value();
        }
        if (f.value().size == 0 && existing[li]->ecx_rows() > 0) {
          env->Close(f.value().fd);
          failures.push_back(bases[li].data + ": ec volume " + std::to_string(id) + " shard " + std::to_string(shard) +
                             ": shard file is empty (0 bytes) but the index has " + std::to_string(existing[li]->ecx_rows()) +
                             " entries: residue of a failed copy, not a mountable shard");
          continue;
        }
        plan->mounted.push_back(Mounted{li, int(shard), f.value(), existing[li]});
        done = true;
      }
      if (done) continue;
      std::string why;
      if (!failures.empty()) {
        why = "MountEcShards " + ShardName(id, shard) + " load failures: ";
        for (size_t i = 0; i < failures.size(); ++i) why += (i ? "; " : "") + failures[i];
      } else if (!any_ecx) {
        why = "MountEcShards " + ShardName(id, shard) + ": no .ecx index found on any local disk";
      } else {
        why = "MountEcShards " + ShardName(id, shard) + " not found on disk";
      }
      plan->error = "mount " + ShardName(id, shard) + ": " + why;
      return;
    }
  };
  OnWriter(store_->LocationWriter(0), std::move(work), [this, plan, id, disk_type = req.source_disk_type(), finish = std::move(finish)] {
    std::vector<EcMessage> added;
    for (Mounted& m : plan->mounted) {
      std::shared_ptr<EcVolume> v = store_->FindEc(id, m.location);
      if (!v) {
        v = m.volume;
        v->set_disk_type(store_->locations()[m.location].disk_type);
        store_->PutEc(m.location, v);
      }
      if (!disk_type.empty()) v->set_disk_type(disk_type);
      const int64_t size = m.file.size;
      v->AddShard(m.shard, m.file);
      added.push_back(EcShardDelta(m.location, *v, m.shard, size, true));
    }
    if (!added.empty() && hooks_.ec_shards_changed) hooks_.ec_shards_changed(std::move(added), {});
    finish(plan->error.empty() ? grpc::Status::OK : GoError(plan->error));
  });
}

// --- Unmount -------------------------------------------------------------

grpc::Status AdminService::VolumeEcShardsUnmount(const volume_server_pb::VolumeEcShardsUnmountRequest& req,
                                                 volume_server_pb::VolumeEcShardsUnmountResponse*) {
  const VolumeId id = req.volume_id();
  const int64_t fence = req.encode_ts_ns();
  std::vector<EcMessage> removed;
  for (uint32_t shard : req.shard_ids()) {
    if (shard >= uint32_t(kMaxEcShards)) continue;
    for (const auto& [li, v] : store_->EcOf(id)) {
      // A fenced unmount leaves newer and unidentified generations alone.
      if (fence > 0 && !(v->encode_ts_ns() > 0 && v->encode_ts_ns() < fence)) continue;
      if (!v->HasShard(int(shard))) continue;
      removed.push_back(EcShardDelta(li, *v, int(shard), 0, false));
      v->RemoveShard(int(shard));
      if (v->empty()) store_->DropEc(id, li);
    }
  }
  if (!removed.empty() && hooks_.ec_shards_changed) hooks_.ec_shards_changed({}, std::move(removed));
  return grpc::Status::OK;
}

// --- Delete (files) ------------------------------------------------------

void AdminService::VolumeEcShardsDelete(const volume_server_pb::VolumeEcShardsDeleteRequest& req,
                                        volume_server_pb::VolumeEcShardsDeleteResponse* resp, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  const VolumeId id = req.volume_id();
  std::vector<VolumeFileNames> names;
  for (size_t li = 0; li < store_->locations().size(); ++li) names.push_back(store_->NamesIn(li, req.collection(), id));
  Env* env = store_->env();
  auto error = std::make_shared<std::string>();
  if (req.full_teardown()) {
    const int64_t fence = req.encode_ts_ns();
    // Which locations go: all of them, or (fenced) those holding an older generation.
    std::vector<bool> teardown(names.size(), true);
    if (fence > 0) {
      for (size_t li = 0; li < names.size(); ++li) {
        const int64_t gen = GenerationIn(EcBases{names[li].Base(names[li].dir), names[li].Base(names[li].idx_dir)});
        teardown[li] = gen > 0 && gen < fence;
      }
    }
    for (size_t li = 0; li < names.size(); ++li)
      if (teardown[li]) store_->DropEc(id, li);
    auto work = [names, teardown, env, error, fence, id] {
      for (size_t li = 0; li < names.size(); ++li) {
        if (!teardown[li]) continue;
        if (Status s = RemoveEcFiles(env, names[li]); !s.ok()) {
          *error = std::string(fence > 0 ? "fenced" : "full") + " teardown of ec volume " + std::to_string(id) + " on " + names[li].dir +
                   ": " + s.message();
          return;
        }
      }
    };
    return OnWriter(store_->LocationWriter(0), std::move(work), [error, resp, finish = std::move(finish)] {
      if (!error->empty()) return finish(GoError(*error));
      resp->set_full_teardown_done(true);
      finish(grpc::Status::OK);
    });
  }
  std::vector<uint32_t> shards;
  for (uint32_t s : req.shard_ids())
    if (s < uint32_t(kMaxEcShards)) shards.push_back(s);
  auto work = [names, shards, env, error] {
    // Pass 1: the listed shard files, and a location's .ecsum once it holds none.
    for (size_t li = 0; li < names.size(); ++li) {
      const VolumeFileNames& n = names[li];
      const std::string data = n.Base(n.dir), idx = n.Base(n.idx_dir);
      bool held = false;
      for (uint32_t shard : shards) {
        const std::string path = data + EcShardExt(int(shard));
        if (FileSizeOf(path) < 0) continue;
        held = true;
        if (Status s = EnvRemoveIfExists(env, path); !s.ok()) {
          *error = "remove ec shard " + path + ": " + s.message();
          return;
        }
      }
      if (held && ShardFilesIn(data) == 0) {
        EnvRemoveIfExists(env, data + ".ecsum");
        bool idx_shared = false;
        for (size_t other = 0; other < names.size(); ++other)
          if (other != li && names[other].idx_dir == n.idx_dir && ShardFilesIn(names[other].Base(names[other].dir)) > 0) idx_shared = true;
        if (idx != data && !idx_shared) EnvRemoveIfExists(env, idx + ".ecsum");
      }
    }
    // Pass 2: no shard of the volume left on the node: its index, journal and .vif go.
    int left = 0;
    for (const VolumeFileNames& n : names) left += ShardFilesIn(n.Base(n.dir));
    if (left > 0) return;
    for (const VolumeFileNames& n : names) {
      const std::string data = n.Base(n.dir), idx = n.Base(n.idx_dir);
      for (const std::string& base : {idx, data}) {
        EnvRemoveIfExists(env, base + ".ecx");
        EnvRemoveIfExists(env, base + ".ecj");
      }
      if (FileSizeOf(data + ".idx") < 0 && FileSizeOf(idx + ".idx") < 0) EnvRemoveIfExists(env, data + ".vif");
    }
  };
  OnWriter(store_->LocationWriter(0), std::move(work), [error, finish = std::move(finish)] {
    finish(error->empty() ? grpc::Status::OK : GoError(*error));
  });
}

// --- Info ----------------------------------------------------------------

void AdminService::VolumeEcShardsInfo(const volume_server_pb::VolumeEcShardsInfoRequest& req, volume_server_pb::VolumeEcShardsInfoResponse* resp,
                                      Finish finish) {
  const VolumeId id = req.volume_id();
  const Store::EcByLocation all = store_->EcOf(id);
  if (all.empty()) return finish(GoError("VolumeEcShardsInfo: EC volume " + std::to_string(id) + " not found"));
  std::set<int> listed;
  for (const auto& [li, v] : all) {
    for (const auto& [shard, f] : v->shards()) {
      if (!listed.insert(shard).second) continue;
      auto* info = resp->add_ec_shard_infos();
      info->set_shard_id(uint32_t(shard));
      info->set_size(f.size);
      info->set_collection(v->collection());
      info->set_volume_id(id);
    }
  }
  std::shared_ptr<EcVolume> first = all.begin()->second;
  auto* config = resp->mutable_ec_shard_config();
  config->set_data_shards(uint32_t(first->data_shards()));
  config->set_parity_shards(uint32_t(first->parity_shards()));
  config->set_block_size(first->block_size());  // Go 4.48 leaves the generation out of this answer
  // The counts walk the .ecx: on the location's writer thread, not the loop.
  OnWriter(
      store_->LocationWriter(all.begin()->first),
      [first, resp] {
        auto counts = first->CountIndex();
        if (!counts.ok()) return;
        resp->set_file_count(counts.value().live);
        resp->set_file_deleted_count(counts.value().deleted);
        resp->set_volume_size(counts.value().live_bytes);
      },
      [finish = std::move(finish)] { finish(grpc::Status::OK); });
}

// --- Deletes into the journal ---------------------------------------------

void AdminService::VolumeEcBlobDelete(const volume_server_pb::VolumeEcBlobDeleteRequest& req,
                                      volume_server_pb::VolumeEcBlobDeleteResponse*, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  const Store::EcByLocation all = store_->EcOf(req.volume_id());
  if (all.empty()) return finish(grpc::Status::OK);  // nothing of it here
  const size_t li = all.begin()->first;
  std::shared_ptr<EcVolume> v = all.begin()->second;
  auto error = std::make_shared<std::string>();
  const NeedleId key = req.file_key();
  OnWriter(
      store_->LocationWriter(li),
      [v, key, error] {
        auto found = v->Find(key);
        if (!found.ok()) {
          *error = "locate in local ec volume: " + found.status().message();
          return;
        }
        if (!found.value()) {
          *error = "locate in local ec volume: FindNeedleFromEcx: needle not found";
          return;
        }
        if (Status s = v->JournalDelete(key); !s.ok()) *error = s.message();
      },
      [error, finish = std::move(finish)] { finish(error->empty() ? grpc::Status::OK : GoError(*error)); });
}

// --- Shard reads ---------------------------------------------------------

void AdminService::EcNeedleStatus(const volume_server_pb::VolumeNeedleStatusRequest& req, volume_server_pb::VolumeNeedleStatusResponse* resp,
                                  Finish finish) {
  const Store::EcByLocation all = store_->EcOf(req.volume_id());
  const size_t li = all.begin()->first;
  std::shared_ptr<EcVolume> v = all.begin()->second;
  struct Outcome {
    std::string error;
    bool elsewhere = false;  // a piece is on another server
    bool not_found = false;  // not in the .ecx
    std::string record;
    ParsedNeedle needle;
  };
  auto out = std::make_shared<Outcome>();
  const NeedleId key = req.needle_id();
  OnWriter(
      store_->LocationWriter(li),
      [v, key, out] {
        auto found = v->Find(key);
        if (!found.ok()) {
          out->error = "locate in local ec volume: " + found.status().message();
          return;
        }
        if (!found.value()) {
          out->not_found = true;  // Go 4.48: NOT_FOUND, as for a regular volume
          return;
        }
        if (found.value()->size < 0 || v->Journaled(key)) {
          out->error = "already deleted";
          return;
        }
        auto record = v->ReadLocalRecord(*found.value());
        if (!record.ok()) {
          out->elsewhere = record.status().code() == Code::kNotFound;
          out->error = record.status().message();
          return;
        }
        out->record = std::move(record.value());
        if (Status s = ParseNeedle(reinterpret_cast<const uint8_t*>(out->record.data()), out->record.size(), uint32_t(found.value()->size),
                                   uint8_t(v->version()), &out->needle);
            !s.ok())
          out->error = "ec volume " + std::to_string(v->id()) + " needle " + std::to_string(key) + ": " + s.message();
      },
      [out, resp, key, finish = std::move(finish)] {
        // The gRPC worker reads such a needle across the holders.
        if (out->elsewhere) return finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, ipc::kEcNeedleElsewhere));
        if (out->not_found)
          return finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "needle not found " + std::to_string(key)));
        if (!out->error.empty()) return finish(GoError(out->error));
        FillNeedleStatus(out->needle, resp);
        finish(grpc::Status::OK);
      });
}

namespace {

// The layout and local shards of a mounted EC volume, read through its first location.
void DescribeEcVolume(const Store::EcByLocation& all, kelp_internal::EcNeedleLocated* resp) {
  const std::shared_ptr<EcVolume>& v = all.begin()->second;
  for (const auto& [at, holder] : all)
    for (const auto& [shard, f] : holder->shards()) resp->add_local_shards(uint32_t(shard));
  const EcLayout layout = v->layout();
  resp->set_version(v->version());
  resp->set_data_shards(uint32_t(v->data_shards()));
  resp->set_parity_shards(uint32_t(v->parity_shards()));
  resp->set_large_block(layout.large_block);
  resp->set_small_block(layout.small_block);
  resp->set_shard_dat_size(v->ShardDatSize());
  resp->set_encode_ts_ns(v->encode_ts_ns());
  resp->set_collection(v->collection());
  resp->set_offset_bytes(uint32_t(v->offset_bytes()));
}

}  // namespace

grpc::Status AdminService::ListEcVolumes(const kelp_internal::VolumeIdList&, kelp_internal::VolumeIdList* resp) {
  std::set<VolumeId> listed;
  for (size_t li = 0; li < store_->locations().size(); ++li)
    for (const auto& [vid, by_location] : store_->ec_volumes())
      if (by_location.count(li) && listed.insert(vid).second) resp->add_ids(vid);
  return grpc::Status::OK;
}

void AdminService::OpenEcIndex(const kelp_internal::EcNeedleLocate& req, kelp_internal::EcNeedleLocated* resp, FinishFd finish) {
  const Store::EcByLocation all = store_->EcOf(req.volume_id());
  if (all.empty()) return finish(GoError("EC volume id " + std::to_string(req.volume_id()) + " not found"), -1);
  DescribeEcVolume(all, resp);
  for (const auto& [at, holder] : all)
    for (const auto& [shard, f] : holder->shards()) resp->add_local_shard_sizes(f.size);
  for (const auto& [at, holder] : all) {
    const EcsumFile& sidecar = holder->checksum_sidecar();
    if (!sidecar.present) continue;
    resp->set_checksum_sidecar_present(true);
    resp->set_checksum_sidecar_unreadable(sidecar.unreadable);
    resp->set_checksum_sidecar(sidecar.bytes);
    resp->set_checksum_sidecar_path(sidecar.path);
    break;
  }
  const int fd = fcntl(all.begin()->second->ecx_fd(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return finish(GoError("dup " + all.begin()->second->ecx_path() + ": " + GoErrno(errno)), -1);
  finish(grpc::Status::OK, fd);
}

void AdminService::LocateEcNeedle(const kelp_internal::EcNeedleLocate& req, kelp_internal::EcNeedleLocated* resp, Finish finish) {
  const Store::EcByLocation all = store_->EcOf(req.volume_id());
  if (all.empty()) return finish(GoError("not found ec volume id " + std::to_string(req.volume_id())));
  const size_t li = all.begin()->first;
  std::shared_ptr<EcVolume> v = all.begin()->second;  // Go reads through the first location's
  DescribeEcVolume(all, resp);
  auto error = std::make_shared<std::string>();
  const NeedleId key = req.needle_id();
  OnWriter(
      store_->LocationWriter(li),
      [v, key, error, resp] {
        auto found = v->Find(key);
        if (!found.ok()) {
          *error = "locate in local ec volume: " + found.status().message();
        } else if (!found.value()) {
          *error = "locate in local ec volume: FindNeedleFromEcx: needle not found";
        } else if (found.value()->size < 0 || v->Journaled(key)) {
          *error = "already deleted";
        } else {
          resp->set_offset(found.value()->ByteOffset());
          resp->set_size(uint32_t(found.value()->size));
        }
      },
      [error, finish = std::move(finish)] { finish(error->empty() ? grpc::Status::OK : GoError(*error)); });
}

void AdminService::OpenEcShardRead(const volume_server_pb::VolumeEcShardReadRequest& req, volume_server_pb::VolumeEcShardReadResponse* resp,
                                   FinishFd finish) {
  const VolumeId id = req.volume_id();
  const uint32_t shard = req.shard_id();
  std::shared_ptr<EcVolume> v;
  size_t li = 0;
  for (const auto& [at, candidate] : store_->EcOf(id)) {
    if (shard < uint32_t(kMaxEcShards) && candidate->HasShard(int(shard))) {
      v = candidate, li = at;
      break;
    }
  }
  if (!v) return finish(GoError("not found ec shard " + ShardName(id, shard)), -1);
  if (req.encode_ts_ns() != 0 && req.encode_ts_ns() != v->encode_ts_ns())
    return finish(GoError("ec shard " + ShardName(id, shard) + " belongs to a different encode run"), -1);
  resp->set_encode_ts_ns(v->encode_ts_ns());
  const NeedleId key = req.file_key();
  auto deleted = std::make_shared<bool>(false);
  auto work = [v, key, deleted] {
    if (key == 0) return;
    if (v->Journaled(key)) {
      *deleted = true;
      return;
    }
    auto found = v->Find(key);
    *deleted = found.ok() && found.value() && found.value()->size < 0;
  };
  const bool negative = req.offset() < 0 && req.size() > 0;
  OnWriter(store_->LocationWriter(li), std::move(work), [v, shard, deleted, negative, resp, finish = std::move(finish)] {
    if (*deleted) {
      resp->set_is_deleted(true);
      return finish(grpc::Status::OK, -1);
    }
    if (negative) return finish(GoError("readat " + v->bases().data + EcShardExt(int(shard)) + ": negative offset"), -1);
    const int fd = v->DupShard(int(shard), nullptr);
    if (fd < 0) return finish(GoError("not found ec shard " + ShardName(v->id(), shard)), -1);
    finish(grpc::Status::OK, fd);
  });
}

}  // namespace kelp
