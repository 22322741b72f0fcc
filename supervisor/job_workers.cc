#include "supervisor/job_workers.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <algorithm>
#include <optional>

#include "common/log.h"
#include "ipc/build_id.h"
#include "ipc/job_channel.h"
#include "ipc/job_messages.h"
#include "ipc/worker_side.h"
#include "storage/ec_encode.h"

extern char** environ;

namespace kelp {
namespace {

// How often a waiting job checks `stop` when the worker says nothing.
constexpr int kStopPollMs = 200;
// How long a job that gave its answer has to exit.
constexpr int kExitGraceMs = 5000;

// How a job process ended, in words.
std::string ExitText(int status) {
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// Kills and reaps the job (harmless when it has exited: it is a zombie
// until reaped, so the pid is still its own).
int KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Reaps a job that is ending on its own: its channel closes before its exit
// is complete (destructors, the sanitizers' exit checks), so it gets
// `grace_ms` to finish before it is killed.
int ReapWithin(pid_t pid, int grace_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return status;
    usleep(10000);
  }
  return KillAndReap(pid);
}
}  // namespace

Result<pid_t> JobWorkers::Spawn(int channel_fd, const std::string& title) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // fd 3 is the channel; everything else the supervisor holds is close-on-exec.
  posix_spawn_file_actions_adddup2(&actions, channel_fd, ipc::kSupervisorFd);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  const std::string exe = "/proc/self/fd/" + std::to_string(exe_fd_);
  char* argv[] = {const_cast<char*>(title.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &actions, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::IOError("start job worker: " + std::string(std::strerror(rc)));
  return pid;
}

Result<JobWorkers::Launched> JobWorkers::Launch(const std::string& title) {
  int pair[2];
  if (!ipc::Channel::Pair(pair)) return Status::IOError("job channel: " + std::string(std::strerror(errno)));
  // The child's end must not sit at fd 3 already: dup2 onto itself would
  // keep it close-on-exec.
  if (pair[1] == ipc::kSupervisorFd) {
    const int moved = fcntl(pair[1], F_DUPFD_CLOEXEC, ipc::kSupervisorFd + 1);
    close(pair[1]);
    pair[1] = moved;
  }
  auto ch = std::make_unique<ipc::Channel>(pair[0]);
  auto pid = pair[1] >= 0 ? Spawn(pair[1], title) : Result<pid_t>(Status::IOError("job channel: " + std::string(std::strerror(errno))));
  if (pair[1] >= 0) close(pair[1]);
  if (!pid.ok()) return pid.status();
  return Launched{pid.value(), std::move(ch)};
}

Status JobWorkers::Await(Launched& job, const std::string& who, const std::function<bool()>& stop, const OnMessage& on_message) {
  // Until the job's last message: any number of others, then one answer.
  bool answered = false;
  std::string failure;
  for (;;) {
    if (stop && stop()) {
      KillAndReap(job.pid);
      return Status::IOError("interrupted");
    }
    ipc::Message m;
    const ipc::RecvResult r = ipc::RecvWithin(*job.ch, &m, kStopPollMs);
    if (r == ipc::RecvResult::kEmpty) continue;
    if (r != ipc::RecvResult::kMessage) break;  // the job is gone
    const bool has_fds = !m.fds.empty();
    m.CloseFds();
    if (has_fds) {
      failure = "broke the job protocol";
      break;
    }
    if (m.type() == ipc::MsgType::kJobFailed) {
      failure = m.payload.empty() ? "failed" : m.payload;
      break;
    }
    const Step step = on_message(m);
    if (step == Step::kMore) continue;
    if (step == Step::kInterrupted) {
      KillAndReap(job.pid);
      return Status::IOError("interrupted");
    }
    if (step == Step::kAnswer) answered = true;
    else failure = "broke the job protocol";
    break;
  }
  // A job that answered, or hung up, exits at once: it gets a moment to
  // finish, then is killed. Anything it sends after its answer is a lie.
  if (answered || !failure.empty()) {
    ipc::Message rest;
    for (int waited = 0; waited < kExitGraceMs; waited += kStopPollMs) {
      const ipc::RecvResult r = ipc::RecvWithin(*job.ch, &rest, kStopPollMs);
      rest.CloseFds();
      if (r == ipc::RecvResult::kClosed || r == ipc::RecvResult::kError) break;
      if (r == ipc::RecvResult::kMessage) {
        failure = "broke the job protocol";
        break;
      }
    }
  }
  const int status = failure == "broke the job protocol" ? KillAndReap(job.pid) : ReapWithin(job.pid, kExitGraceMs);
  if (!failure.empty()) {
    KLOG_ERROR("%s: %s", who.c_str(), failure.c_str());
    return Status::IOError(failure);
  }
  if (!answered || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string why = who + " " + ExitText(status) + (answered ? " after it answered" : "");
    KLOG_ERROR("%s", why.c_str());
    return Status::IOError(why);
  }
  return Status::Ok();
}

Status JobWorkers::Send(Launched& job, const std::string& who, const std::function<bool(ipc::Channel&)>& send) {
  if (send(*job.ch)) return Status::Ok();
  const int status = KillAndReap(job.pid);
  return Status::IOError(who + " " + ExitText(status) + " before it took the job");
}

Result<CompactionOutcome> JobWorkers::Compact(const VolumeFileNames& names, int offset_bytes, const CompactionStart& plan,
                                              const CompactionOptions& options, Env* env, const std::function<bool()>& stop) {
  auto files = OpenCompactionFiles(names, options.preallocate, env);
  if (!files.ok()) return files.status();
  auto launched = Launch("kelp-volume: compact job volume " + std::to_string(names.id));
  if (!launched.ok()) return launched.status();
  Launched& job = launched.value();
  const std::string who = "compaction job of volume " + std::to_string(names.id) + " (pid " + std::to_string(job.pid) + ")";
  KLOG_INFO("started %s", who.c_str());

  ipc::CompactJob request{};
  std::strncpy(request.build_id, ipc::BuildId(), sizeof request.build_id - 1);
  request.volume_id = names.id;
  request.offset_bytes = uint8_t(offset_bytes);
  request.idx_end = plan.idx_end;
  request.dat_end = plan.dat_end;
  request.content_bytes = plan.content_bytes;
  request.deleted_bytes = plan.deleted_bytes;
  request.bytes_per_second = options.bytes_per_second;
  request.now_s = options.now_s ? options.now_s : uint64_t(std::time(nullptr));
  const std::string block = plan.super_block.Encode();
  request.super_block_length = uint32_t(block.size());
  std::string tail = block;
  for (const std::string* part : {&names.dir, &names.idx_dir}) tail += *part + '\0';
  tail += names.collection;
  const int fds[4] = {files.value().idx, files.value().dat, files.value().cpd, files.value().cpx};
  if (Status s = Send(job, who, [&](ipc::Channel& ch) { return ipc::SendStructAndFlush(ch, ipc::MsgType::kCompactJob, request, tail, fds, 4); });
      !s.ok())
    return s;

  std::optional<ipc::CompactDone> done;
  Status s = Await(job, who, stop, [&](const ipc::Message& m) {
    ipc::JobProgress p;
    ipc::CompactDone d;
    if (m.type() == ipc::MsgType::kJobProgress && m.As(&p)) return options.progress && !options.progress(p.processed) ? Step::kInterrupted : Step::kMore;
    if (m.type() == ipc::MsgType::kCompactDone && m.As(&d)) {
      done = d;
      return Step::kAnswer;
    }
    return Step::kBroken;
  });
  if (!s.ok()) return s;
  CompactionOutcome out{done->copied, done->dropped, done->dropped_bytes, done->expired, done->cpd_size};
  if (Status checked = CheckCompactedCopy(names, offset_bytes, plan, out, env); !checked.ok()) {
    KLOG_ERROR("%s: %s", who.c_str(), checked.message().c_str());
    return checked;
  }
  return out;
}

namespace {

// Adds one kEcChecksums message to `lists`; false when it is malformed, names
// a shard not `expected`, or runs past `per_shard` values for its shard.
bool TakeChecksums(const ipc::Message& m, const std::function<bool(uint32_t)>& expected, uint64_t per_shard, EcShardChecksumLists* lists) {
  ipc::EcChecksums c;
  if (!m.AsPrefix(&c) || !expected(c.shard) || c.count == 0 || m.payload.size() != sizeof c + size_t(c.count) * 4) return false;
  std::vector<uint32_t>& list = (*lists)[int(c.shard)];
  if (list.size() + c.count > per_shard) return false;
  const auto* le = reinterpret_cast<const uint8_t*>(m.payload.data() + sizeof c);
  for (uint32_t i = 0; i < c.count; i++, le += 4) list.push_back(uint32_t(le[0]) | uint32_t(le[1]) << 8 | uint32_t(le[2]) << 16 | uint32_t(le[3]) << 24);
  return true;
}

}  // namespace

Result<std::vector<std::vector<uint32_t>>> JobWorkers::EcGenerate(const EcGeneratePlan& plan, const EcGenerateFiles& files,
                                                                  const std::function<bool(uint64_t)>& progress, const std::function<bool()>& stop) {
  const size_t total = size_t(plan.data_shards + plan.parity_shards);
  if (files.shards.size() != total) return Status::Invalid("erasure coding job without its shard files");
  auto launched = Launch("kelp-volume: ec encode job volume " + std::to_string(plan.volume_id));
  if (!launched.ok()) return launched.status();
  Launched& job = launched.value();
  const std::string who = "erasure coding job of volume " + std::to_string(plan.volume_id) + " (pid " + std::to_string(job.pid) + ")";
  KLOG_INFO("started %s", who.c_str());

  ipc::EcGenerateJob request{};
  std::strncpy(request.build_id, ipc::BuildId(), sizeof request.build_id - 1);
  request.volume_id = plan.volume_id;
  request.offset_bytes = uint8_t(plan.offset_bytes);
  request.data_shards = uint8_t(plan.data_shards);
  request.parity_shards = uint8_t(plan.parity_shards);
  request.idx_end = plan.idx_end;
  request.dat_end = plan.dat_end;
  request.block_size = plan.block_size;
  request.bytes_per_second = plan.bytes_per_second;
  const int inputs[3] = {files.idx, files.dat, files.ecx};
  Status sent = Send(job, who, [&](ipc::Channel& ch) {
    return ipc::SendStructAndFlush(ch, ipc::MsgType::kEcGenerateJob, request, {}, inputs, 3) && SendFiles(ch, files.shards);
  });
  if (!sent.ok()) return sent;

  // Every shard's checksums before the answer; whether all came is checked after it.
  const uint64_t per_shard = (plan.block_size + kEcChecksumBlock - 1) / kEcChecksumBlock;
  EcShardChecksumLists lists;
  Status s = Await(job, who, stop, [&](const ipc::Message& m) {
    ipc::JobProgress p;
    ipc::EcGenerateDone d;
    if (m.type() == ipc::MsgType::kJobProgress && m.As(&p)) return progress && !progress(p.processed) ? Step::kInterrupted : Step::kMore;
    if (m.type() == ipc::MsgType::kEcChecksums)
      return TakeChecksums(m, [&](uint32_t shard) { return shard < total; }, per_shard, &lists) ? Step::kMore : Step::kBroken;
    if (m.type() == ipc::MsgType::kEcGenerateDone && m.As(&d)) return Step::kAnswer;
    return Step::kBroken;
  });
  if (!s.ok()) return s;
  std::vector<std::vector<uint32_t>> crcs(total);
  for (size_t i = 0; i < total; i++) {
    crcs[i] = std::move(lists[int(i)]);
    if (crcs[i].size() != per_shard) {
      KLOG_ERROR("%s: shard %zu has %zu checksums, expected %llu", who.c_str(), i, crcs[i].size(), (unsigned long long)per_shard);
      return Status::IOError("broke the job protocol");
    }
  }
  return crcs;
}

bool JobWorkers::SendFiles(ipc::Channel& ch, const std::vector<int>& fds) {
  for (size_t at = 0; at < fds.size(); at += ipc::kMaxFdsPerMessage) {
    const uint32_t n = uint32_t(std::min<size_t>(ipc::kMaxFdsPerMessage, fds.size() - at));
    if (!ipc::SendStructAndFlush(ch, ipc::MsgType::kJobFiles, ipc::JobFiles{uint32_t(at), n}, {}, &fds[at], int(n))) return false;
  }
  return true;
}

Status JobWorkers::RunShardJob(const std::string& kind, uint32_t volume_id, const std::function<bool(ipc::Channel&)>& send,
                               const std::function<bool()>& stop, const std::function<bool(const ipc::Message&)>& checksums) {
  auto launched = Launch("kelp-volume: ec " + kind + " job volume " + std::to_string(volume_id));
  if (!launched.ok()) return launched.status();
  Launched& job = launched.value();
  const std::string who = "erasure coding " + kind + " of volume " + std::to_string(volume_id) + " (pid " + std::to_string(job.pid) + ")";
  KLOG_INFO("started %s", who.c_str());
  if (Status sent = Send(job, who, send); !sent.ok()) return sent;
  return Await(job, who, stop, [&](const ipc::Message& m) {
    ipc::JobProgress p;
    ipc::EcJobDone d;
    if (m.type() == ipc::MsgType::kJobProgress && m.As(&p)) return Step::kMore;
    if (m.type() == ipc::MsgType::kEcChecksums) return checksums && checksums(m) ? Step::kMore : Step::kBroken;
    if (m.type() == ipc::MsgType::kEcJobDone && m.As(&d)) return Step::kAnswer;
    return Step::kBroken;
  });
}

Result<EcShardChecksumLists> JobWorkers::EcRebuild(const EcRebuildPlan& plan, const std::map<int, int>& present,
                                                   const std::map<int, int>& missing, const std::function<bool()>& stop) {
  ipc::EcRebuildJob request{};
  std::strncpy(request.build_id, ipc::BuildId(), sizeof request.build_id - 1);
  request.volume_id = plan.volume_id;
  request.data_shards = uint8_t(plan.data_shards);
  request.parity_shards = uint8_t(plan.parity_shards);
  std::vector<int> fds;
  for (const auto& [shard, fd] : present) request.present_mask |= 1u << shard, fds.push_back(fd);
  for (const auto& [shard, fd] : missing) request.missing_mask |= 1u << shard, fds.push_back(fd);
  request.shard_size = plan.shard_size;
  request.bytes_per_second = plan.bytes_per_second;
  request.checksum_block = plan.checksum_block;
  const uint32_t involved = request.present_mask | request.missing_mask;
  const uint64_t per_shard = plan.checksum_block ? (plan.shard_size + plan.checksum_block - 1) / plan.checksum_block : 0;
  EcShardChecksumLists lists;
  Status s = RunShardJob(
      "rebuild", plan.volume_id, [&](ipc::Channel& ch) { return ipc::SendStructAndFlush(ch, ipc::MsgType::kEcRebuildJob, request) && SendFiles(ch, fds); },
      stop, [&](const ipc::Message& m) { return TakeChecksums(m, [&](uint32_t shard) { return shard < 32 && (involved >> shard & 1); }, per_shard, &lists); });
  if (!s.ok()) return s;
  // Every shard read or written has its whole list, or none was asked for.
  for (int shard = 0; shard < 32; ++shard) {
    const size_t got = lists.count(shard) ? lists[shard].size() : 0;
    if ((involved >> shard & 1) && got != per_shard) {
      KLOG_ERROR("rebuild job of volume %u: shard %d has %zu checksums, expected %llu", plan.volume_id, shard, got, (unsigned long long)per_shard);
      return Status::IOError("broke the job protocol");
    }
  }
  return lists;
}

Status JobWorkers::EcDecode(const EcDecodePlan& plan, const std::vector<int>& data_shards, int dat_fd, const std::function<bool()>& stop) {
  ipc::EcDecodeJob request{};
  std::strncpy(request.build_id, ipc::BuildId(), sizeof request.build_id - 1);
  request.volume_id = plan.volume_id;
  request.data_shards = uint8_t(plan.layout.data_shards);
  request.large_block = plan.layout.large_block;
  request.small_block = plan.layout.small_block;
  request.shard_dat_size = plan.shard_dat_size;
  request.dat_size = plan.dat_size;
  request.bytes_per_second = plan.bytes_per_second;
  std::vector<int> fds = data_shards;
  fds.push_back(dat_fd);
  return RunShardJob("decode", plan.volume_id, [&](ipc::Channel& ch) {
    return ipc::SendStructAndFlush(ch, ipc::MsgType::kEcDecodeJob, request) && SendFiles(ch, fds);
  }, stop);
}

}  // namespace kelp
