// Erasure coding, the encode (Go 4.48's VolumeEcShardsGenerate): the
// supervisor takes a snapshot of the volume on its writer thread (the .idx
// and .dat sizes between two batches, and read-only descriptors), creates the
// outputs, and a job process writes the .ecx and the shards from those
// descriptors while the volume goes on taking writes. The supervisor then
// checks the outputs' sizes and writes the .ecsum and the .vif. Nothing is
// mounted as EC; a failure removes every output. Texts are Go 4.48's.
#include <fcntl.h>
#include <sodium.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/ec_layout.h"
#include "common/file_util.h"
#include "common/go_error.h"
#include "common/idx_entry.h"
#include "common/log.h"
#include "common/rs_codec.h"
#include "common/volume_info.h"
#include "storage/ec_encode.h"
#include "supervisor/admin_service.h"
#include "common/ec_format/ec_checksums.h"

namespace kelp {
namespace {

// The snapshot the encode reads: sizes taken between two writer batches,
// and descriptors opened then (a vacuum commit later does not move them).
struct Snapshot {
  bool retired = false;
  int idx = -1, dat = -1;
  int error = 0;
  std::string failed_path;
  uint64_t idx_end = 0, dat_end = 0;
};

}  // namespace

void AdminService::VolumeEcShardsGenerate(const volume_server_pb::VolumeEcShardsGenerateRequest& req,
                                          volume_server_pb::VolumeEcShardsGenerateResponse*, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  const VolumeId id = req.volume_id();
  std::shared_ptr<Volume> v = store_->Shared(id);
  if (!v) return finish(GoError("volume " + std::to_string(id) + " not found"));
  if (v->collection() != req.collection())
    return finish(GoError("existing collection:" + v->collection() + " unexpected input: " + req.collection()));
  Env* env = store_->env();
  const VolumeFileNames names = v->names();

  // The ratio: an existing .vif's, when valid, else 10+4.
  int data = kDefaultEcData, parity = kDefaultEcParity;
  bool exists = false;
  if (auto info = LoadVolumeInfo(names.Vif(), &exists); exists && info.ok() && info.value().ec_shard_config) {
    const EcShardConfigInfo& c = *info.value().ec_shard_config;
    if (c.data_shards > 0 && c.parity_shards > 0 && c.data_shards + c.parity_shards <= uint32_t(kMaxEcShards)) {
      data = int(c.data_shards), parity = int(c.parity_shards);
    } else {
      KLOG_WARN("invalid EC config in .vif for volume %u (data=%u, parity=%u), using defaults", id, c.data_shards, c.parity_shards);
    }
  }

  auto snap = std::make_shared<Snapshot>();
  OnWriter(
      store_->WriterFor(id),
      [v, snap, env, names] {
        if ((snap->retired = v->retired())) return;
        snap->idx_end = v->idx_size();
        snap->dat_end = v->dat_size();
        for (auto [fd, path] : {std::pair{&snap->idx, names.Idx()}, std::pair{&snap->dat, names.Dat()}}) {
          *fd = env->Open(path, O_RDONLY, 0);
          if (*fd < 0 && !snap->error) snap->error = errno, snap->failed_path = path;
        }
      },
      [this, req, v, snap, env, names, data, parity, finish = std::move(finish)]() mutable {
        if (snap->retired) return VolumeEcShardsGenerate(req, nullptr, std::move(finish));  // a vacuum commit swapped it: again
        if (snap->error) {
          for (int fd : {snap->idx, snap->dat})
            if (fd >= 0) env->Close(fd);
          return finish(GoError("open " + snap->failed_path + ": " + GoErrno(snap->error)));
        }
        DropEcVolume(names.id);  // a previous encode's shards mounted here go with their files (Go: unannounced)
        struct Job {
          Snapshot snap;
          grpc::Status result;
        };
        auto job = std::make_shared<Job>(Job{*snap, grpc::Status::OK});
        std::vector<VolumeFileNames> everywhere;  // the volume's names in every location
        for (size_t i = 0; i < store_->locations().size(); i++) everywhere.push_back(store_->NamesIn(i, names.collection, names.id));
        const int offset_bytes = v->offset_bytes();
        const uint8_t version = v->version();
        const uint32_t ttl_seconds = v->super_block().ttl.Minutes() * 60;
        JobWorkers* job_workers = job_workers_;
        BackgroundJobs* jobs = jobs_;
        const int64_t throttle = config_->maintenance_bytes_per_second;
        auto work = [job, env, names, everywhere, data, parity, offset_bytes, version, ttl_seconds, job_workers, jobs, throttle](const BackgroundJobs::Post&) {
          Fd idx(env, job->snap.idx), dat(env, job->snap.dat);
          const VolumeId id = names.id;
          for (const VolumeFileNames& there : everywhere)
            if (Status s = RemoveEcFiles(env, there); !s.ok()) {
              job->result = GoError("wipe stale EC artifacts for volume " + std::to_string(id) + " on " + there.dir + ": " + s.message());
              return;
            }
          const std::string data_base = names.Base(names.dir), idx_base = names.Base(names.idx_dir);
          const int total = data + parity;
          std::vector<std::string> outputs;
          for (int i = 0; i < total; i++) outputs.push_back(data_base + EcShardExt(i));
          outputs.push_back(idx_base + ".ecx");
          bool keep = false;
          std::vector<int> fds;
          auto cleanup = [&] {
            for (int fd : fds)
              if (fd >= 0) env->Close(fd);
            if (keep) return;
            for (const std::string& path : outputs) env->Unlink(path);
            env->Unlink(data_base + ".ecsum");
          };
          struct Guard {
            std::function<void()> fn;
            ~Guard() { fn(); }
          } guard{cleanup};

          for (const std::string& path : outputs) {
            const int fd = env->Open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) {
              job->result = GoError("WriteEcFiles " + data_base + ": failed to create " + path + ": " + GoErrno(errno));
              return;
            }
            fds.push_back(fd);
          }
          const uint64_t block = UniformEcBlockSize(job->snap.dat_end, data);
          JobWorkers::EcGeneratePlan plan;
          plan.volume_id = id;
          plan.offset_bytes = offset_bytes;
          plan.data_shards = data, plan.parity_shards = parity;
          plan.idx_end = job->snap.idx_end, plan.dat_end = job->snap.dat_end, plan.block_size = block;
          plan.bytes_per_second = throttle;
          const std::vector<int> shard_fds(fds.begin(), fds.begin() + total);
          auto stop = [jobs] { return jobs && jobs->stopping(); };
          // Always in a job process: its crash fails this call alone.
          auto crcs = job_workers ? job_workers->EcGenerate(plan, JobWorkers::EcGenerateFiles{idx.get(), dat.get(), fds[size_t(total)], shard_fds},
                                                            [stop](uint64_t) { return !stop(); }, stop)
                                  : Result<std::vector<std::vector<uint32_t>>>(Status::Unavailable("no job worker"));
          if (!crcs.ok()) {
            job->result = GoError("WriteEcFiles " + data_base + ": " + crcs.status().message());
            return;
          }
          // What the job wrote: every shard `block` bytes, whole .ecx rows.
          for (int i = 0; i <= total; i++) {
            struct stat st;
            const uint64_t row = uint64_t(IdxEntrySize(offset_bytes));
            if (env->Fstat(fds[size_t(i)], &st) != 0 ||
                (i < total ? uint64_t(st.st_size) != block : uint64_t(st.st_size) % row != 0 || uint64_t(st.st_size) > job->snap.idx_end)) {
              job->result = GoError("WriteEcFiles " + data_base + ": " + outputs[size_t(i)] + " is not what the encode should have written");
              return;
            }
          }
          EcShardConfigInfo config{uint32_t(data), uint32_t(parity), 0, int64_t(block)};
          std::string uuid(16, '\0');
          randombytes_buf(uuid.data(), uuid.size());
          // Best effort, as Go's: without it the shards are only unprotected.
          if (Status s = EnvWriteFileAtomically(env, data_base + ".ecsum", EncodeEcsum(config, uint32_t(kEcChecksumBlock), block, crcs.value(), uuid));
              !s.ok())
            KLOG_WARN("failed to write EC bitrot sidecar for volume %u: %s", id, s.message().c_str());
          VolumeInfo info;
          info.version = version;
          info.dat_file_size = int64_t(job->snap.dat_end);
          info.expire_at_sec = ttl_seconds ? uint64_t(std::time(nullptr)) + ttl_seconds : 0;
          timespec now;
          clock_gettime(CLOCK_REALTIME, &now);
          config.encode_ts_ns = int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
          info.ec_shard_config = config;
          if (Status s = EnvWriteFileAtomically(env, names.Vif(), EncodeVolumeInfo(info)); !s.ok()) {
            job->result = GoError("SaveVolumeInfo " + names.Vif() + ": " + s.message());
            return;
          }
          keep = true;
          KLOG_INFO("erasure coded volume %u: %d+%d shards of %llu bytes", id, data, parity, static_cast<unsigned long long>(block));
        };
        auto done = [job, finish = std::move(finish)] { finish(job->result); };
        if (jobs_) return jobs_->Start(std::move(work), std::move(done));
        work([](std::function<void()> fn) { fn(); });
        done();
      });
}

}  // namespace kelp
