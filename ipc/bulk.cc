#include "ipc/bulk.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/file_util.h"

namespace kelp::ipc {
namespace {

// Writes the pieces from offset 0 until all of them are in; false with errno set.
bool PwritevFull(int fd, std::vector<iovec> iov) {
  size_t first = 0;
  off_t at = 0;
  while (first < iov.size()) {
    const ssize_t n = pwritev(fd, iov.data() + first, int(iov.size() - first), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      errno = EIO;
      return false;
    }
    at += n;
    // Skip what was written: whole pieces, then part of the next one.
    size_t left = size_t(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < iov.size()) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

}  // namespace

int SealedMemfd(const char* name, std::initializer_list<std::string_view> pieces) {
  const int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  std::vector<iovec> iov;
  for (std::string_view p : pieces)
    if (!p.empty()) iov.push_back({const_cast<char*>(p.data()), p.size()});
  if (!PwritevFull(fd, std::move(iov)) || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

bool SendBulk(Channel& channel, MsgType type, uint64_t request_id, std::string_view fixed, std::string_view body) {
  if (fixed.size() + body.size() <= kMaxDatagram) {
    std::string payload(fixed);
    payload.append(body);
    return channel.Send(type, request_id, payload);
  }
  const int fd = SealedMemfd("kelp-bulk", {body});
  if (fd < 0) return false;
  const bool sent = channel.Send(type, request_id, fixed, &fd, 1);
  close(fd);
  return sent;
}

bool ReadBulk(const Message& m, size_t fixed_length, std::string* body) {
  if (m.payload.size() < fixed_length) return false;
  if (m.fds.empty()) {
    body->assign(m.payload, fixed_length, std::string::npos);
    return true;
  }
  if (m.fds.size() != 1 || m.payload.size() != fixed_length) return false;
  struct stat st;
  if (fstat(m.fds[0], &st) != 0 || st.st_size < 0) return false;
  body->resize(size_t(st.st_size));
  return PreadFull(m.fds[0], body->data(), body->size(), 0).ok();
}

}  // namespace kelp::ipc
