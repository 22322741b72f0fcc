// The vacuum RPCs: Check on the loop from the counters, the copy in a job
// process waited for on a background thread (writes go on meanwhile), commit and cleanup on the
// volume's disk writer thread, serialised with its writes. Texts and codes
// are Go 4.48's (docs/vacuum.md).
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "common/go_error.h"
#include "common/log.h"
#include "storage/compaction.h"
#include "supervisor/admin_service.h"

namespace kelp {
namespace {

// Go 4.48: NOT_FOUND, the handler's prefix (if any), then the store's text.
grpc::Status NotFound(const std::string& prefix, VolumeId id, const char* during) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      prefix + "volume id " + std::to_string(id) + " is not found during " + during + ": volume not found");
}

// The prefixes Go 4.48 puts before every other error of these calls.
std::string CompactPrefix(VolumeId id) { return "compact volume " + std::to_string(id) + ": "; }
std::string CommitPrefix(VolumeId id) { return "commit compact volume " + std::to_string(id) + ": "; }
std::string CleanupPrefix(VolumeId id) { return "cleanup volume " + std::to_string(id) + ": "; }

// Stream messages come every 128 MiB of source offset, as Go's.
constexpr uint64_t kProgressStep = 128ull << 20;

// The 1-minute load average per CPU, as Go reports it; unset when unknown.
bool LoadAveragePerCpu(float* out) {
  double avg[1];
  if (getloadavg(avg, 1) != 1) return false;
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  *out = float(avg[0] / double(cpus));
  return true;
}

}  // namespace

grpc::Status AdminService::VacuumVolumeCheck(const volume_server_pb::VacuumVolumeCheckRequest& req,
                                             volume_server_pb::VacuumVolumeCheckResponse* resp) {
  // Go checks neither the white list nor maintenance mode here.
  Volume* v = store_->Find(req.volume_id());
  if (!v) return NotFound("", req.volume_id(), "check compact");
  resp->set_garbage_ratio(v->GarbageRatio());
  return grpc::Status::OK;
}

void AdminService::VacuumVolumeCompact(const volume_server_pb::VacuumVolumeCompactRequest& req, Progress progress, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  const VolumeId id = req.volume_id();
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(NotFound(CompactPrefix(id), id, "compact"));
  const uint64_t dat = v->dat_size(), idx = v->idx_size();
  const uint64_t need = std::max<uint64_t>(uint64_t(std::max<int64_t>(req.preallocate(), 0)), dat + idx);
  struct statvfs st;
  if (store_->env()->Statvfs(v->names().dir, &st) == 0) {
    const uint64_t free = uint64_t(st.f_bavail) * uint64_t(st.f_bsize);
    if (free < need)
      return finish(GoError(CompactPrefix(id) + "insufficient free space for compaction: need " + std::to_string(need) + " bytes (volume: " +
                            std::to_string(dat) + ", index: " + std::to_string(idx) + "), but only " + std::to_string(free) +
                            " bytes available"));
  }
  // A compaction or commit already running: Go answers OK having done nothing.
  if (!v->TryBeginCompaction()) return finish(grpc::Status::OK);
  CompactionOptions options;
  options.preallocate = req.preallocate();
  options.bytes_per_second = config_->compaction_bytes_per_second;
  auto result = std::make_shared<grpc::Status>();
  const int offset_bytes = store_->offset_bytes();
  Env* env = store_->env();
  BackgroundJobs* jobs = jobs_;
  JobWorkers* job_workers = job_workers_;
  auto work = [v, options, result, offset_bytes, env, jobs, job_workers, progress](const BackgroundJobs::Post& post) mutable {
    v->WriteBackAhead();  // BeginCopy syncs with the volume's writes held
    const CompactionStart start = v->BeginCopy();
    uint64_t threshold = kProgressStep;
    options.progress = [&](uint64_t processed) {
      if (jobs && jobs->stopping()) return false;
      if (processed > threshold) {
        threshold = processed + kProgressStep;
        volume_server_pb::VacuumVolumeCompactResponse msg;
        msg.set_processed_bytes(int64_t(processed));
        float load = 0;
        if (LoadAveragePerCpu(&load)) msg.set_load_avg_1m(load);
        post([progress, bytes = msg.SerializeAsString()] { progress(bytes); });
      }
      return true;
    };
    // In a job process when there is a job worker: its crash fails this copy alone.
    auto copied = job_workers ? job_workers->Compact(v->names(), offset_bytes, start, options, env, [jobs] { return jobs && jobs->stopping(); })
                              : CopyLiveNeedles(v->names(), offset_bytes, start, options, env);
    if (!copied.ok()) {
      v->AbandonCopy();  // a later commit must not pair these leftovers with this copy's start
      KLOG_ERROR("compact volume %u: %s", v->id(), copied.status().message().c_str());
      *result = GoError(CompactPrefix(v->id()) + copied.status().message());
      return;
    }
    const CompactionOutcome& o = copied.value();
    if (o.dropped) KLOG_WARN("vacuum volume %u: dropped %llu unreadable needle(s)", v->id(), static_cast<unsigned long long>(o.dropped));
    KLOG_INFO("compacted volume %u: %llu needle(s), %llu bytes", v->id(), static_cast<unsigned long long>(o.copied),
              static_cast<unsigned long long>(o.cpd_size));
  };
  auto done = [v, result, finish = std::move(finish)] {
    v->EndCompaction();
    finish(*result);
  };
  if (jobs_) return jobs_->Start(std::move(work), std::move(done));
  work([](std::function<void()> fn) { fn(); });
  done();
}

void AdminService::VacuumVolumeCommit(const volume_server_pb::VacuumVolumeCommitRequest& req,
                                      volume_server_pb::VacuumVolumeCommitResponse* resp, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  const VolumeId id = req.volume_id();
  if (jobs_ && jobs_->stopping())
    return finish(GoError(CommitPrefix(id) + "volume id " + std::to_string(id) + " skips compact because volume is stopping"));
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(NotFound(CommitPrefix(id), id, "commit compact"));
  const bool read_only = v->read_only();  // as it was before the commit
  resp->set_is_read_only(read_only);
  if (!v->TryBeginCompaction()) {
    // A compaction is running: Go answers OK having done nothing.
    resp->set_volume_size(v->dat_size());
    return finish(grpc::Status::OK);
  }
  struct Outcome {
    std::shared_ptr<Volume> next;
    Status status;
    bool offline = false;
  };
  auto outcome = std::make_shared<Outcome>();
  DiskWriter* writer = store_->WriterFor(id);
  auto swap = [this, v, id, outcome, resp, writer, finish = std::move(finish)]() mutable {
    OnWriter(
        writer,
        [v, writer, outcome] {
          auto next = v->CommitCompaction(&outcome->offline);
          if (!next.ok()) {
            outcome->status = next.status();
            return;
          }
          outcome->next = std::shared_ptr<Volume>(std::move(next.value()));
          // Before anything else this thread applies: later writes go to the new files.
          if (writer) writer->Serve(outcome->next);
        },
        [this, v, id, outcome, resp, finish = std::move(finish)] {
          v->EndCompaction();
          if (!outcome->next) {
            KLOG_ERROR("commit compaction of volume %u: %s", id, outcome->status.message().c_str());
            if (outcome->offline) {
              KLOG_ERROR("volume %u is offline until it is mounted again or the server restarts", id);
              Unmount(id);
            }
            return finish(GoError(CommitPrefix(id) + outcome->status.message()));
          }
          if (store_->Shared(id) == v) {
            store_->ReplaceCompacted(outcome->next);
            if (hooks_.volume_replaced) hooks_.volume_replaced(outcome->next.get());
          } else if (!store_->Shared(id)) {
            // Unmounted while committing: the writer must not keep serving the result.
            outcome->next->Retire();
            if (DiskWriter* w = store_->LocationWriter(store_->LocationOf(id))) w->Unserve(id);
          }
          resp->set_volume_size(outcome->next->dat_size());
          finish(grpc::Status::OK);
        });
  };
  // The swap holds the volume's writes while it syncs the old files: what
  // they have dirty is written back first, off the loop and with writes
  // flowing, so that the hold lasts about one short sync.
  if (!jobs_) return swap();
  jobs_->Start([v](const BackgroundJobs::Post&) { v->WriteBackAhead(); }, std::move(swap));
}

void AdminService::VacuumVolumeCleanup(const volume_server_pb::VacuumVolumeCleanupRequest& req, volume_server_pb::VacuumVolumeCleanupResponse*,
                                       Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  const VolumeId id = req.volume_id();
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(NotFound(CleanupPrefix(id), id, "cleaning up"));
  auto result = std::make_shared<Status>();
  Env* env = store_->env();
  const VolumeFileNames names = v->names();
  // On the writer: serialised with a commit's swap, never inside it.
  OnWriter(
      store_->WriterFor(id), [names, env, result] { *result = RemoveCompactionFiles(names, env); },
      [id, result, finish = std::move(finish)] { finish(result->ok() ? grpc::Status::OK : GoError(CleanupPrefix(id) + result->message())); });
}

}  // namespace kelp
