#include "worker-ec/job_reply.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

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

OwnedFds::~OwnedFds() {
  for (int fd : fds)
    if (fd >= 0) close(fd);
}

bool ReceiveJobFiles(ipc::Channel& ch, size_t count, OwnedFds* out) {
  constexpr int kFilesWithinMs = 10000;
  const size_t first = out->fds.size();
  while (out->fds.size() < first + count) {
    ipc::Message m;
    if (ipc::RecvWithin(ch, &m, kFilesWithinMs) != ipc::RecvResult::kMessage) return false;
    ipc::JobFiles f;
    const bool fits = m.type() == ipc::MsgType::kJobFiles && m.As(&f) && f.first == out->fds.size() - first && f.count == m.fds.size() &&
                      f.count > 0 && out->fds.size() + f.count <= first + count;
    for (int fd : m.fds) out->fds.push_back(fd);
    m.fds.clear();
    if (!fits) return false;
  }
  return true;
}

bool SendShardChecksums(ipc::Channel& ch, uint32_t shard, const std::vector<uint32_t>& list) {
  constexpr size_t kPerMessage = 4096;  // well inside one datagram
  for (size_t at = 0; at < list.size(); at += kPerMessage) {
    const size_t n = std::min(kPerMessage, list.size() - at);
    std::string tail(n * 4, '\0');
    for (size_t i = 0; i < n; i++) {
      const uint32_t v = list[at + i];
      const char le[4] = {char(v), char(v >> 8), char(v >> 16), char(v >> 24)};
      std::memcpy(&tail[i * 4], le, 4);
    }
    if (!ipc::SendStructAndFlush(ch, ipc::MsgType::kEcChecksums, ipc::EcChecksums{shard, uint32_t(n)}, tail)) return false;
  }
  return true;
}

}  // namespace kelp
