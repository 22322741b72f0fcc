// Rebuild and decode jobs (ipc/job_messages.h EcRebuildJob, EcDecodeJob):
// the job reads the shards handed over read-only and writes only the outputs
// the supervisor created (storage/ec_rebuild.h), then answers kEcJobDone.
#pragma once
#include "ipc/channel.h"

namespace kelp {

int RunEcRebuildJob(ipc::Channel& ch, ipc::Message& job);
int RunEcDecodeJob(ipc::Channel& ch, ipc::Message& job);

}  // namespace kelp
