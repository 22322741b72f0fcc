#include "storage/env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_util.h"

namespace kelp {
namespace {

class PosixEnv final : public Env {
 public:
  int Open(const std::string& path, int flags, mode_t mode) override { return open(path.c_str(), flags | O_CLOEXEC, mode); }
  int Close(int fd) override { return close(fd); }
  ssize_t Pread(int fd, void* buf, size_t len, off_t offset) override { return pread(fd, buf, len, offset); }
  ssize_t Pwrite(int fd, const void* buf, size_t len, off_t offset) override { return pwrite(fd, buf, len, offset); }
  int Ftruncate(int fd, off_t length) override { return ftruncate(fd, length); }
  int Fdatasync(int fd) override { return fdatasync(fd); }
  int Fstat(int fd, struct stat* st) override { return fstat(fd, st); }
  int Rename(const std::string& from, const std::string& to) override { return rename(from.c_str(), to.c_str()); }
  int Unlink(const std::string& path) override { return unlink(path.c_str()); }
  int Statvfs(const std::string& path, struct statvfs* st) override { return statvfs(path.c_str(), st); }
  int SyncDir(const std::string& dir) override {
    const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    const int rc = fsync(fd);
    const int saved = errno;
    close(fd);
    errno = saved;
    return rc;
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv;
  return env;
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status EnvRemoveIfExists(Env* env, const std::string& path) {
  if (env->Unlink(path) == 0 || errno == ENOENT) return Status::Ok();
  return Status::IOError("remove " + path + ": " + GoErrno(errno));
}

int Env::StartWriteBack(int fd, off_t offset, off_t length) { return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE); }

Status EnvPreadUpTo(Env* env, int fd, void* buf, size_t len, off_t offset, size_t* got) {
  auto* p = static_cast<char*>(buf);
  *got = 0;
  while (*got < len) {
    const ssize_t n = env->Pread(fd, p + *got, len - *got, offset + off_t(*got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(ErrnoMessage("pread"));
    }
    if (n == 0) break;
    *got += size_t(n);
  }
  return Status::Ok();
}

Status EnvPreadFull(Env* env, int fd, void* buf, size_t len, off_t offset) {
  size_t got = 0;
  if (Status s = EnvPreadUpTo(env, fd, buf, len, offset, &got); !s.ok()) return s;
  if (got != len) return Status::Corruption("unexpected end of file");
  return Status::Ok();
}

Status EnvPwriteFull(Env* env, int fd, const void* buf, size_t len, off_t offset) {
  auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    const ssize_t n = env->Pwrite(fd, p, len, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOSPC || errno == EDQUOT) return Status::Full(ErrnoMessage("pwrite"));
      return Status::IOError(ErrnoMessage("pwrite"));
    }
    if (n == 0) {
      errno = EIO;
      return Status::IOError("pwrite: wrote nothing");
    }
    p += n;
    len -= size_t(n);
    offset += n;
  }
  return Status::Ok();
}

Result<off_t> EnvFileSize(Env* env, int fd) {
  struct stat st;
  if (env->Fstat(fd, &st) != 0) return Status::IOError(ErrnoMessage("fstat"));
  return st.st_size;
}

Status EnvReadWholeFile(Env* env, const std::string& path, std::string* out) {
  Fd fd(env, env->Open(path, O_RDONLY | O_CLOEXEC, 0));
  if (fd.get() < 0) return Status::IOError(GoErrno(errno));
  auto size = EnvFileSize(env, fd.get());
  if (!size.ok()) return size.status();
  out->resize(size_t(size.value()));
  return out->empty() ? Status::Ok() : EnvPreadFull(env, fd.get(), out->data(), out->size(), 0);
}

Status EnvWriteFileAtomically(Env* env, const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = env->Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::IOError(ErrnoMessage("open " + tmp));
  Status s = EnvPwriteFull(env, fd, content.data(), content.size(), 0);
  if (s.ok() && env->Fdatasync(fd) != 0) s = Status::IOError(ErrnoMessage("fsync " + tmp));
  env->Close(fd);
  if (s.ok() && env->Rename(tmp, path) != 0) s = Status::IOError(ErrnoMessage("rename " + tmp));
  if (!s.ok()) {
    env->Unlink(tmp);
    return s;
  }
  // The rename is durable only once the directory is.
  if (env->SyncDir(DirOf(path)) != 0) return Status::IOError(ErrnoMessage("fsync directory of " + path));
  return Status::Ok();
}

}  // namespace kelp
