#include "storage/fault_env.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/log.h"

namespace kelp {
namespace {

const std::map<std::string, FsOp>& OpNames() {
  static const std::map<std::string, FsOp> names = {
      {"open", FsOp::kOpen},           {"pread", FsOp::kPread},     {"pwrite", FsOp::kPwrite},
      {"ftruncate", FsOp::kFtruncate}, {"fdatasync", FsOp::kFdatasync}, {"rename", FsOp::kRename},
      {"unlink", FsOp::kUnlink},       {"statvfs", FsOp::kStatvfs}, {"syncdir", FsOp::kSyncDir}};
  return names;
}

const std::map<std::string, int>& ErrnoNames() {
  static const std::map<std::string, int> names = {{"EIO", EIO},     {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT},
                                                   {"EROFS", EROFS}, {"EACCES", EACCES}, {"ENOENT", ENOENT}};
  return names;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

bool Matches(const std::string& path, const std::string& part) { return part.empty() || path.find(part) != std::string::npos; }

}  // namespace

Result<std::vector<FaultRule>> ParseFaultRules(const std::string& text) {
  std::vector<FaultRule> rules;
  for (const std::string& spec : Split(text, ';')) {
    if (spec.empty()) continue;
    const auto parts = Split(spec, ':');
    if (parts.size() < 2) return Status::Invalid("fault rule needs op:suffix: " + spec);
    auto op = OpNames().find(parts[0]);
    if (op == OpNames().end()) return Status::Invalid("unknown fault op " + parts[0]);
    FaultRule r;
    r.op = op->second;
    r.path_part = parts[1];
    for (size_t i = 2; i < parts.size(); ++i) {
      const std::string& kv = parts[i];
      const size_t eq = kv.find('=');
      const std::string key = kv.substr(0, eq);
      const std::string value = eq == std::string::npos ? "" : kv.substr(eq + 1);
      if (key == "skip") r.skip = std::atoi(value.c_str());
      else if (key == "times") r.times = std::atoi(value.c_str());
      else if (key == "crash") r.action = FaultRule::Action::kCrash;
      else if (key == "torn") r.action = FaultRule::Action::kTornCrash;
      else if (key == "stall") r.action = FaultRule::Action::kStall, r.stall_ms = std::atoi(value.c_str());
      else if (key == "errno" || key == "short") {
        auto e = ErrnoNames().find(value);
        if (e == ErrnoNames().end()) return Status::Invalid("unknown errno " + value);
        r.error = e->second;
        r.action = key == "short" ? FaultRule::Action::kShortWrite : FaultRule::Action::kFail;
      } else {
        return Status::Invalid("unknown fault key " + key);
      }
    }
    rules.push_back(r);
  }
  return rules;
}

void FaultEnv::Add(const FaultRule& r) {
  std::lock_guard<std::mutex> l(mu_);
  rules_.push_back({r});
}

void FaultEnv::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  rules_.clear();
}

int FaultEnv::fired() const {
  std::lock_guard<std::mutex> l(mu_);
  return fired_;
}

std::string FaultEnv::PathOf(int fd) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = paths_.find(fd);
  return it == paths_.end() ? std::string() : it->second;
}

const FaultRule* FaultEnv::Check(FsOp op, const std::string& path, const std::string& other_path) {
  const FaultRule* due = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (Armed& a : rules_) {
      if (a.rule.op != op) continue;
      if (!Matches(path, a.rule.path_part) && (other_path.empty() || !Matches(other_path, a.rule.path_part))) continue;
      if (a.seen++ < a.rule.skip) continue;
      if (a.rule.times >= 0 && a.acted >= a.rule.times) continue;
      a.acted++;
      fired_++;
      due = &a.rule;
      break;
    }
  }
  if (!due) return nullptr;
  switch (due->action) {
    case FaultRule::Action::kCrash:
      // As SIGKILL: no destructors, no flushing; what reached the page cache stays.
      _exit(137);
    case FaultRule::Action::kStall:
      std::this_thread::sleep_for(std::chrono::milliseconds(due->stall_ms));
      return nullptr;
    default:
      return due;
  }
}

int FaultEnv::Open(const std::string& path, int flags, mode_t mode) {
  if (const FaultRule* r = Check(FsOp::kOpen, path)) return errno = r->error, -1;
  const int fd = base_->Open(path, flags, mode);
  if (fd >= 0) {
    std::lock_guard<std::mutex> l(mu_);
    paths_[fd] = path;
  }
  return fd;
}

int FaultEnv::Close(int fd) {
  {
    std::lock_guard<std::mutex> l(mu_);
    paths_.erase(fd);
  }
  return base_->Close(fd);
}

ssize_t FaultEnv::Pread(int fd, void* buf, size_t len, off_t offset) {
  if (const FaultRule* r = Check(FsOp::kPread, PathOf(fd))) return errno = r->error, -1;
  return base_->Pread(fd, buf, len, offset);
}

ssize_t FaultEnv::Pwrite(int fd, const void* buf, size_t len, off_t offset) {
  if (const FaultRule* r = Check(FsOp::kPwrite, PathOf(fd))) {
    if (r->action == FaultRule::Action::kTornCrash) {
      if (len > 1) base_->Pwrite(fd, buf, len / 2, offset);
      _exit(137);
    }
    if (r->action == FaultRule::Action::kShortWrite && len > 1) {
      // Half reaches the file; the caller's retry of the rest then fails.
      const ssize_t n = base_->Pwrite(fd, buf, len / 2, offset);
      FaultRule then;
      then.op = FsOp::kPwrite;
      then.path_part = PathOf(fd);
      then.error = r->error;
      Add(then);
      return n;
    }
    return errno = r->error, -1;
  }
  return base_->Pwrite(fd, buf, len, offset);
}

int FaultEnv::Ftruncate(int fd, off_t length) {
  if (const FaultRule* r = Check(FsOp::kFtruncate, PathOf(fd))) return errno = r->error, -1;
  return base_->Ftruncate(fd, length);
}

int FaultEnv::Fdatasync(int fd) {
  if (const FaultRule* r = Check(FsOp::kFdatasync, PathOf(fd))) return errno = r->error, -1;
  return base_->Fdatasync(fd);
}

int FaultEnv::Rename(const std::string& from, const std::string& to) {
  if (const FaultRule* r = Check(FsOp::kRename, from, to)) return errno = r->error, -1;
  return base_->Rename(from, to);
}

int FaultEnv::Unlink(const std::string& path) {
  if (const FaultRule* r = Check(FsOp::kUnlink, path)) return errno = r->error, -1;
  return base_->Unlink(path);
}

int FaultEnv::Statvfs(const std::string& path, struct statvfs* st) {
  if (const FaultRule* r = Check(FsOp::kStatvfs, path)) return errno = r->error, -1;
  return base_->Statvfs(path, st);
}

int FaultEnv::SyncDir(const std::string& dir) {
  if (const FaultRule* r = Check(FsOp::kSyncDir, dir)) return errno = r->error, -1;
  return base_->SyncDir(dir);
}

void FaultEnv::Adopt(int fd, const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  paths_[fd] = path;
}

Env* ProcessEnv(const char* variable) {
#ifdef KELP_FAULT_INJECTION
  static Env* env = [variable]() -> Env* {
    const char* spec = std::getenv(variable);
    if (!spec || !*spec) return Env::Default();
    auto rules = ParseFaultRules(spec);
    if (!rules.ok()) {
      KLOG_ERROR("%s: %s", variable, rules.status().message().c_str());
      std::exit(2);
    }
    auto* f = new FaultEnv;
    for (const FaultRule& r : rules.value()) f->Add(r);
    KLOG_WARN("fault injection armed: %s", spec);
    return f;
  }();
  return env;
#else
  (void)variable;
  return Env::Default();
#endif
}

}  // namespace kelp
