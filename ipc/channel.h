// A non-blocking SOCK_SEQPACKET endpoint. Send() never blocks: a datagram the
// kernel cannot take now is queued (with dup'ed fds) and flushed when the
// socket turns writable; the owner watches WantsWrite(). The queue is bounded:
// a peer that stops reading makes Send() fail, as does a failed dup, and the
// owner then drops the peer rather than lose a message silently.
#pragma once
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/messages.h"

namespace kelp::ipc {
// What a channel may hold for a peer that is not reading.
inline constexpr size_t kMaxQueuedMessages = 65536;
inline constexpr size_t kMaxQueuedBytes = 256u << 20;
}  // namespace kelp::ipc

namespace kelp::ipc {

struct Message {
  MsgHeader header{};
  std::string payload;
  std::vector<int> fds;  // owned by the receiver: close what you do not keep

  // A message that is exactly one T.
  template <typename T>
  bool As(T* out) const {
    if (payload.size() != sizeof(T)) return false;
    std::memcpy(out, payload.data(), sizeof(T));
    return true;
  }
  // A T followed by a tail whose length the caller checks against T's fields.
  template <typename T>
  bool AsPrefix(T* out) const {
    if (payload.size() < sizeof(T)) return false;
    std::memcpy(out, payload.data(), sizeof(T));
    return true;
  }
  std::string_view Tail(size_t offset) const {
    return offset <= payload.size() ? std::string_view(payload).substr(offset) : std::string_view();
  }
  MsgType type() const { return MsgType(header.type); }
  void CloseFds();
};

enum class RecvResult { kMessage, kEmpty, kClosed, kError };

class Channel {
 public:
  explicit Channel(int fd = -1) : fd_(fd) {}
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Creates a connected pair; both ends are non-blocking and close-on-exec.
  static bool Pair(int fds[2]);

  // Returns false when the message could not be sent or queued: the peer is
  // gone, the queue is over its bound, or an fd could not be duplicated.
  bool Send(MsgType type, uint64_t request_id, std::string_view payload, const int* fds = nullptr, int nfds = 0);
  // Sends a trivially copyable struct followed by `tail`.
  template <typename T>
  bool SendStruct(MsgType type, uint64_t request_id, const T& body, std::string_view tail = {}, const int* fds = nullptr, int nfds = 0) {
    static_assert(std::is_trivially_copyable_v<T>);
    std::string p(reinterpret_cast<const char*>(&body), sizeof(T));
    p.append(tail);
    return Send(type, request_id, p, fds, nfds);
  }
  // Sends now or not at all (never queues): false when the socket cannot take
  // the datagram at once or something is already queued ahead of it. For a
  // channel whose owner never Sends, so that nothing is ever queued.
  bool TrySend(MsgType type, uint64_t request_id, std::string_view payload);
  template <typename T>
  bool TrySendStruct(MsgType type, uint64_t request_id, const T& body) {
    static_assert(std::is_trivially_copyable_v<T>);
    return TrySend(type, request_id, std::string_view(reinterpret_cast<const char*>(&body), sizeof(T)));
  }
  RecvResult Recv(Message* out);
  // Sends queued datagrams; returns false when the peer is gone.
  bool Flush();
  bool WantsWrite() const { return !queue_.empty(); }
  int fd() const { return fd_; }
  int Release() { int f = fd_; fd_ = -1; return f; }

 private:
  struct Pending {
    std::string bytes;
    std::vector<int> fds;
  };
  int fd_;
  std::deque<Pending> queue_;
  size_t queued_bytes_ = 0;
  std::vector<char> recv_buf_;
};

}  // namespace kelp::ipc
