// A vacuum's copy, run in the job worker: the live needles of a volume into
// .cpd/.cpx through the descriptors the supervisor handed over.
#pragma once
#include "ipc/channel.h"

namespace kelp {

// Runs the kCompactJob in `job` (which it consumes) and answers on `ch`:
// progress, then kCompactDone or kJobFailed. Returns the process exit code.
int RunCompactJob(ipc::Channel& ch, ipc::Message& job);

}  // namespace kelp
