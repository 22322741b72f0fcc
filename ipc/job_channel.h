// Blocking use of a non-blocking Channel, for the two ends of a job
// (ipc/job_messages.h): each is a thread that does nothing else meanwhile.
#pragma once
#include <string_view>

#include "ipc/channel.h"

namespace kelp::ipc {

// Sends one message and waits until the kernel has taken it; false when the
// peer is gone.
bool SendAndFlush(Channel& ch, MsgType type, std::string_view payload, const int* fds = nullptr, int nfds = 0);

template <typename T>
bool SendStructAndFlush(Channel& ch, MsgType type, const T& body, std::string_view tail = {}, const int* fds = nullptr, int nfds = 0) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::string p(reinterpret_cast<const char*>(&body), sizeof(T));
  p.append(tail);
  return SendAndFlush(ch, type, p, fds, nfds);
}

// Waits up to timeout_ms (-1: for ever) for one message. kEmpty: none came.
RecvResult RecvWithin(Channel& ch, Message* out, int timeout_ms);

}  // namespace kelp::ipc
