// An Env that fails on purpose: the twin of the real file system used by the
// fault tests. Each rule names one kind of call and the files it applies to
// (a substring of the path; for descriptor calls the path the descriptor was
// opened with), lets `skip` matching calls through, then acts on the next
// `times` ones: fail with an errno, write only half and fail the rest with the
// errno, stall, or end the process on the spot
// as SIGKILL would (page cache intact), before the call or after writing half.
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "storage/env.h"

namespace kelp {

enum class FsOp { kOpen, kPread, kPwrite, kFtruncate, kFdatasync, kRename, kUnlink, kStatvfs, kSyncDir };

struct FaultRule {
  enum class Action { kFail, kShortWrite, kStall, kCrash, kTornCrash };
  FsOp op = FsOp::kPwrite;
  std::string path_part;    // part of the path (either of a rename's); "" matches every file
  int skip = 0;             // matching calls let through before the rule acts
  int times = 1;            // calls it acts on; -1: every one after `skip`
  Action action = Action::kFail;
  int error = EIO;          // kFail and kShortWrite
  int stall_ms = 0;         // kStall: the call then proceeds normally
};

// Parses "op:suffix[:key=value...]" rules separated by ';', e.g.
// "pwrite:.idx:skip=2:errno=ENOSPC;fdatasync::stall=2000;pwrite:/v1/:crash;pwrite:.dat:torn".
Result<std::vector<FaultRule>> ParseFaultRules(const std::string& text);

class FaultEnv final : public Env {
 public:
  explicit FaultEnv(Env* base = Env::Default()) : base_(base) {}

  void Add(const FaultRule& r);
  void Clear();
  // Calls that met a rule (a stall of 0 ms counts calls without changing them).
  int fired() const;

  int Open(const std::string& path, int flags, mode_t mode) override;
  int Close(int fd) override;
  ssize_t Pread(int fd, void* buf, size_t len, off_t offset) override;
  ssize_t Pwrite(int fd, const void* buf, size_t len, off_t offset) override;
  int Ftruncate(int fd, off_t length) override;
  int Fdatasync(int fd) override;
  int Fstat(int fd, struct stat* st) override { return base_->Fstat(fd, st); }
  int Rename(const std::string& from, const std::string& to) override;
  int Unlink(const std::string& path) override;
  int Statvfs(const std::string& path, struct statvfs* st) override;
  int SyncDir(const std::string& dir) override;
  void Adopt(int fd, const std::string& path) override;

 private:
  struct Armed {
    FaultRule rule;
    int seen = 0;
    int acted = 0;
  };
  // The action due for this call, if any; stalls and crashes happen inside.
  const FaultRule* Check(FsOp op, const std::string& path, const std::string& other_path = {});
  std::string PathOf(int fd);

  Env* base_;
  mutable std::mutex mu_;
  std::vector<Armed> rules_;
  std::map<int, std::string> paths_;
  int fired_ = 0;
};

// The Env a process runs on: the real one, or in builds made with fault
// injection (the test build) a FaultEnv armed from the environment variable
// (the supervisor's $KELP_FAULTS, a job worker's $KELP_JOB_FAULTS). The
// first call decides, for the life of the process.
Env* ProcessEnv(const char* variable = "KELP_FAULTS");

}  // namespace kelp
