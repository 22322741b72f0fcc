#pragma once
#include "ipc/channel.h"

namespace kelp {

// One VolumeEcShardsGenerate encode (ipc/job_messages.h EcGenerateJob):
// writes the .ecx and the shards, sends each shard's checksums, then the
// answer. Returns the process's exit status.
int RunEcGenerateJob(ipc::Channel& ch, ipc::Message& job);

}  // namespace kelp
