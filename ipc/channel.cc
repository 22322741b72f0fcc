#include "ipc/channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kelp::ipc {

void Message::CloseFds() {
  for (int fd : fds) close(fd);
  fds.clear();
}

Channel::~Channel() {
  for (auto& p : queue_)
    for (int fd : p.fds) close(fd);
  if (fd_ >= 0) close(fd_);
}

bool Channel::Pair(int fds[2]) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return false;
  for (int i = 0; i < 2; ++i) {
    int size = 4 * 1024 * 1024;
    setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  return true;
}

namespace {

// 1: sent, 0: would block, -1: peer gone.
int SendDatagramNow(int fd, const std::string& bytes, const int* fds, int nfds) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  for (;;) {
    if (sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) return 1;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return 0;
    return -1;
  }
}

// One datagram as Channel sends it: the header, then the payload.
std::string EncodeDatagram(MsgType type, uint64_t request_id, std::string_view payload) {
  MsgHeader h{kMagic, kProtocolVersion, uint16_t(type), uint32_t(payload.size()), 0, request_id};
  std::string bytes(reinterpret_cast<const char*>(&h), sizeof h);
  bytes.append(payload);
  return bytes;
}

}  // namespace

bool Channel::TrySend(MsgType type, uint64_t request_id, std::string_view payload) {
  if (fd_ < 0 || !queue_.empty() || payload.size() > kMaxDatagram) return false;
  return SendDatagramNow(fd_, EncodeDatagram(type, request_id, payload), nullptr, 0) == 1;
}

bool Channel::Send(MsgType type, uint64_t request_id, std::string_view payload, const int* fds, int nfds) {
  if (fd_ < 0 || nfds > kMaxFdsPerMessage) return false;
  if (payload.size() > kMaxDatagram) return false;
  std::string bytes = EncodeDatagram(type, request_id, payload);
  if (queue_.empty()) {
    const int r = SendDatagramNow(fd_, bytes, fds, nfds);
    if (r == 1) return true;
    if (r < 0) return false;
  }
  if (queue_.size() >= kMaxQueuedMessages || queued_bytes_ + bytes.size() > kMaxQueuedBytes) return false;
  Pending p{std::move(bytes), {}};
  for (int i = 0; i < nfds; ++i) {
    const int dup = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      for (int fd : p.fds) close(fd);
      return false;
    }
    p.fds.push_back(dup);
  }
  queued_bytes_ += p.bytes.size();
  queue_.push_back(std::move(p));
  return true;
}

bool Channel::Flush() {
  while (!queue_.empty()) {
    Pending& p = queue_.front();
    const int r = SendDatagramNow(fd_, p.bytes, p.fds.data(), int(p.fds.size()));
    if (r == 0) return true;
    if (r < 0) return false;
    for (int fd : p.fds) close(fd);
    queued_bytes_ -= p.bytes.size();
    queue_.pop_front();
  }
  return true;
}

RecvResult Channel::Recv(Message* out) {
  // One receive buffer per channel, sized once: no per-message allocation or zero-fill.
  if (recv_buf_.empty()) recv_buf_.resize(sizeof(MsgHeader) + kMaxDatagram);
  iovec iov{recv_buf_.data(), recv_buf_.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return RecvResult::kEmpty;
  // A peer that closes while datagrams it was sent are still unread resets
  // the pair: recvmsg fails with ECONNRESET instead of returning 0. That is
  // the end of the stream too, not a malformed datagram.
  if (n == 0 || (n < 0 && errno == ECONNRESET)) return RecvResult::kClosed;
  if (n < 0) return RecvResult::kError;
  out->fds.clear();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        out->fds.push_back(fd);
      }
    }
  }
  if (size_t(n) < sizeof(MsgHeader) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    out->CloseFds();
    return RecvResult::kError;
  }
  std::memcpy(&out->header, recv_buf_.data(), sizeof(MsgHeader));
  if (out->header.magic != kMagic || out->header.version != kProtocolVersion || out->header.length != size_t(n) - sizeof(MsgHeader)) {
    out->CloseFds();
    return RecvResult::kError;
  }
  out->payload.assign(recv_buf_.data() + sizeof(MsgHeader), out->header.length);
  return RecvResult::kMessage;
}

}  // namespace kelp::ipc
