// The storage engine's one door to the file system. Every open, read, write,
// truncate, sync, rename, unlink and statvfs that the writer does goes through
// an Env, so tests can put a fault-injecting twin (storage/fault_env.h) in its
// place and check what each failure does. Calls follow POSIX conventions:
// -1 (or a short count) with errno set.
#pragma once
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <string>

#include "common/status.h"

namespace kelp {

class Env {
 public:
  virtual ~Env() = default;

  virtual int Open(const std::string& path, int flags, mode_t mode) = 0;
  virtual int Close(int fd) = 0;
  virtual ssize_t Pread(int fd, void* buf, size_t len, off_t offset) = 0;
  virtual ssize_t Pwrite(int fd, const void* buf, size_t len, off_t offset) = 0;
  virtual int Ftruncate(int fd, off_t length) = 0;
  virtual int Fdatasync(int fd) = 0;
  virtual int Fstat(int fd, struct stat* st) = 0;
  virtual int Rename(const std::string& from, const std::string& to) = 0;
  virtual int Unlink(const std::string& path) = 0;
  virtual int Statvfs(const std::string& path, struct statvfs* st) = 0;
  // Makes a directory's entries (creations, renames, unlinks) durable.
  virtual int SyncDir(const std::string& dir) = 0;
  // Starts writing back a range's dirty pages without waiting for them
  // (advisory: a later sync still decides durability).
  virtual int StartWriteBack(int fd, off_t offset, off_t length);
  // Names a descriptor this Env did not open (one handed over by another
  // process), so that what is said of its path applies to it.
  virtual void Adopt(int /*fd*/, const std::string& /*path*/) {}

  // The real file system. Never null, never freed.
  static Env* Default();
};

// A descriptor closed on every path out.
class Fd {
 public:
  Fd(Env* env, int fd) : env_(env), fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) env_->Close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports the close's own error.
  int Release() {
    const int rc = env_->Close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  Env* env_;
  int fd_;
};

// Status-returning loops over an Env.
// Reads until `len` bytes or the end of the file; `got` says how many.
Status EnvPreadUpTo(Env* env, int fd, void* buf, size_t len, off_t offset, size_t* got);
// The same, with the end of the file before `len` bytes an error.
Status EnvPreadFull(Env* env, int fd, void* buf, size_t len, off_t offset);
Status EnvPwriteFull(Env* env, int fd, const void* buf, size_t len, off_t offset);
Result<off_t> EnvFileSize(Env* env, int fd);
// Removes `path`; one already absent is fine. The error reads as Go's os.Remove.
Status EnvRemoveIfExists(Env* env, const std::string& path);
// The whole of `path` (its length from fstat); an open failure reads as Go's errno text.
Status EnvReadWholeFile(Env* env, const std::string& path, std::string* out);
// Writes path.tmp, syncs it, renames it over path and syncs the directory:
// after it returns Ok the new content survives a power loss.
Status EnvWriteFileAtomically(Env* env, const std::string& path, const std::string& content);
std::string DirOf(const std::string& path);

}  // namespace kelp
