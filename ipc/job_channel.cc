#include "ipc/job_channel.h"

#include <poll.h>

#include <cerrno>

namespace kelp::ipc {

bool SendAndFlush(Channel& ch, MsgType type, std::string_view payload, const int* fds, int nfds) {
  if (!ch.Send(type, 0, payload, fds, nfds)) return false;
  while (ch.WantsWrite()) {
    pollfd p{ch.fd(), POLLOUT, 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return false;
    if (!ch.Flush()) return false;
  }
  return true;
}

RecvResult RecvWithin(Channel& ch, Message* out, int timeout_ms) {
  for (;;) {
    const RecvResult r = ch.Recv(out);
    if (r != RecvResult::kEmpty) return r;
    pollfd p{ch.fd(), POLLIN, 0};
    const int n = poll(&p, 1, timeout_ms);
    if (n < 0 && errno != EINTR) return RecvResult::kError;
    if (n == 0) return RecvResult::kEmpty;
  }
}

}  // namespace kelp::ipc
