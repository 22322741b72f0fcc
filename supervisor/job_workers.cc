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
#include <optional>

#include "common/log.h"
#include "ipc/build_id.h"
#include "ipc/job_channel.h"
#include "ipc/job_messages.h"
#include "ipc/worker_side.h"

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

Result<CompactionOutcome> JobWorkers::Compact(const VolumeFileNames& names, int offset_bytes, const CompactionStart& plan,
                                              const CompactionOptions& options, Env* env, const std::function<bool()>& stop) {
  auto files = OpenCompactionFiles(names, options.preallocate, env);
  if (!files.ok()) return files.status();
  int pair[2];
  if (!ipc::Channel::Pair(pair)) return Status::IOError("job channel: " + std::string(std::strerror(errno)));
  // The child's end must not sit at fd 3 already: dup2 onto itself would
  // keep it close-on-exec.
  if (pair[1] == ipc::kSupervisorFd) {
    const int moved = fcntl(pair[1], F_DUPFD_CLOEXEC, ipc::kSupervisorFd + 1);
    close(pair[1]);
    pair[1] = moved;
  }
  ipc::Channel ch(pair[0]);
  const std::string title = "kelp-volume: compact job volume " + std::to_string(names.id);
  auto pid = pair[1] >= 0 ? Spawn(pair[1], title) : Result<pid_t>(Status::IOError("job channel: " + std::string(std::strerror(errno))));
  if (pair[1] >= 0) close(pair[1]);
  if (!pid.ok()) return pid.status();
  const std::string who = "compaction job of volume " + std::to_string(names.id) + " (pid " + std::to_string(pid.value()) + ")";
  KLOG_INFO("started %s", who.c_str());

  ipc::CompactJob job{};
  std::strncpy(job.build_id, ipc::BuildId(), sizeof job.build_id - 1);
  job.volume_id = names.id;
  job.offset_bytes = uint8_t(offset_bytes);
  job.idx_end = plan.idx_end;
  job.dat_end = plan.dat_end;
  job.content_bytes = plan.content_bytes;
  job.deleted_bytes = plan.deleted_bytes;
  job.bytes_per_second = options.bytes_per_second;
  job.now_s = options.now_s ? options.now_s : uint64_t(std::time(nullptr));
  const std::string block = plan.super_block.Encode();
  job.super_block_length = uint32_t(block.size());
  std::string tail = block;
  for (const std::string* part : {&names.dir, &names.idx_dir}) tail += *part + '\0';
  tail += names.collection;
  const int fds[4] = {files.value().idx, files.value().dat, files.value().cpd, files.value().cpx};
  if (!ipc::SendStructAndFlush(ch, ipc::MsgType::kCompactJob, job, tail, fds, 4)) {
    const int status = KillAndReap(pid.value());
    return Status::IOError(who + " " + ExitText(status) + " before it took the job");
  }

  // Until the job's last message: progress, then one answer.
  std::optional<ipc::CompactDone> done;
  std::string failure;
  for (;;) {
    if (stop && stop()) {
      KillAndReap(pid.value());
      return Status::IOError("interrupted");
    }
    ipc::Message m;
    const ipc::RecvResult r = ipc::RecvWithin(ch, &m, kStopPollMs);
    if (r == ipc::RecvResult::kEmpty) continue;
    if (r != ipc::RecvResult::kMessage) break;  // the job is gone
    const bool has_fds = !m.fds.empty();
    m.CloseFds();
    ipc::JobProgress p;
    ipc::CompactDone d;
    if (!has_fds && m.type() == ipc::MsgType::kJobProgress && m.As(&p)) {
      if (options.progress && !options.progress(p.processed)) {
        KillAndReap(pid.value());
        return Status::IOError("interrupted");
      }
      continue;
    }
    if (!has_fds && m.type() == ipc::MsgType::kCompactDone && m.As(&d)) done = d;
    else if (!has_fds && m.type() == ipc::MsgType::kJobFailed) failure = m.payload.empty() ? "failed" : m.payload;
    else failure = "broke the job protocol";
    break;
  }
  // A job that answered, or hung up, exits at once: it gets a moment to
  // finish, then is killed. Anything it sends after its answer is a lie.
  if (done || !failure.empty()) {
    ipc::Message rest;
    for (int waited = 0; waited < kExitGraceMs; waited += kStopPollMs) {
      const ipc::RecvResult r = ipc::RecvWithin(ch, &rest, kStopPollMs);
      rest.CloseFds();
      if (r == ipc::RecvResult::kClosed || r == ipc::RecvResult::kError) break;
      if (r == ipc::RecvResult::kMessage) {
        failure = "broke the job protocol";
        break;
      }
    }
  }
  const int status = failure == "broke the job protocol" ? KillAndReap(pid.value()) : ReapWithin(pid.value(), kExitGraceMs);
  if (!failure.empty()) {
    KLOG_ERROR("%s: %s", who.c_str(), failure.c_str());
    return Status::IOError(failure);
  }
  if (!done || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string why = who + " " + ExitText(status) + (done ? " after it answered" : "");
    KLOG_ERROR("%s", why.c_str());
    return Status::IOError(why);
  }
  CompactionOutcome out{done->copied, done->dropped, done->dropped_bytes, done->expired, done->cpd_size};
  if (Status s = CheckCompactedCopy(names, offset_bytes, plan, out, env); !s.ok()) {
    KLOG_ERROR("%s: %s", who.c_str(), s.message().c_str());
    return s;
  }
  return out;
}

}  // namespace kelp
