#include "worker-ec/ec_generate_job.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/rs_codec.h"
#include "ipc/build_id.h"
#include "ipc/job_channel.h"
#include "ipc/job_messages.h"
#include "storage/ec_encode.h"
#include "storage/fault_env.h"
#include "worker-ec/job_reply.h"

namespace kelp {
namespace {

constexpr uint64_t kProgressEvery = 64ull << 20;

}  // namespace

int RunEcGenerateJob(ipc::Channel& ch, ipc::Message& job) {
  Env* env = ProcessEnv("KELP_JOB_FAULTS");
  OwnedFds inputs;  // .idx, .dat, .ecx
  inputs.fds = std::move(job.fds);
  job.fds.clear();
  ipc::EcGenerateJob j;
  if (inputs.fds.size() != 3 || !job.As(&j)) return FailJob(ch, "malformed erasure coding job");
  j.build_id[sizeof j.build_id - 1] = '\0';
  if (std::strncmp(j.build_id, ipc::BuildId(), sizeof j.build_id) != 0) return FailJob(ch, "erasure coding job from a supervisor of another build");
  auto codec = RsCodec::Make(j.data_shards, j.parity_shards);
  if (!codec.ok()) return FailJob(ch, codec.status().message());
  const size_t total = size_t(codec.value().total());

  OwnedFds shards;
  if (!ReceiveJobFiles(ch, total, &shards)) return FailJob(ch, "the shard files did not come or came malformed");
  const int idx = inputs.fds[0], dat = inputs.fds[1], ecx = inputs.fds[2];
  // The shards bypass the page cache where the file system allows it: they
  // are written once in aligned 1 MiB pieces and not read back here, and
  // copying them through the cache costs more than the encode. The final
  // sync makes them durable either way.
  for (int fd : shards.fds) {
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && fcntl(fd, F_SETFL, flags | O_DIRECT) != 0) {
      KLOG_INFO("shard writes go through the page cache: %s", std::strerror(errno));
      break;  // one file system for all of them
    }
  }

  auto rows = WriteSortedIndex(idx, j.idx_end, int(j.offset_bytes), ecx, env);
  if (!rows.ok()) return FailJob(ch, rows.status().message());

  EcEncodeOptions options;
  options.bytes_per_second = j.bytes_per_second;
  ProgressReporter progress(ch, kProgressEvery);
  options.progress = [&](uint64_t encoded) { return progress(encoded); };
  auto crcs = EncodeUniformShards(dat, j.dat_end, j.block_size, codec.value(), shards.fds, options, env);
  if (progress.supervisor_gone()) return 1;
  if (!crcs.ok()) return FailJob(ch, crcs.status().message());
  // The shards reach the disk before the supervisor may call them done.
  for (size_t s = 0; s < total; s++)
    if (env->Fdatasync(shards.fds[s]) != 0) return FailJob(ch, "sync shard " + std::to_string(s) + ": " + std::strerror(errno));
  if (env->Fdatasync(ecx) != 0) return FailJob(ch, std::string("sync .ecx: ") + std::strerror(errno));

  for (size_t s = 0; s < total; s++)
    if (!SendShardChecksums(ch, uint32_t(s), crcs.value()[s])) return 1;
  return ipc::SendStructAndFlush(ch, ipc::MsgType::kEcGenerateDone, ipc::EcGenerateDone{rows.value()}) ? 0 : 1;
}

}  // namespace kelp
