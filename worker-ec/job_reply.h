// What every job says to the supervisor besides its own answer: progress,
// rate-limited, and the one failure message that ends a job.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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

// Sends one shard's checksums in kEcChecksums messages, in order; false
// when the supervisor is gone.
bool SendShardChecksums(ipc::Channel& ch, uint32_t shard, const std::vector<uint32_t>& list);

// Descriptors a job received, closed when the job ends.
struct OwnedFds {
  std::vector<int> fds;
  OwnedFds() = default;
  OwnedFds(const OwnedFds&) = delete;
  OwnedFds& operator=(const OwnedFds&) = delete;
  ~OwnedFds();
};

// Appends the `count` descriptors that follow a job, in kJobFiles messages
// numbered from out->fds.size(); false when they do not come (within ten
// seconds) or come malformed.
bool ReceiveJobFiles(ipc::Channel& ch, size_t count, OwnedFds* out);

}  // namespace kelp
