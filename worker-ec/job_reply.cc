#include "worker-ec/job_reply.h"

#include "common/log.h"
#include "ipc/job_channel.h"
#include "ipc/job_messages.h"

namespace kelp {

int FailJob(ipc::Channel& ch, const std::string& why) {
  KLOG_ERROR("%s", why.c_str());
  ipc::SendAndFlush(ch, ipc::MsgType::kJobFailed, why);
  return 1;
}

bool ProgressReporter::operator()(uint64_t done) {
  if (done < sent_ + every_) return true;
  sent_ = done;
  if (!ipc::SendStructAndFlush(ch_, ipc::MsgType::kJobProgress, ipc::JobProgress{done})) gone_ = true;
  return !gone_;
}

}  // namespace kelp
