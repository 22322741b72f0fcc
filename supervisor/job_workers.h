// Jobs in processes of their own: each job starts a kelp-worker-ec, hands it
// the job and its descriptors (ipc/job_messages.h) and waits for it on the
// calling thread (a background job's, never the event loop). The supervisor
// opens and creates every file itself; the job writes only the new outputs.
// A job that dies, stalls past a stop, lies or breaks the protocol fails
// alone: its outputs are never used, and the caller removes them.
#pragma once
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/ec_layout.h"
#include "storage/compaction.h"
#include "storage/ec_rebuild.h"
#include "storage/env.h"
#include "ipc/channel.h"

namespace kelp {

class JobWorkers {
 public:
  // `exe_fd`: the job worker's executable, opened once at start (as the
  // other workers' are), so a job always runs this build.
  explicit JobWorkers(int exe_fd) : exe_fd_(exe_fd) {}

  // A vacuum's copy (storage/compaction.h) in a job process. `options.progress`
  // gets the source offsets the job reports; it or `stop` returning true ends
  // the job (SIGKILL) as interrupted. The outcome has passed CheckCompactedCopy.
  Result<CompactionOutcome> Compact(const VolumeFileNames& names, int offset_bytes, const CompactionStart& plan, const CompactionOptions& options,
                                    Env* env, const std::function<bool()>& stop);

  // An erasure coding encode (storage/ec_encode.h) in a job process, on
  // descriptors the caller opened and keeps: the .idx and .dat read-only,
  // the new .ecx and shard files to write. Returns each shard's checksums
  // (one per kEcChecksumBlock); the caller checks the files' sizes.
  struct EcGeneratePlan {
    uint32_t volume_id = 0;
    int offset_bytes = 4;
    int data_shards = 10, parity_shards = 4;
    uint64_t idx_end = 0, dat_end = 0, block_size = 0;
    int64_t bytes_per_second = 0;
  };
  struct EcGenerateFiles {
    int idx = -1, dat = -1, ecx = -1;
    std::vector<int> shards;
  };
  Result<std::vector<std::vector<uint32_t>>> EcGenerate(const EcGeneratePlan& plan, const EcGenerateFiles& files,
                                                        const std::function<bool(uint64_t)>& progress, const std::function<bool()>& stop);

  // Regenerating shards in a job process: `present` (shard id -> read-only
  // descriptor) are read, `missing` (shard id -> new empty file) written,
  // all `shard_size` bytes. The caller keeps the descriptors. With a
  // checksum block, returns the checksums of every present and missing
  // shard, each list whole (storage/ec_rebuild.h).
  struct EcRebuildPlan {
    uint32_t volume_id = 0;
    int data_shards = 10, parity_shards = 4;
    uint64_t shard_size = 0;
    int64_t bytes_per_second = 0;
    uint64_t checksum_block = 0;
  };
  Result<EcShardChecksumLists> EcRebuild(const EcRebuildPlan& plan, const std::map<int, int>& present, const std::map<int, int>& missing,
                                         const std::function<bool()>& stop);
  // Decoding a .dat from the data shards in a job process.
  struct EcDecodePlan {
    uint32_t volume_id = 0;
    EcLayout layout;
    uint64_t shard_dat_size = 0, dat_size = 0;
    int64_t bytes_per_second = 0;
  };
  Status EcDecode(const EcDecodePlan& plan, const std::vector<int>& data_shards, int dat_fd, const std::function<bool()>& stop);

 private:
  // A rebuild or decode job ("ec <kind> job volume N"): launched, sent by
  // `send`, awaited until its kEcJobDone. kEcChecksums messages go to
  // `checksums` (without one, or when it says false, they break the job).
  Status RunShardJob(const std::string& kind, uint32_t volume_id, const std::function<bool(ipc::Channel&)>& send,
                     const std::function<bool()>& stop, const std::function<bool(const ipc::Message&)>& checksums = {});
  // Sends `fds` in kJobFiles messages, four at a time.
  static bool SendFiles(ipc::Channel& ch, const std::vector<int>& fds);
  struct Launched {
    pid_t pid;
    std::unique_ptr<ipc::Channel> ch;
  };
  // What a message other than kJobFailed means to the job's caller.
  enum class Step { kMore, kAnswer, kInterrupted, kBroken };
  using OnMessage = std::function<Step(const ipc::Message&)>;

  Result<pid_t> Spawn(int channel_fd, const std::string& title);
  Result<Launched> Launch(const std::string& title);
  // Sends the job; a job that cannot take it is killed.
  Status Send(Launched& job, const std::string& who, const std::function<bool(ipc::Channel&)>& send);
  // Reads the job's messages until its answer, then reaps it. A message with
  // descriptors, anything after the answer, or an exit other than 0 after it
  // fails the job; so do `stop` and kInterrupted, which kill it.
  Status Await(Launched& job, const std::string& who, const std::function<bool()>& stop, const OnMessage& on_message);

  int exe_fd_;
};

}  // namespace kelp
