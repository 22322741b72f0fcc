#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace kelp {

std::string ErrnoMessage(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string GoErrno(int e) {
  std::string s = std::strerror(e);
  if (!s.empty()) s[0] = char(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Status PreadFull(int fd, void* buf, size_t len, off_t offset) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const ssize_t n = pread(fd, p, len, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(ErrnoMessage("pread"));
    }
    if (n == 0) return Status::Corruption("unexpected end of file");
    p += n;
    len -= size_t(n);
    offset += n;
  }
  return Status::Ok();
}

Status PwriteFull(int fd, const void* buf, size_t len, off_t offset) {
  auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    const ssize_t n = pwrite(fd, p, len, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOSPC) return Status::Full(ErrnoMessage("pwrite"));
      return Status::IOError(ErrnoMessage("pwrite"));
    }
    p += n;
    len -= size_t(n);
    offset += n;
  }
  return Status::Ok();
}

bool FileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

int64_t FileSizeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : -1;
}

Result<off_t> FileSize(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::IOError(ErrnoMessage("fstat"));
  return st.st_size;
}

bool ReadWholeFile(const std::string& path, std::string* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      close(fd);
      errno = saved;
      return false;
    }
    if (n == 0) break;
    out->append(buf, size_t(n));
  }
  close(fd);
  return true;
}

std::string AbsolutePath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

}  // namespace kelp
