// Jobs in processes of their own: each job starts a kelp-worker-ec, hands it
// the job and its descriptors (ipc/job_messages.h) and waits for it on the
// calling thread (a background job's, never the event loop). The supervisor
// opens and creates every file itself; the job writes only the new outputs.
// A job that dies, stalls past a stop, lies or breaks the protocol fails
// alone: its outputs are never used, and the caller removes them.
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>

#include "common/status.h"
#include "storage/compaction.h"
#include "storage/env.h"

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

 private:
  Result<pid_t> Spawn(int channel_fd, const std::string& title);

  int exe_fd_;
};

}  // namespace kelp
