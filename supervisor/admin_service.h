// The VolumeServer gRPC methods that read or change volumes, decided on the
// supervisor's loop against the Store. Requests arrive already decoded and
// re-encoded by the gRPC worker; errors carry the Go server's texts.
//
// Calls that touch a volume's files (BatchDelete, VolumeNeedleStatus, marking
// read-only or writable, SetState's state.pb) do that I/O on the disk writer
// thread of the location concerned and answer when it is done: a stalled disk
// delays only the calls that need it, never the loop. So does VolumeMount's
// load (the .idx replay); configure, allocate and delete still do their file
// work on the loop, and unmount's sync runs on the writer already.
// (upstream: weed/server/volume_grpc_admin.go, volume_grpc_batch_delete.go,
// volume_grpc_state.go)
#pragma once
#include <deque>
#include <functional>
#include <memory>
#include <map>
#include <set>
#include <string>

#include <grpcpp/support/status.h>

#include "common/server_config.h"
#include "proto/master.pb.h"
#include "proto/kelp_internal.pb.h"
#include "proto/volume_server.pb.h"
#include "supervisor/background_jobs.h"
#include "supervisor/job_workers.h"
#include "supervisor/store.h"

namespace kelp {

struct AdminHooks {
  std::function<void(Volume*)> volume_added;  // workers attach it; the master gets new_volumes
  std::function<void(VolumeId, const master_pb::VolumeShortInformationMessage&)> volume_removed;
  std::function<void()> volumes_changed;      // a full report to the master now
  std::function<void()> state_changed;        // maintenance mode flipped
  std::function<void()> leave;                // stop heartbeating
  // After a write or delete: announces a grown index segment, then runs
  // `then` once every worker reads a segment that holds the change.
  std::function<void(VolumeId, std::function<void()> then)> volume_mutated;
  std::function<void(Volume*)> volume_replaced;  // a vacuum commit: workers switch to it, the master hears of it
  // EC shards mounted (new) or unmounted (deleted): the master hears at once.
  std::function<void(std::vector<master_pb::VolumeEcShardInformationMessage> added,
                     std::vector<master_pb::VolumeEcShardInformationMessage> removed)>
      ec_shards_changed;
};

class AdminService {
 public:
  AdminService(Store* store, const ServerConfig* config, AdminHooks hooks);

  // Loads state.pb from the first location's index directory, as Go does.
  Status LoadState();
  const volume_server_pb::VolumeServerState& state() const { return state_; }

  // `fd` (or -1) is a descriptor handed to the caller with the answer; the
  // reply takes it over.
  using Reply = std::function<void(const grpc::Status&, const std::string& response, int fd)>;
  // One streamed response (serialized), sent before the final reply.
  using Progress = std::function<void(const std::string& message)>;
  // Runs `method` on the serialized request; `reply` gets the serialized
  // response, on the loop, possibly after this returns. A streaming method
  // sends its messages through `progress` first, and replies with none.
  // `caller` names the worker that asked (0: none in particular): copies and
  // pushes it starts are its own, undone when it goes (AbortCopies).
  void HandleAsync(const std::string& method, const std::string& request, Reply reply, Progress progress = nullptr,
                   uint64_t caller = 0);
  // Removes the TTL volumes whose removal time has come (Go does it as it
  // builds each heartbeat). On the loop.
  void RemoveExpiredVolumes(uint64_t now_s);
  // Vacuum copies run there (without it, inline).
  void set_jobs(BackgroundJobs* jobs) { jobs_ = jobs; }
  // Where a vacuum's copy runs; without one (tests), on the background thread.
  void set_job_workers(JobWorkers* workers) { job_workers_ = workers; }
  // The same, for callers without writer threads (tests): every call then
  // completes before it returns.
  grpc::Status Handle(const std::string& method, const std::string& request, std::string* response);

 private:
  using Handler = std::function<void(const std::string&, Reply, Progress)>;
  using Finish = std::function<void(grpc::Status)>;
  template <typename Req, typename Resp>
  void Register(const char* name, grpc::Status (AdminService::*fn)(const Req&, Resp*));
  template <typename Req, typename Resp>
  void RegisterAsync(const char* name, void (AdminService::*fn)(const Req&, Resp*, Finish));
  template <typename Req>
  void RegisterStream(const char* name, void (AdminService::*fn)(const Req&, Progress, Finish));
  using FinishFd = std::function<void(grpc::Status, int fd)>;  // fd: -1, or handed to the caller
  template <typename Req, typename Resp>
  void RegisterFd(const char* name, void (AdminService::*fn)(const Req&, Resp*, FinishFd));
  // The decoding and answering every asynchronous call shares.
  template <typename Req, typename Resp>
  void RegisterFdOf(const char* name, std::function<void(const Req&, Resp*, FinishFd)> run);
  // `work` on the writer thread of `writer` (inline when there is none), then `done` on the loop.
  static void OnWriter(DiskWriter* writer, std::function<void()> work, std::function<void()> done);
  struct BatchDeleteJob;
  void ContinueBatchDelete(std::shared_ptr<BatchDeleteJob> job);
  void RunSetState(const volume_server_pb::SetStateRequest& req, volume_server_pb::SetStateResponse* resp, Finish finish);

  grpc::Status CheckMaintenance() const;
  void AllocateVolume(const volume_server_pb::AllocateVolumeRequest& req, volume_server_pb::AllocateVolumeResponse*, Finish finish);
  void VolumeMount(const volume_server_pb::VolumeMountRequest& req, volume_server_pb::VolumeMountResponse*, Finish finish);
  grpc::Status VolumeUnmount(const volume_server_pb::VolumeUnmountRequest& req, volume_server_pb::VolumeUnmountResponse*);
  void VolumeDelete(const volume_server_pb::VolumeDeleteRequest& req, volume_server_pb::VolumeDeleteResponse*, Finish finish);
  void DeleteCollection(const volume_server_pb::DeleteCollectionRequest& req, volume_server_pb::DeleteCollectionResponse*, Finish finish);
  // Takes volume `id` out and removes its files on its writer thread; `done` runs on the loop after.
  Status DeleteOffLoop(VolumeId id, bool only_empty, std::function<void()> done);
  void VolumeMarkReadonly(const volume_server_pb::VolumeMarkReadonlyRequest& req, volume_server_pb::VolumeMarkReadonlyResponse*, Finish finish);
  void VolumeMarkWritable(const volume_server_pb::VolumeMarkWritableRequest& req, volume_server_pb::VolumeMarkWritableResponse*, Finish finish);
  void SetReadOnlyOffLoop(VolumeId id, bool read_only, bool persist, const char* what, Finish finish);
  void VolumeConfigure(const volume_server_pb::VolumeConfigureRequest& req, volume_server_pb::VolumeConfigureResponse* resp, Finish finish);
  grpc::Status VolumeStatus(const volume_server_pb::VolumeStatusRequest& req, volume_server_pb::VolumeStatusResponse* resp);
  grpc::Status VolumeServerStatus(const volume_server_pb::VolumeServerStatusRequest&, volume_server_pb::VolumeServerStatusResponse* resp);
  grpc::Status ReadVolumeFileStatus(const volume_server_pb::ReadVolumeFileStatusRequest& req,
                                    volume_server_pb::ReadVolumeFileStatusResponse* resp);
  void VolumeNeedleStatus(const volume_server_pb::VolumeNeedleStatusRequest& req, volume_server_pb::VolumeNeedleStatusResponse* resp,
                          Finish finish);
  void BatchDelete(const volume_server_pb::BatchDeleteRequest& req, volume_server_pb::BatchDeleteResponse* resp, Finish finish);
  grpc::Status GetState(const volume_server_pb::GetStateRequest&, volume_server_pb::GetStateResponse* resp);
  void SetState(const volume_server_pb::SetStateRequest& req, volume_server_pb::SetStateResponse* resp, Finish finish);
  grpc::Status VolumeServerLeave(const volume_server_pb::VolumeServerLeaveRequest&, volume_server_pb::VolumeServerLeaveResponse*);
  grpc::Status VolumeConsolidateIndex(const volume_server_pb::VolumeConsolidateIndexRequest& req,
                                      volume_server_pb::VolumeConsolidateIndexResponse*);
  // Internal: Go's maintenance refusal, for gates the gRPC worker must pass first.
  grpc::Status MaintenanceGate(const kelp_internal::Nothing&, kelp_internal::Nothing*);
  // Internal: the mounted volumes a scrub without ids checks.
  grpc::Status ListVolumes(const kelp_internal::VolumeIdList&, kelp_internal::VolumeIdList* resp);
  // Needle and volume reads for maintenance (admin_reads.cc).
  grpc::Status VolumeSyncStatus(const volume_server_pb::VolumeSyncStatusRequest& req, volume_server_pb::VolumeSyncStatusResponse* resp);
  void ReadNeedleBlob(const volume_server_pb::ReadNeedleBlobRequest& req, volume_server_pb::ReadNeedleBlobResponse* resp, Finish finish);
  void ReadNeedleMeta(const volume_server_pb::ReadNeedleMetaRequest& req, volume_server_pb::ReadNeedleMetaResponse* resp, Finish finish);
  void ReadNeedleData(const kelp_internal::NeedleRead& req, kelp_internal::NeedleData* resp, Finish finish);
  // Vacuum (admin_vacuum.cc).
  grpc::Status VacuumVolumeCheck(const volume_server_pb::VacuumVolumeCheckRequest& req, volume_server_pb::VacuumVolumeCheckResponse* resp);
  void VacuumVolumeCompact(const volume_server_pb::VacuumVolumeCompactRequest& req, Progress progress, Finish finish);
  void VacuumVolumeCommit(const volume_server_pb::VacuumVolumeCommitRequest& req, volume_server_pb::VacuumVolumeCommitResponse* resp,
                          Finish finish);
  // admin_ec.cc
  void VolumeEcShardsGenerate(const volume_server_pb::VolumeEcShardsGenerateRequest& req, volume_server_pb::VolumeEcShardsGenerateResponse* resp,
                              Finish finish);
  // admin_ec_shards.cc: mounted EC volumes, their shards and journals.
  void VolumeEcShardsMount(const volume_server_pb::VolumeEcShardsMountRequest& req, volume_server_pb::VolumeEcShardsMountResponse*,
                           Finish finish);
  grpc::Status VolumeEcShardsUnmount(const volume_server_pb::VolumeEcShardsUnmountRequest& req,
                                     volume_server_pb::VolumeEcShardsUnmountResponse*);
  void VolumeEcShardsDelete(const volume_server_pb::VolumeEcShardsDeleteRequest& req, volume_server_pb::VolumeEcShardsDeleteResponse* resp,
                            Finish finish);
  void VolumeEcShardsInfo(const volume_server_pb::VolumeEcShardsInfoRequest& req, volume_server_pb::VolumeEcShardsInfoResponse* resp,
                          Finish finish);
  void VolumeEcBlobDelete(const volume_server_pb::VolumeEcBlobDeleteRequest& req, volume_server_pb::VolumeEcBlobDeleteResponse*,
                          Finish finish);
  // Internal: a mounted shard's descriptor for the gRPC worker's
  // VolumeEcShardRead, after Go's checks (generation, deleted needle).
  void OpenEcShardRead(const volume_server_pb::VolumeEcShardReadRequest& req, volume_server_pb::VolumeEcShardReadResponse* resp,
                       FinishFd finish);
  // VolumeNeedleStatus of an erasure-coded needle, from the shards mounted here.
  void EcNeedleStatus(const volume_server_pb::VolumeNeedleStatusRequest& req, volume_server_pb::VolumeNeedleStatusResponse* resp, Finish finish);
  // Internal, for ScrubEcVolume in the gRPC worker: the mounted EC volumes
  // (location by location), and one's layout with its .ecx read-only.
  grpc::Status ListEcVolumes(const kelp_internal::VolumeIdList&, kelp_internal::VolumeIdList* resp);
  void OpenEcIndex(const kelp_internal::EcNeedleLocate& req, kelp_internal::EcNeedleLocated* resp, FinishFd finish);
  // Internal: an HTTP worker's EC read starts here (the .ecx row and the layout).
  void LocateEcNeedle(const kelp_internal::EcNeedleLocate& req, kelp_internal::EcNeedleLocated* resp, Finish finish);
  // Internal: VolumeEcShardsCopy's target disk and files (admin_ec_copy.cc).
  void PlaceEcCopy(const kelp_internal::EcCopyPlace& req, kelp_internal::EcCopyPlaced* resp, Finish finish);
  void OpenEcCopyTarget(const kelp_internal::EcCopyOpen& req, kelp_internal::EcCopyOpened* resp, FinishFd finish);
  void FinishEcCopyTarget(const kelp_internal::EcCopyFinish& req, kelp_internal::EcCopyFinished*, Finish finish);
  // admin_ec_rebuild.cc: regenerating shards, and decoding back into a volume.
  void VolumeEcShardsRebuild(const volume_server_pb::VolumeEcShardsRebuildRequest& req, volume_server_pb::VolumeEcShardsRebuildResponse* resp,
                             Finish finish);
  void VolumeEcShardsToVolume(const volume_server_pb::VolumeEcShardsToVolumeRequest& req, volume_server_pb::VolumeEcShardsToVolumeResponse*,
                              Finish finish);
  // VolumeEcShardsToVolume with from_staged: adopts the .dat, .idx and .vif
  // another server decoded and pushed here as "<base><ext>.copying".
  void AdoptStagedVolume(const volume_server_pb::VolumeEcShardsToVolumeRequest& req, Finish finish);
  // Unloads every EC instance of `id` (no delta: Go does not announce these).
  void DropEcVolume(VolumeId id);
  // Go's automatic disk for EC files (disk_id 0), or locations().size().
  size_t ChooseEcLocation(const std::string& collection, VolumeId id) const;
  void VacuumVolumeCleanup(const volume_server_pb::VacuumVolumeCleanupRequest& req, volume_server_pb::VacuumVolumeCleanupResponse* resp,
                           Finish finish);
  // Copy sources (admin_copy.cc). Internal: opens a volume's file read-only
  // for the gRPC worker's CopyFile stream, after Go's checks.
  void OpenVolumeFile(const volume_server_pb::CopyFileRequest& req, volume_server_pb::CopyFileResponse* resp, FinishFd finish);
  void OpenEcVolumeFile(const volume_server_pb::CopyFileRequest& req, volume_server_pb::CopyFileResponse* resp, FinishFd finish);
  // Copy targets (admin_copy.cc): the gRPC worker pulls a volume from a peer
  // into files the supervisor creates and hands over write-only; the
  // supervisor checks the result and mounts it. Internal calls.
  void BeginVolumeCopy(const kelp_internal::VolumeCopyBegin& req, kelp_internal::VolumeCopyPlaced* resp, Finish finish);
  void OpenCopyTarget(const kelp_internal::VolumeCopyOpen& req, kelp_internal::VolumeCopyOpened* resp, FinishFd finish);
  void FinishVolumeCopy(const kelp_internal::VolumeCopyFinish& req, volume_server_pb::VolumeCopyResponse* resp, Finish finish);
  // Tails (admin_records.cc), internal: a volume's .dat or .idx for the gRPC
  // worker to read, and a needle a peer's tail sent, to append here.
  void OpenTailFile(const kelp_internal::VolumeFileOpen& req, kelp_internal::VolumeFileOpened* resp, FinishFd finish);
  void AppendTailed(const kelp_internal::TailedNeedle& req, kelp_internal::TailedNeedleWritten*, Finish finish);
  void WriteNeedleBlob(const volume_server_pb::WriteNeedleBlobRequest& req, volume_server_pb::WriteNeedleBlobResponse*, Finish finish);
  // `result` failed because a vacuum commit retired `v` after it was looked
  // up: the call is to start over with the volume now mounted under its id.
  bool RetiredForSuccessor(const std::shared_ptr<Volume>& v, const Status& result) const;
  // ReceiveFile (admin_receive.cc), internal: the file a push goes into, and its end.
  void OpenReceivedFile(const kelp_internal::ReceiveFileOpen& req, kelp_internal::ReceiveFileOpened* resp, FinishFd finish);
  void FinishReceivedFile(const kelp_internal::ReceiveFileFinish& req, kelp_internal::ReceiveFileFinished*, Finish finish);
 public:
  // gRPC worker `caller` is gone: the copies it was driving are undone, and
  // the files it was receiving removed. Other workers' are left alone.
  void AbortCopies(uint64_t caller);
  void AbortReceives(uint64_t caller);
 private:
  // Internal: what the gRPC worker tells the master when marking read-only.
  grpc::Status VolumeShortInfo(const volume_server_pb::VolumeStatusRequest& req, master_pb::VolumeShortInformationMessage* resp);

  // Adds a loaded or created volume to the Store and tells the hooks (unless
  // one with its id was mounted meanwhile).
  void Join(std::shared_ptr<Volume> v, size_t location);
  // Takes a mounted volume out of the Store, keeping its files; tells the hooks.
  void Unmount(VolumeId id);
  std::string StatePath() const;

  Store* store_;
  const ServerConfig* config_;
  AdminHooks hooks_;
  volume_server_pb::VolumeServerState state_;
  // SetState calls run one at a time, each seeing the version the last one wrote.
  bool state_writing_ = false;
  std::deque<std::function<void()>> state_waiting_;
  std::map<std::string, Handler> handlers_;
  BackgroundJobs* jobs_ = nullptr;
  JobWorkers* job_workers_ = nullptr;
  struct CopyJob {
    size_t location = 0;
    VolumeFileNames names;
    bool finishing = false;
    uint64_t owner = 0;  // the worker driving it
  };
  std::map<VolumeId, CopyJob> copies_;          // volumes being copied in
  std::map<std::string, uint64_t> receiving_;  // files ReceiveFile is writing, and the worker pushing each
  struct EcCopyFile {
    std::string final;  // the name a whole file takes ("": written in place)
    uint64_t owner = 0;
    bool keep_on_failure = false;
  };
  std::map<std::string, EcCopyFile> ec_copy_files_;  // files VolumeEcShardsCopy is pulling, by path
  // The worker whose request is being dispatched; valid only during
  // HandleAsync's synchronous part, so handlers read it on entry.
  uint64_t caller_ = 0;
};

}  // namespace kelp
