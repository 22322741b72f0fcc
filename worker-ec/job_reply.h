// What every job says to the supervisor besides its own answer: progress,
// rate-limited, and the one failure message that ends a job.
#pragma once
#include <cstdint>
#include <string>

#include "ipc/channel.h"

namespace kelp {

// Sends kJobFailed with `why` (and logs it); returns the job's exit status.
int FailJob(ipc::Channel& ch, const std::string& why);

// A progress callback for the storage loops: reports the bytes done at most
// every `every` bytes, and stops the work (false) once the supervisor is gone.
class ProgressReporter {
 public:
  ProgressReporter(ipc::Channel& ch, uint64_t every) : ch_(ch), every_(every) {}
  bool operator()(uint64_t done);
  bool supervisor_gone() const { return gone_; }

 private:
  ipc::Channel& ch_;
  uint64_t every_;
  uint64_t sent_ = 0;
  bool gone_ = false;
};

}  // namespace kelp
