// Payloads of unbounded size on the seqpacket channel. A body that fits a
// datagram travels inline after its fixed part; a larger one travels as the
// message's last fd, a sealed memfd holding exactly the body.
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>

#include "ipc/channel.h"

namespace kelp::ipc {

// A memfd holding the pieces one after another, written with gathered writes
// (the kernel copies each piece once, from where it is) and sealed against
// writes, growth, shrinking and further seals: what a receiver requires of a
// buffer the sender must no longer change. -1 with errno set on failure.
int SealedMemfd(const char* name, std::initializer_list<std::string_view> pieces);

// Sends `fixed` (struct bytes plus any short tail) followed by `body`.
// Returns false when the peer is gone or the memfd could not be made.
bool SendBulk(Channel& channel, MsgType type, uint64_t request_id, std::string_view fixed, std::string_view body);

// Recovers the body of a message sent with SendBulk, given the length of its
// fixed part. Fails on a malformed message (wrong fds, short memfd).
bool ReadBulk(const Message& m, size_t fixed_length, std::string* body);

}  // namespace kelp::ipc
