#include "worker-ec/compact_job.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/log.h"
#include "ipc/build_id.h"
#include "ipc/job_channel.h"
#include "ipc/job_messages.h"
#include "storage/compaction.h"
#include "storage/fault_env.h"
#include "worker-ec/job_reply.h"

namespace kelp {
namespace {

// Progress goes to the supervisor at most this often (in source bytes).
constexpr uint64_t kProgressEvery = 4ull << 20;

// Splits "a\0b\0c" into exactly `n` fields.
bool SplitFields(std::string_view rest, size_t n, std::vector<std::string>* out) {
  for (size_t i = 0; i < n; ++i) {
    const size_t nul = rest.find('\0');
    if ((nul == std::string_view::npos) != (i + 1 == n)) return false;
    out->emplace_back(rest.substr(0, nul));
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  }
  return true;
}

}  // namespace

int RunCompactJob(ipc::Channel& ch, ipc::Message& job) {
  Env* env = ProcessEnv("KELP_JOB_FAULTS");
  ipc::CompactJob j;
  CompactionFiles files(env);
  if (job.fds.size() == 4) {
    files.idx = job.fds[0], files.dat = job.fds[1], files.cpd = job.fds[2], files.cpx = job.fds[3];
    job.fds.clear();
  }
  if (files.cpx < 0 || !job.AsPrefix(&j) || job.payload.size() < sizeof j + j.super_block_length) return FailJob(ch, "malformed compaction job");
  j.build_id[sizeof j.build_id - 1] = '\0';
  if (std::strncmp(j.build_id, ipc::BuildId(), sizeof j.build_id) != 0) return FailJob(ch, "compaction job from a supervisor of another build");
  const std::string_view block = job.Tail(sizeof j).substr(0, j.super_block_length);
  std::vector<std::string> where;
  if (block.size() < kSuperBlockSize || !SplitFields(job.Tail(sizeof j + j.super_block_length), 3, &where))
    return FailJob(ch, "malformed compaction job");
  auto sb = ParseSuperBlockHeader(reinterpret_cast<const uint8_t*>(block.data()));
  if (!sb.ok()) return FailJob(ch, sb.status().message());
  CompactionStart plan{sb.value(), j.idx_end, j.dat_end, j.content_bytes, j.deleted_bytes};
  plan.super_block.extra = std::string(block.substr(kSuperBlockSize));
  VolumeFileNames names{where[0], where[1], where[2], j.volume_id};
  // Fault rules name files by path: tell the Env which paths these are.
  env->Adopt(files.idx, names.Idx());
  env->Adopt(files.dat, names.Dat());
  env->Adopt(files.cpd, names.Cpd());
  env->Adopt(files.cpx, names.Cpx());

  CompactionOptions options;
  options.bytes_per_second = j.bytes_per_second;
  options.now_s = j.now_s;
  ProgressReporter progress(ch, kProgressEvery);
  options.progress = [&](uint64_t processed) { return progress(processed); };
  auto out = CopyLiveNeedlesInto(files, names, int(j.offset_bytes), plan, options, env);
  if (progress.supervisor_gone()) return 1;
  if (!out.ok()) return FailJob(ch, out.status().message());
  const CompactionOutcome& o = out.value();
  if (!ipc::SendStructAndFlush(ch, ipc::MsgType::kCompactDone, ipc::CompactDone{o.copied, o.dropped, o.dropped_bytes, o.expired, o.cpd_size}))
    return 1;
  return 0;
}

}  // namespace kelp
