#include "supervisor/admin_service.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdio>
#include <fstream>

#include "common/collection_name.h"
#include "common/file_id.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "storage/env.h"
#include "common/log.h"
#include "common/needle_status.h"
#include "supervisor/heartbeat_report.h"
#include "supervisor/ttl_expiry.h"

namespace kelp {
namespace {

constexpr const char* kStateFile = "state.pb";

grpc::Status Error(const std::string& message) { return grpc::Status(grpc::StatusCode::UNKNOWN, message); }
// Store errors keep their class, as Go 4.48's: a missing volume is NOT_FOUND,
// a refused precondition (a non-empty volume) FAILED_PRECONDITION.
grpc::Status Error(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound: return grpc::Status(grpc::StatusCode::NOT_FOUND, s.message());
    case Code::kInvalidArgument: return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, s.message());
    default: return grpc::Status(grpc::StatusCode::UNKNOWN, s.message());
  }
}

// Go's %q for the strings that reach it here.
std::string GoQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(char(c));
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(char(c));
    }
  }
  return out + "\"";
}

// A collection becomes part of a file name ("<collection>_<vid>.dat"): it must
// be a single path element. Go checks this only when copying volumes; kelp
// checks it wherever a collection reaches the disk.
grpc::Status CheckCollection(const std::string& collection) {
  if (!IsSafeCollectionName(collection)) return Error("invalid collection " + GoQuote(collection));
  return grpc::Status::OK;
}

std::string DiskTypeOf(const std::string& requested) {
  std::string t;
  for (char c : requested) t.push_back(char(std::tolower(static_cast<unsigned char>(c))));
  return t == "hdd" ? "" : t;
}

uint64_t ReadStatusKb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t klen = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, klen, key) == 0) return std::strtoull(line.c_str() + klen, nullptr, 10) * 1024;
  return 0;
}

}  // namespace

AdminService::AdminService(Store* store, const ServerConfig* config, AdminHooks hooks)
    : store_(store), config_(config), hooks_(std::move(hooks)) {
  RegisterAsync("AllocateVolume", &AdminService::AllocateVolume);
  RegisterAsync("VolumeMount", &AdminService::VolumeMount);
  Register("VolumeUnmount", &AdminService::VolumeUnmount);
  RegisterAsync("VolumeDelete", &AdminService::VolumeDelete);
  RegisterAsync("DeleteCollection", &AdminService::DeleteCollection);
  RegisterAsync("VolumeMarkReadonly", &AdminService::VolumeMarkReadonly);
  RegisterAsync("VolumeMarkWritable", &AdminService::VolumeMarkWritable);
  RegisterAsync("VolumeConfigure", &AdminService::VolumeConfigure);
  Register("VolumeStatus", &AdminService::VolumeStatus);
  Register("VolumeServerStatus", &AdminService::VolumeServerStatus);
  Register("ReadVolumeFileStatus", &AdminService::ReadVolumeFileStatus);
  RegisterAsync("VolumeNeedleStatus", &AdminService::VolumeNeedleStatus);
  RegisterAsync("BatchDelete", &AdminService::BatchDelete);
  Register("GetState", &AdminService::GetState);
  RegisterAsync("SetState", &AdminService::SetState);
  Register("VolumeServerLeave", &AdminService::VolumeServerLeave);
  Register("kelp.VolumeShortInfo", &AdminService::VolumeShortInfo);
  Register("VolumeSyncStatus", &AdminService::VolumeSyncStatus);
  RegisterAsync("ReadNeedleBlob", &AdminService::ReadNeedleBlob);
  RegisterAsync("ReadNeedleMeta", &AdminService::ReadNeedleMeta);
  Register("VacuumVolumeCheck", &AdminService::VacuumVolumeCheck);
  RegisterStream("VacuumVolumeCompact", &AdminService::VacuumVolumeCompact);
  RegisterAsync("VacuumVolumeCommit", &AdminService::VacuumVolumeCommit);
  RegisterAsync("VacuumVolumeCleanup", &AdminService::VacuumVolumeCleanup);
  RegisterAsync("VolumeEcShardsGenerate", &AdminService::VolumeEcShardsGenerate);
  RegisterAsync("VolumeEcShardsMount", &AdminService::VolumeEcShardsMount);
  RegisterAsync("VolumeEcShardsRebuild", &AdminService::VolumeEcShardsRebuild);
  RegisterAsync("VolumeEcShardsToVolume", &AdminService::VolumeEcShardsToVolume);
  Register("VolumeEcShardsUnmount", &AdminService::VolumeEcShardsUnmount);
  RegisterAsync("VolumeEcShardsDelete", &AdminService::VolumeEcShardsDelete);
  RegisterAsync("VolumeEcShardsInfo", &AdminService::VolumeEcShardsInfo);
  RegisterAsync("VolumeEcBlobDelete", &AdminService::VolumeEcBlobDelete);
  RegisterFd("kelp.OpenEcShardRead", &AdminService::OpenEcShardRead);
  RegisterAsync("kelp.LocateEcNeedle", &AdminService::LocateEcNeedle);
  Register("kelp.ListEcVolumes", &AdminService::ListEcVolumes);
  RegisterFd("kelp.OpenEcIndex", &AdminService::OpenEcIndex);
  RegisterAsync("kelp.PlaceEcCopy", &AdminService::PlaceEcCopy);
  RegisterFd("kelp.OpenEcCopyTarget", &AdminService::OpenEcCopyTarget);
  RegisterAsync("kelp.FinishEcCopyTarget", &AdminService::FinishEcCopyTarget);
  RegisterFd("kelp.OpenVolumeFile", &AdminService::OpenVolumeFile);
  RegisterAsync("kelp.BeginVolumeCopy", &AdminService::BeginVolumeCopy);
  RegisterFd("kelp.OpenCopyTarget", &AdminService::OpenCopyTarget);
  RegisterAsync("kelp.FinishVolumeCopy", &AdminService::FinishVolumeCopy);
  RegisterFd("kelp.OpenTailFile", &AdminService::OpenTailFile);
  RegisterAsync("kelp.AppendTailed", &AdminService::AppendTailed);
  RegisterAsync("WriteNeedleBlob", &AdminService::WriteNeedleBlob);
  Register("VolumeConsolidateIndex", &AdminService::VolumeConsolidateIndex);
  RegisterFd("kelp.OpenReceivedFile", &AdminService::OpenReceivedFile);
  Register("kelp.ListVolumes", &AdminService::ListVolumes);
  Register("kelp.CheckMaintenance", &AdminService::MaintenanceGate);
  RegisterAsync("kelp.ReadNeedleData", &AdminService::ReadNeedleData);
  RegisterAsync("kelp.FinishReceivedFile", &AdminService::FinishReceivedFile);
}

template <typename Req, typename Resp>
void AdminService::Register(const char* name, grpc::Status (AdminService::*fn)(const Req&, Resp*)) {
  handlers_[name] = [this, fn](const std::string& in, Reply reply, Progress) {
    Req req;
    if (!req.ParseFromString(in)) return reply(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "cannot decode request"), "", -1);
    Resp resp;
    const grpc::Status s = (this->*fn)(req, &resp);
    std::string out;
    if (s.ok()) resp.SerializeToString(&out);
    reply(s, out, -1);
  };
}

template <typename Req, typename Resp>
void AdminService::RegisterAsync(const char* name, void (AdminService::*fn)(const Req&, Resp*, Finish)) {
  // An asynchronous call is one that hands over no descriptor.
  RegisterFdOf<Req, Resp>(name, [this, fn](const Req& req, Resp* resp, FinishFd finish) {
    (this->*fn)(req, resp, [finish = std::move(finish)](grpc::Status s) { finish(std::move(s), -1); });
  });
}

template <typename Req>
void AdminService::RegisterStream(const char* name, void (AdminService::*fn)(const Req&, Progress, Finish)) {
  handlers_[name] = [this, fn](const std::string& in, Reply reply, Progress progress) {
    auto req = std::make_shared<Req>();
    if (!req->ParseFromString(in)) return reply(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "cannot decode request"), "", -1);
    if (!progress) progress = [](const std::string&) {};
    (this->*fn)(*req, std::move(progress), [req, reply](grpc::Status s) { reply(s, "", -1); });
  };
}

template <typename Req, typename Resp>
void AdminService::RegisterFd(const char* name, void (AdminService::*fn)(const Req&, Resp*, FinishFd)) {
  RegisterFdOf<Req, Resp>(name, [this, fn](const Req& req, Resp* resp, FinishFd finish) { (this->*fn)(req, resp, std::move(finish)); });
}

template <typename Req, typename Resp>
void AdminService::RegisterFdOf(const char* name, std::function<void(const Req&, Resp*, FinishFd)> run) {
  handlers_[name] = [run = std::move(run)](const std::string& in, Reply reply, Progress) {
    auto req = std::make_shared<Req>();
    if (!req->ParseFromString(in)) return reply(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "cannot decode request"), "", -1);
    auto resp = std::make_shared<Resp>();
    run(*req, resp.get(), [req, resp, reply](grpc::Status s, int fd) {
      std::string out;
      if (s.ok()) resp->SerializeToString(&out);
      else if (fd >= 0) close(fd), fd = -1;
      reply(s, out, fd);
    });
  };
}

void AdminService::HandleAsync(const std::string& method, const std::string& request, Reply reply, Progress progress,
                               uint64_t caller) {
  auto it = handlers_.find(method);
  if (it == handlers_.end()) return reply(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + method), "", -1);
  caller_ = caller;
  it->second(request, std::move(reply), std::move(progress));
  caller_ = 0;
}

grpc::Status AdminService::Handle(const std::string& method, const std::string& request, std::string* response) {
  grpc::Status result(grpc::StatusCode::INTERNAL, method + " did not complete synchronously");
  HandleAsync(method, request, [&](const grpc::Status& s, const std::string& out, int fd) {
    if (fd >= 0) close(fd);
    result = s;
    *response = out;
  });
  return result;
}

void AdminService::OnWriter(DiskWriter* writer, std::function<void()> work, std::function<void()> done) {
  if (writer) return writer->Post(std::move(work), std::move(done));
  work();
  done();
}

std::string AdminService::StatePath() const {
  const auto& locs = store_->locations();
  return (locs.empty() ? std::string(".") : locs.front().idx_dir) + "/" + kStateFile;
}

Status AdminService::LoadState() {
  std::string bytes;
  if (!ReadWholeFile(StatePath(), &bytes)) {
    // Only a missing file means "no state yet": any other failure would
    // silently drop maintenance mode, so it stops the server instead.
    if (errno == ENOENT) return Status::Ok();
    return Status::IOError("cannot read store state " + StatePath() + ": " + std::strerror(errno));
  }
  if (!state_.ParseFromString(bytes)) return Status::Corruption("failed to parse store state from " + StatePath());
  return Status::Ok();
}

grpc::Status AdminService::CheckMaintenance() const {
  if (!state_.maintenance()) return grpc::Status::OK;
  return Error("volume server " + config_->ip + ":" + std::to_string(config_->port) + " is in maintenance mode");
}

// The location is chosen on the loop and reserved (the id is busy, and counts
// there); the files are created on that location's writer thread.
void AdminService::AllocateVolume(const volume_server_pb::AllocateVolumeRequest& req, volume_server_pb::AllocateVolumeResponse*,
                                  Finish finish) {
  if (auto s = CheckMaintenance(); !s.ok()) return finish(s);
  if (auto s = CheckCollection(req.collection()); !s.ok()) return finish(s);
  auto rp = ParseReplicaPlacement(req.replication());
  if (!rp.ok()) return finish(Error(rp.status().message()));
  auto ttl = ParseTtl(req.ttl());
  if (!ttl.ok()) return finish(Error(ttl.status().message()));
  NewVolumeSpec spec;
  spec.id = req.volume_id();
  spec.collection = req.collection();
  spec.super_block.replica_placement = rp.value();
  spec.super_block.ttl = ttl.value();
  if (store_->Find(spec.id) || store_->Busy(spec.id)) return finish(Error("Volume Id " + std::to_string(spec.id) + " already exists!"));
  // The master always names the version; kelp writes version 3 only.
  if (req.version() != kVersion3)
    return finish(Error("volume super block version " + std::to_string(req.version()) + " is not supported"));
  spec.super_block.version = uint8_t(req.version());
  spec.disk_type = DiskTypeOf(req.disk_type());
  spec.preallocate = req.preallocate();
  auto where = store_->PickLocation(spec);
  if (!where.ok()) {
    KLOG_ERROR("assign volume %u: %s", spec.id, where.status().message().c_str());
    return finish(Error(where.status().message()));
  }
  const size_t location = where.value();
  const VolumeFileNames names = store_->NamesIn(location, spec.collection, spec.id);
  store_->BeginBusy(spec.id, location, true);
  auto created = std::make_shared<Result<std::shared_ptr<Volume>>>(Status::Unavailable("not created"));
  Store* store = store_;
  OnWriter(store_->LocationWriter(location), [store, names, spec, created] { *created = store->CreateFiles(names, spec); },
           [this, location, id = spec.id, created, finish] {
             store_->EndBusy(id);
             if (!created->ok()) {
               KLOG_ERROR("assign volume %u: %s", id, created->status().message().c_str());
               return finish(Error(created->status().message()));
             }
             Join(std::move(created->value()), location);
             finish(grpc::Status::OK);
           });
}

// The files are found on the loop (a directory scan); the volume is opened
// and its .idx replayed on the location's writer thread; it joins the Store
// on the loop.
void AdminService::VolumeMount(const volume_server_pb::VolumeMountRequest& req, volume_server_pb::VolumeMountResponse*, Finish finish) {
  const VolumeId id = req.volume_id();
  auto fail = [id, finish](const Status& s) {
    KLOG_ERROR("volume mount %u: %s", id, s.message().c_str());
    finish(Error(s.message()));
  };
  if (store_->Find(id)) return finish(grpc::Status::OK);
  auto where = store_->Locate(id);
  if (!where.ok()) return fail(where.status());
  struct Loaded {
    Status status;
    std::shared_ptr<Volume> volume;
  };
  auto loaded = std::make_shared<Loaded>();
  const Store::Located located = where.value();
  Store* store = store_;
  OnWriter(store_->LocationWriter(located.location),
           [store, located, loaded] {
             auto v = store->LoadLocated(located);
             if (v.ok()) loaded->volume = std::move(v.value());
             else loaded->status = v.status();
           },
           [this, located, loaded, fail, finish] {
             if (!loaded->status.ok()) return fail(loaded->status);
             Join(std::move(loaded->volume), located.location);
             finish(grpc::Status::OK);
           });
}

void AdminService::Join(std::shared_ptr<Volume> v, size_t location) {
  bool adopted = false;
  Volume* joined = store_->Adopt(std::move(v), location, &adopted);
  if (adopted) hooks_.volume_added(joined);
}

void AdminService::Unmount(VolumeId id) {
  Volume* v = store_->Find(id);
  if (!v) return;
  const master_pb::VolumeShortInformationMessage info = ShortInfo(*store_, *v);
  store_->UnmountVolume(id);
  hooks_.volume_removed(id, info);
}

grpc::Status AdminService::VolumeUnmount(const volume_server_pb::VolumeUnmountRequest& req, volume_server_pb::VolumeUnmountResponse*) {
  Unmount(req.volume_id());
  return grpc::Status::OK;
}

Status AdminService::DeleteOffLoop(VolumeId id, bool only_empty, std::function<void()> done) {
  Volume* v = store_->Find(id);
  // A vacuum reads and writes its files: Go refuses until it is over.
  if (v && v->compacting()) return Status::IOError("volume " + std::to_string(id) + " is compacting");
  const master_pb::VolumeShortInformationMessage info = v ? ShortInfo(*store_, *v) : master_pb::VolumeShortInformationMessage();
  auto removal = store_->BeginDelete(id, only_empty);
  if (!removal.ok()) return removal.status();
  hooks_.volume_removed(id, info);
  Store* store = store_;
  auto taken = std::make_shared<Store::Removal>(std::move(removal.value()));
  OnWriter(store_->LocationWriter(taken->location), [store, taken] { store->RemoveFiles(std::move(*taken)); },
           [this, id, done = std::move(done)] {
             store_->EndBusy(id);
             done();
           });
  return Status::Ok();
}

void AdminService::RemoveExpiredVolumes(uint64_t now_s) {
  std::vector<VolumeId> due;
  for (const auto& [vid, v] : store_->volumes())
    if (TtlStateOf(v->super_block().ttl, v->dat_size(), store_->volume_size_limit(), v->counters().last_modified_s, now_s) ==
        TtlState::kRemovable)
      due.push_back(vid);
  for (VolumeId id : due) {
    Status s = DeleteOffLoop(id, false, [id] { KLOG_INFO("volume %u is deleted", id); });
    if (!s.ok()) KLOG_WARN("delete volume %u: %s", id, s.message().c_str());
  }
  // Erasure-coded volumes past their .vif's expireAtSec go, files and all;
  // the master hears of each (volume, location) as deleted shards.
  std::vector<master_pb::VolumeEcShardInformationMessage> expired;
  std::vector<VolumeFileNames> files;
  for (const auto& [vid, by_location] : std::map<VolumeId, Store::EcByLocation>(store_->ec_volumes())) {
    for (const auto& [li, v] : by_location) {
      if (v->expire_at_sec() == 0 || now_s <= v->expire_at_sec()) continue;
      KLOG_INFO("ec volume %u in %s expired at %llu", vid, store_->locations()[li].dir.c_str(), static_cast<unsigned long long>(v->expire_at_sec()));
      expired.push_back(EcShardsReport(li, *v));
      files.push_back(store_->NamesIn(li, v->collection(), vid));
      store_->DropEc(vid, li);
    }
  }
  if (expired.empty()) return;
  if (hooks_.ec_shards_changed) hooks_.ec_shards_changed({}, std::move(expired));
  Env* env = store_->env();
  OnWriter(store_->LocationWriter(0), [env, files] {
    for (const VolumeFileNames& n : files)
      if (Status s = RemoveEcFiles(env, n); !s.ok()) KLOG_WARN("expired ec volume %u: %s", n.id, s.message().c_str());
  }, [] {});
}

// Go 4.48 deletes and marks read-only in maintenance mode too. The answer
// waits for the files to be gone, so the id can be allocated again after it.
void AdminService::VolumeDelete(const volume_server_pb::VolumeDeleteRequest& req, volume_server_pb::VolumeDeleteResponse*, Finish finish) {
  const VolumeId id = req.volume_id();
  Status s = DeleteOffLoop(id, req.only_empty(), [id, finish] {
    KLOG_INFO("volume delete %u", id);
    finish(grpc::Status::OK);
  });
  if (!s.ok()) {
    KLOG_ERROR("volume delete %u: %s", id, s.message().c_str());
    finish(Error(s));
  }
}

void AdminService::DeleteCollection(const volume_server_pb::DeleteCollectionRequest& req, volume_server_pb::DeleteCollectionResponse*,
                                    Finish finish) {
  std::vector<VolumeId> ids;
  for (const auto& [vid, v] : store_->volumes())
    if (v->collection() == req.collection() && !v->compacting()) ids.push_back(vid);  // Go skips those being vacuumed
  // Answered when the last volume's files are gone (and at once for none).
  struct Progress {
    size_t remaining;
    std::string error;
  };
  auto progress = std::make_shared<Progress>(Progress{ids.size() + 1, ""});
  auto one_done = [progress, finish] {
    if (--progress->remaining == 0) finish(progress->error.empty() ? grpc::Status::OK : Error(progress->error));
  };
  for (VolumeId id : ids) {
    if (Status s = DeleteOffLoop(id, false, one_done); !s.ok()) {
      KLOG_ERROR("delete collection %s: %s", req.collection().c_str(), s.message().c_str());
      if (progress->error.empty()) progress->error = s.message();
      one_done();
    }
  }
  // The collection's erasure-coded volumes go too, unannounced as in Go (the
  // next full report tells the master).
  std::vector<VolumeFileNames> ec_files;
  for (const auto& [vid, by_location] : std::map<VolumeId, Store::EcByLocation>(store_->ec_volumes())) {
    if (by_location.begin()->second->collection() != req.collection()) continue;
    for (size_t li = 0; li < store_->locations().size(); ++li) ec_files.push_back(store_->NamesIn(li, req.collection(), vid));
    DropEcVolume(vid);
  }
  if (!ec_files.empty()) {
    ++progress->remaining;
    Env* env = store_->env();
    OnWriter(store_->LocationWriter(0), [env, ec_files] {
      for (const VolumeFileNames& n : ec_files)
        if (Status s = RemoveEcFiles(env, n); !s.ok()) KLOG_ERROR("delete collection: ec volume %u: %s", n.id, s.message().c_str());
    }, one_done);
  }
  one_done();
}

void AdminService::SetReadOnlyOffLoop(VolumeId id, bool read_only, bool persist, const char* what, Finish finish) {
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(Error("volume " + std::to_string(id) + " not found"));
  auto result = std::make_shared<Status>();
  // The .vif is rewritten and synced on the writer thread; `v` keeps the
  // volume alive there even if it is unmounted meanwhile.
  DiskWriter* writer = store_->WriterFor(id);
  OnWriter(writer,
           [v, writer, result, read_only, persist] {
             // A vacuum commit queued ahead may have replaced `v`: mark its successor.
             std::shared_ptr<Volume> target = v;
             if (writer && v->retired())
               if (std::shared_ptr<Volume> now = writer->Served(v->id())) target = now;
             *result = target->SetReadOnly(read_only, persist);
           },
           [this, id, result, what, finish] {
             if (!result->ok()) {
               KLOG_ERROR("mark volume %u %s: %s", id, what, result->message().c_str());
               return finish(Error(result->message()));
             }
             hooks_.volumes_changed();
             finish(grpc::Status::OK);
           });
}

void AdminService::VolumeMarkReadonly(const volume_server_pb::VolumeMarkReadonlyRequest& req, volume_server_pb::VolumeMarkReadonlyResponse*,
                                      Finish finish) {
  SetReadOnlyOffLoop(req.volume_id(), true, req.persist(), "readonly", std::move(finish));
}

void AdminService::VolumeMarkWritable(const volume_server_pb::VolumeMarkWritableRequest& req, volume_server_pb::VolumeMarkWritableResponse*,
                                      Finish finish) {
  Volume* v = store_->Find(req.volume_id());
  if (!v) return finish(Error("volume " + std::to_string(req.volume_id()) + " not found"));
  if (auto s = CheckMaintenance(); !s.ok()) return finish(s);
  if (!v->load_warning().empty())
    return finish(Error("volume " + std::to_string(req.volume_id()) + " cannot be made writable: " + v->load_warning()));
  SetReadOnlyOffLoop(req.volume_id(), false, true, "writable", std::move(finish));
}

// Unmount, rewrite the .vif's replication, mount again, as Go does. The id is
// busy meanwhile; the file work runs on the location's writer thread, after
// the unmount's sync.
void AdminService::VolumeConfigure(const volume_server_pb::VolumeConfigureRequest& req, volume_server_pb::VolumeConfigureResponse* resp,
                                   Finish finish) {
  if (auto s = CheckMaintenance(); !s.ok()) return finish(s);
  // Go formats the request with prototext, whose spacing the pinned 4.48 binary sets to two spaces.
  const std::string what = "volume_id:" + std::to_string(req.volume_id()) + "  replication:" + GoQuote(req.replication());
  auto rp = ParseReplicaPlacement(req.replication());
  if (!rp.ok()) {
    resp->set_error("volume configure replication " + what + ": " + rp.status().message());
    return finish(grpc::Status::OK);
  }
  const VolumeId id = req.volume_id();
  auto not_found = [what, id](const Status& mount) {
    return "volume configure " + what + ": volume " + std::to_string(id) + " not found on disk. Also failed to restore mount: " +
           mount.message();
  };
  Store::Located located;
  const bool was_mounted = store_->Find(id) != nullptr;
  if (was_mounted) {
    located = Store::Located{store_->LocationOf(id), store_->Find(id)->names()};
    Unmount(id);
  } else {
    // Go configures a volume it finds on disk, mounted or not.
    auto where = store_->Locate(id);
    if (!where.ok()) {
      resp->set_error(not_found(where.status()));
      return finish(grpc::Status::OK);
    }
    located = where.value();
  }
  struct Outcome {
    std::string error;  // as Go words it
    std::shared_ptr<Volume> volume;
  };
  auto outcome = std::make_shared<Outcome>();
  store_->BeginBusy(id, located.location, true);
  Store* store = store_;
  OnWriter(
      store_->LocationWriter(located.location),
      [store, located, was_mounted, what, id, outcome, not_found, replication = req.replication()] {
        if (!was_mounted) {
          // Go mounts it first; a volume that does not load is not configured.
          auto first = store->LoadLocated(located);
          if (!first.ok()) {
            outcome->error = not_found(first.status());
            return;
          }
        }
        const std::string vif = located.names.Vif();
        bool exists = false;
        auto info = LoadVolumeInfo(vif, &exists);
        Status s = info.ok() ? Status::Ok() : info.status();
        if (s.ok()) {
          VolumeInfo updated = info.value();
          updated.replication = replication;
          s = EnvWriteFileAtomically(store->env(), vif, EncodeVolumeInfo(updated));
        }
        if (!s.ok()) outcome->error = "volume configure " + what + ": volume " + std::to_string(id) + " failed to save vif: " + s.message();
        auto mounted = store->LoadLocated(located);
        if (mounted.ok()) {
          outcome->volume = std::move(mounted.value());
        } else if (outcome->error.empty()) {
          outcome->error = "volume configure mount " + what + ": " + mounted.status().message();
        } else {
          outcome->error += ". Also failed to restore mount: " + mounted.status().message();
        }
      },
      [this, id, located, outcome, resp, finish] {
        store_->EndBusy(id);
        if (outcome->volume) Join(std::move(outcome->volume), located.location);
        if (!outcome->error.empty()) resp->set_error(outcome->error);
        finish(grpc::Status::OK);
      });
}

grpc::Status AdminService::VolumeStatus(const volume_server_pb::VolumeStatusRequest& req, volume_server_pb::VolumeStatusResponse* resp) {
  Volume* v = store_->Find(req.volume_id());
  if (!v) return Error("not found volume id " + std::to_string(req.volume_id()));
  resp->set_is_read_only(v->read_only());
  resp->set_volume_size(v->dat_size());
  resp->set_file_count(v->counters().file_count);
  resp->set_file_deleted_count(v->counters().deleted_count);
  return grpc::Status::OK;
}

grpc::Status AdminService::VolumeServerStatus(const volume_server_pb::VolumeServerStatusRequest&,
                                              volume_server_pb::VolumeServerStatusResponse* resp) {
  *resp->mutable_state() = state_;
  for (const auto& loc : store_->locations()) {
    const DiskUsage u = Store::UsageOf(loc.dir);
    auto* d = resp->add_disk_statuses();
    d->set_dir(AbsolutePath(loc.dir));
    d->set_all(u.all);
    d->set_used(u.used);
    d->set_free(u.free);
    if (u.all > 0) {
      d->set_percent_free(float(double(u.free) / double(u.all) * 100));
      d->set_percent_used(float(double(u.used) / double(u.all) * 100));
    }
    d->set_disk_type(loc.disk_type.empty() ? "hdd" : loc.disk_type);
  }
  auto* mem = resp->mutable_memory_status();
  struct sysinfo si;
  if (sysinfo(&si) == 0) {
    mem->set_all(uint64_t(si.totalram) * si.mem_unit);
    mem->set_free(uint64_t(si.freeram) * si.mem_unit);
    mem->set_used(mem->all() - mem->free());
  }
  mem->set_self(ReadStatusKb("VmRSS:"));
  mem->set_heap(ReadStatusKb("VmData:"));
  mem->set_stack(ReadStatusKb("VmStk:"));
  mem->set_goroutines(int32_t(ReadStatusKb("Threads:") / 1024));
  resp->set_version(ServerVersion());
  resp->set_data_center(config_->data_center);
  resp->set_rack(config_->rack);
  return grpc::Status::OK;
}

grpc::Status AdminService::ReadVolumeFileStatus(const volume_server_pb::ReadVolumeFileStatusRequest& req,
                                                volume_server_pb::ReadVolumeFileStatusResponse* resp) {
  Volume* v = store_->Find(req.volume_id());
  if (!v) return Error("not found volume id " + std::to_string(req.volume_id()));
  struct stat st;
  const uint64_t mtime = fstat(v->dat_fd(), &st) == 0 ? uint64_t(st.st_mtim.tv_sec) : 0;
  resp->set_volume_id(req.volume_id());
  resp->set_dat_file_size(v->dat_size());
  resp->set_idx_file_size(v->idx_size());
  resp->set_dat_file_timestamp_seconds(mtime);
  resp->set_idx_file_timestamp_seconds(mtime);
  resp->set_file_count(v->counters().file_count);
  resp->set_compaction_revision(v->super_block().compaction_revision);
  resp->set_collection(v->collection());
  resp->set_disk_type(store_->locations()[store_->LocationOf(v->id())].disk_type);
  resp->set_version(v->version());
  const VolumeInfo& info = v->info();
  auto* vi = resp->mutable_volume_info();
  vi->set_version(info.version);
  vi->set_replication(info.replication);
  vi->set_bytes_offset(info.bytes_offset);
  vi->set_dat_file_size(info.dat_file_size);
  vi->set_expire_at_sec(info.expire_at_sec);
  vi->set_read_only(info.read_only);
  vi->set_read_only_can_delete(info.read_only_can_delete);
  return grpc::Status::OK;
}

void AdminService::VolumeNeedleStatus(const volume_server_pb::VolumeNeedleStatusRequest& req,
                                      volume_server_pb::VolumeNeedleStatusResponse* resp, Finish finish) {
  std::shared_ptr<Volume> v = store_->Shared(req.volume_id());
  if (!v && !store_->EcOf(req.volume_id()).empty()) return EcNeedleStatus(req, resp, std::move(finish));
  if (!v) return finish(Error("volume not found " + std::to_string(req.volume_id())));
  struct Outcome {
    Status status;
    ParsedNeedle needle;
    std::string record;
  };
  auto out = std::make_shared<Outcome>();
  const NeedleId id = req.needle_id();
  OnWriter(store_->WriterFor(req.volume_id()), [v, out, id] { out->status = v->ReadNeedle(id, &out->record, &out->needle); },
           [out, resp, id, finish] {
             if (!out->status.ok()) {
               if (out->status.code() == Code::kNotFound)
                 return finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "needle not found " + std::to_string(id)));
               return finish(Error(out->status.message()));
             }
             FillNeedleStatus(out->needle, resp);
             finish(grpc::Status::OK);
           });
}

struct AdminService::BatchDeleteJob {
  volume_server_pb::BatchDeleteRequest request;
  volume_server_pb::BatchDeleteResponse* response;
  Finish finish;
  int next = 0;  // the file id to delete next; they go one after another, in order
};

void AdminService::BatchDelete(const volume_server_pb::BatchDeleteRequest& req, volume_server_pb::BatchDeleteResponse* resp, Finish finish) {
  if (auto s = CheckMaintenance(); !s.ok()) return finish(s);
  ContinueBatchDelete(std::make_shared<BatchDeleteJob>(BatchDeleteJob{req, resp, std::move(finish)}));
}

// Parses and looks up on the loop; the needle read and the tombstone append
// run on the volume's writer thread; the result is recorded back on the loop,
// which then moves on to the next file id.
void AdminService::ContinueBatchDelete(std::shared_ptr<BatchDeleteJob> job) {
  const bool skip_cookie = job->request.skip_cookie_check();
  while (job->next < job->request.file_ids_size()) {
    const std::string& fid = job->request.file_ids(job->next++);
    auto* r = job->response->add_results();
    r->set_file_id(fid);
    auto fail = [r](int status, const std::string& error) {
      r->set_status(status);
      r->set_error(error);
    };
    auto split = SplitFileId(fid);
    if (!split.ok()) {
      fail(400, split.status().message());
      continue;
    }
    const std::string_view key = split.value().key;
    // Go ignores a bad volume id here; it becomes volume 0.
    auto vid_parsed = ParseVolumeId(split.value().vid);
    const VolumeId vid = vid_parsed.ok() ? vid_parsed.value() : 0;
    // Go parses the key alone when skipping the cookie check, else with Needle.ParsePath.
    auto parsed = skip_cookie ? ParseNeedleIdCookie(key) : ParseFidWithDelta(key);
    if (!parsed.ok()) {
      fail(400, parsed.status().message());
      continue;
    }
    const NeedleIdCookie idc = parsed.value();
    // Go looks for an EC volume first. Its needles are read and deleted
    // across servers, which the gRPC worker does: status 0 leaves it there.
    if (!store_->EcOf(vid).empty()) continue;
    std::shared_ptr<Volume> v = store_->Shared(vid);
    if (!v) {
      if (skip_cookie)
        fail(500, "volume " + std::to_string(vid) + " not found on " + config_->ip + ":" + std::to_string(config_->port));
      else
        fail(404, "volume " + std::to_string(vid) + " not found");
      continue;
    }
    struct Outcome {
      int status = 0;
      std::string error;
      uint32_t size = 0;
      bool deleted = false;  // a tombstone was attempted
    };
    auto out = std::make_shared<Outcome>();
    OnWriter(
        store_->WriterFor(vid),
        [v, idc, skip_cookie, out] {
          if (!skip_cookie) {
            std::string record;
            ParsedNeedle n;
            if (Status s = v->ReadNeedle(idc.id, &record, &n); !s.ok()) {
              *out = {404, s.message()};
              return;
            }
            if (n.header.cookie != idc.cookie) {
              *out = {400, "File Random Cookie does not match."};
              return;
            }
            if (n.IsChunkManifest()) {
              *out = {406, "ChunkManifest: not allowed in batch delete mode."};
              return;
            }
          }
          out->deleted = true;
          auto size = v->Delete(idc.id, idc.cookie);
          if (!size.ok()) *out = {500, size.status().message(), 0, true};
          else if (size.value() == 0) out->status = 304;
          else *out = {202, "", size.value(), true};
        },
        [this, job, r, vid, out] {
          r->set_status(out->status);
          if (!out->error.empty()) r->set_error(out->error);
          if (out->size) r->set_size(out->size);
          if (!out->deleted || !hooks_.volume_mutated) return ContinueBatchDelete(job);
          hooks_.volume_mutated(vid, [this, job] { ContinueBatchDelete(job); });
        });
    return;  // the done callback continues
  }
  job->finish(grpc::Status::OK);
}

grpc::Status AdminService::GetState(const volume_server_pb::GetStateRequest&, volume_server_pb::GetStateResponse* resp) {
  *resp->mutable_state() = state_;
  return grpc::Status::OK;
}

void AdminService::SetState(const volume_server_pb::SetStateRequest& req, volume_server_pb::SetStateResponse* resp, Finish finish) {
  if (state_writing_) {
    state_waiting_.push_back([this, req, resp, finish] { RunSetState(req, resp, finish); });
    return;
  }
  RunSetState(req, resp, std::move(finish));
}

// state.pb is written and synced on the first location's writer thread;
// state_ changes on the loop once the file is durable.
void AdminService::RunSetState(const volume_server_pb::SetStateRequest& req, volume_server_pb::SetStateResponse* resp, Finish finish) {
  auto next_call = [this] {
    state_writing_ = false;
    if (state_waiting_.empty()) return;
    auto call = std::move(state_waiting_.front());
    state_waiting_.pop_front();
    call();
  };
  // Calls answered without a write hand the turn on at once.
  if (!req.has_state()) {
    *resp->mutable_state() = state_;
    finish(grpc::Status::OK);
    return next_call();
  }
  if (state_.version() != req.state().version()) {
    finish(Error("version mismatch for VolumeServerState (got " + std::to_string(state_.version()) + ", want " +
                 std::to_string(req.state().version()) + ")"));
    return next_call();
  }
  auto next = std::make_shared<volume_server_pb::VolumeServerState>(req.state());
  next->set_version(state_.version() + 1);
  auto bytes = std::make_shared<std::string>();
  next->SerializeToString(bytes.get());
  auto written = std::make_shared<Status>();
  const std::string path = StatePath();
  state_writing_ = true;
  Env* env = store_->env();
  OnWriter(store_->LocationWriter(0), [env, path, bytes, written] { *written = EnvWriteFileAtomically(env, path, *bytes); },
           [this, path, next, written, resp, finish, next_call] {
             if (!written->ok()) {
               finish(Error("failed to write store state to " + path + " : " + written->message()));
               return next_call();
             }
             const bool flipped = next->maintenance() != state_.maintenance();
             state_ = *next;
             if (flipped && hooks_.state_changed) hooks_.state_changed();
             *resp->mutable_state() = state_;
             finish(grpc::Status::OK);
             next_call();
           });
}

grpc::Status AdminService::VolumeServerLeave(const volume_server_pb::VolumeServerLeaveRequest&, volume_server_pb::VolumeServerLeaveResponse*) {
  if (hooks_.leave) hooks_.leave();
  return grpc::Status::OK;
}

// Go moves an index left beside the .dat (an EC decode does that) into the
// location's -dir.idx. kelp loads and creates every index in the location's
// index directory, so a mounted volume's index is already where it belongs.
grpc::Status AdminService::VolumeConsolidateIndex(const volume_server_pb::VolumeConsolidateIndexRequest& req,
                                                  volume_server_pb::VolumeConsolidateIndexResponse*) {
  if (auto s = CheckMaintenance(); !s.ok()) return s;
  if (!store_->Find(req.volume_id())) return Error("volume " + std::to_string(req.volume_id()) + " not found on disk");
  return grpc::Status::OK;
}

grpc::Status AdminService::MaintenanceGate(const kelp_internal::Nothing&, kelp_internal::Nothing*) { return CheckMaintenance(); }

grpc::Status AdminService::ListVolumes(const kelp_internal::VolumeIdList&, kelp_internal::VolumeIdList* resp) {
  for (size_t loc = 0; loc < store_->locations().size(); ++loc)
    for (const auto& [id, v] : store_->volumes())  // a map: ascending ids
      if (store_->LocationOf(id) == loc) resp->add_ids(id);
  return grpc::Status::OK;
}

grpc::Status AdminService::VolumeShortInfo(const volume_server_pb::VolumeStatusRequest& req, master_pb::VolumeShortInformationMessage* resp) {
  Volume* v = store_->Find(req.volume_id());
  if (!v) return Error("volume " + std::to_string(req.volume_id()) + " not found");
  *resp = ShortInfo(*store_, *v);
  return grpc::Status::OK;
}

}  // namespace kelp
