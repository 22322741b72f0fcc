#include "ipc/bulk.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_util.h"

namespace kelp::ipc {

bool SendBulk(Channel& channel, MsgType type, uint64_t request_id, std::string_view fixed, std::string_view body) {
  if (fixed.size() + body.size() <= kMaxDatagram) {
    std::string payload(fixed);
    payload.append(body);
    return channel.Send(type, request_id, payload);
  }
  const int fd = memfd_create("kelp-bulk", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return false;
  const bool ok = PwriteFull(fd, body.data(), body.size(), 0).ok() &&
                  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0;
  const bool sent = ok && channel.Send(type, request_id, fixed, &fd, 1);
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
