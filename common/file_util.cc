#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace kelp {

std::string ErrnoMessage(const std::string& what) { return what + ": " + std::strerror(errno); }

Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(ErrnoMessage("open " + tmp));
  Status s = PwriteFull(fd, content.data(), content.size(), 0);
  if (s.ok() && fsync(fd) != 0) s = Status::IOError(ErrnoMessage("fsync " + tmp));
  close(fd);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) s = Status::IOError(ErrnoMessage("rename " + tmp));
  if (!s.ok()) unlink(tmp.c_str());
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

Result<off_t> FileSize(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::IOError(ErrnoMessage("fstat"));
  return st.st_size;
}

bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), {});
  return true;
}

std::string AbsolutePath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

}  // namespace kelp
