#include "worker-ec/ec_shards_job.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <map>
#include <vector>

#include "ipc/build_id.h"
#include "ipc/job_channel.h"
#include "ipc/job_messages.h"
#include "storage/ec_rebuild.h"
#include "storage/fault_env.h"
#include "worker-ec/job_reply.h"

namespace kelp {
namespace {

constexpr uint64_t kProgressEvery = 64ull << 20;

template <typename Job>
bool ReadJob(ipc::Message& job, Job* j) {
  if (!job.fds.empty() || !job.As(j)) return false;
  j->build_id[sizeof j->build_id - 1] = '\0';
  return std::strncmp(j->build_id, ipc::BuildId(), sizeof j->build_id) == 0;
}

}  // namespace

int RunEcRebuildJob(ipc::Channel& ch, ipc::Message& job) {
  Env* env = ProcessEnv("KELP_JOB_FAULTS");
  ipc::EcRebuildJob j;
  if (!ReadJob(job, &j)) return FailJob(ch, "malformed or foreign rebuild job");
  auto codec = RsCodec::Make(j.data_shards, j.parity_shards);
  if (!codec.ok()) return FailJob(ch, codec.status().message());
  const uint32_t valid = codec.value().total() == 32 ? ~0u : (1u << codec.value().total()) - 1;
  if ((j.present_mask & j.missing_mask) != 0 || (j.present_mask | j.missing_mask) & ~valid) return FailJob(ch, "malformed rebuild job");
  const size_t present_n = size_t(std::popcount(j.present_mask)), missing_n = size_t(std::popcount(j.missing_mask));
  OwnedFds files;
  if (!ReceiveJobFiles(ch, present_n + missing_n, &files)) return FailJob(ch, "the shard files did not come");
  std::map<int, int> present, missing;
  size_t at = 0;
  for (int s = 0; s < 32; ++s)
    if (j.present_mask & (1u << s)) present[s] = files.fds[at++];
  for (int s = 0; s < 32; ++s)
    if (j.missing_mask & (1u << s)) missing[s] = files.fds[at++];
  // As the encode's shards: written once in aligned 1 MiB pieces, synced at
  // the end, not read back here; the page cache would only be in the way.
  for (const auto& [shard, fd] : missing) {
    if (j.shard_size % 4096 != 0) break;  // a partial last page cannot go direct
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && fcntl(fd, F_SETFL, flags | O_DIRECT) != 0) break;  // one file system for all of them
  }
  EcJobOptions options;
  options.bytes_per_second = j.bytes_per_second;
  ProgressReporter progress(ch, kProgressEvery);
  options.progress = [&](uint64_t done) { return progress(done); };
  auto crcs = RebuildShards(codec.value(), present, missing, j.shard_size, j.checksum_block, options, env);
  if (progress.supervisor_gone()) return 1;
  if (!crcs.ok()) return FailJob(ch, crcs.status().message());
  for (const auto& [shard, list] : crcs.value())
    if (!SendShardChecksums(ch, uint32_t(shard), list)) return 1;
  return ipc::SendStructAndFlush(ch, ipc::MsgType::kEcJobDone, ipc::EcJobDone{j.shard_size}) ? 0 : 1;
}

int RunEcDecodeJob(ipc::Channel& ch, ipc::Message& job) {
  Env* env = ProcessEnv("KELP_JOB_FAULTS");
  ipc::EcDecodeJob j;
  if (!ReadJob(job, &j)) return FailJob(ch, "malformed or foreign decode job");
  if (j.data_shards == 0 || j.data_shards > 31 || j.large_block == 0 || j.small_block == 0) return FailJob(ch, "malformed decode job");
  OwnedFds files;
  if (!ReceiveJobFiles(ch, size_t(j.data_shards) + 1, &files)) return FailJob(ch, "the shard files did not come");
  const std::vector<int> data(files.fds.begin(), files.fds.begin() + j.data_shards);
  const EcLayout layout{int(j.data_shards), j.large_block, j.small_block};
  EcJobOptions options;
  options.bytes_per_second = j.bytes_per_second;
  ProgressReporter progress(ch, kProgressEvery);
  options.progress = [&](uint64_t done) { return progress(done); };
  Status s = WriteDatFromShards(layout, j.shard_dat_size, data, j.dat_size, files.fds.back(), options, env);
  if (progress.supervisor_gone()) return 1;
  if (!s.ok()) return FailJob(ch, s.message());
  return ipc::SendStructAndFlush(ch, ipc::MsgType::kEcJobDone, ipc::EcJobDone{j.dat_size}) ? 0 : 1;
}

}  // namespace kelp
