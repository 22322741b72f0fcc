// kelp-worker-ec: the job worker. The supervisor starts one per job (a
// vacuum's copy today; erasure coding later) with fd 3 connected to it, sends
// the job and its descriptors (ipc/job_messages.h), and reads the answer.
// It writes only output files the supervisor created for it, which nothing
// mounted reads; a crash of it fails that job alone.
#include <signal.h>
#include <sys/prctl.h>

#include "common/log.h"
#include "ipc/job_channel.h"
#include "ipc/worker_side.h"
#include "worker-ec/compact_job.h"
#include "worker-ec/ec_generate_job.h"
#include "worker-ec/ec_shards_job.h"

using namespace kelp;

int main(int, char**) {
  SetLogRole("job");
  if (!ipc::AdoptSupervisorChannel("kelp-worker-ec")) return 2;
  // A job never outlives the supervisor that waits for it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  ipc::Channel ch(ipc::kSupervisorFd);
  ipc::Message job;
  if (ipc::RecvWithin(ch, &job, -1) != ipc::RecvResult::kMessage) return 1;
  switch (job.type()) {
    case ipc::MsgType::kCompactJob:
      return RunCompactJob(ch, job);
    case ipc::MsgType::kEcGenerateJob:
      return RunEcGenerateJob(ch, job);
    case ipc::MsgType::kEcRebuildJob:
      return RunEcRebuildJob(ch, job);
    case ipc::MsgType::kEcDecodeJob:
      return RunEcDecodeJob(ch, job);
    default:
      job.CloseFds();
      ipc::SendAndFlush(ch, ipc::MsgType::kJobFailed, "unknown job");
      return 1;
  }
}
