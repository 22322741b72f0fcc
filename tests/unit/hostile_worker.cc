#include "tests/unit/hostile_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/unit/fixtures.h"
#include "ipc/channel.h"

namespace kelp::testing {
namespace {

constexpr int kChannel = 3;
// Where the lies go: the main channel, or (KELP_HOSTILE_LANE) a write lane.
int g_send_fd = kChannel;

constexpr Cookie kCookie = 0x11223344;

std::string ValidRecord(NeedleId id) { return NeedleRecord(id, kCookie, "hostile worker payload"); }

// A large record in a memfd; `seal` says whether it is sealed as the protocol demands.
int RecordMemfd(const std::string& rec, bool seal) {
  const int fd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || pwrite(fd, rec.data(), rec.size(), 0) != ssize_t(rec.size())) _exit(10);
  if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) _exit(11);
  return fd;
}

std::string LargeRecord() { return NeedleRecord(77, kCookie, std::string(200000, 'L')); }

bool TrySendRaw(int to, const std::string& bytes) {
  return send(to, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
}

void SendRaw(const std::string& bytes, int fd = -1) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  if (sendmsg(g_send_fd, &msg, MSG_NOSIGNAL) < 0) _exit(12);
}

std::string Header(ipc::MsgType type, size_t length, uint16_t version = ipc::kProtocolVersion) {
  ipc::MsgHeader h{ipc::kMagic, version, uint16_t(type), uint32_t(length), 0, 1};
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

std::string WriteRequestBytes(uint32_t vid, bool inline_record, uint64_t length) {
  ipc::WriteRequest req{vid, 0, uint8_t(inline_record ? 1 : 0), 0, length};
  return std::string(reinterpret_cast<const char*>(&req), sizeof req);
}

void SendWrite(uint32_t vid, const std::string& record, uint64_t claimed_length) {
  const std::string body = WriteRequestBytes(vid, true, claimed_length) + record;
  SendRaw(Header(ipc::MsgType::kWriteRequest, body.size()) + body);
}

void SendMemfdWrite(uint32_t vid, int fd, uint64_t claimed_length) {
  const std::string body = WriteRequestBytes(vid, false, claimed_length);
  SendRaw(Header(ipc::MsgType::kWriteRequest, body.size()) + body, fd);
}

// One datagram from the main channel into `buf` (blocking); its first fd, if
// any, in `*fd` (the rest closed). Returns the bytes read.
ssize_t ReceiveDatagram(char* buf, size_t len, int* fd) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * ipc::kMaxFdsPerMessage)];
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = recvmsg(kChannel, &msg, MSG_CMSG_CLOEXEC);
  *fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t k = 0; k < count; ++k) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + k * sizeof(int), sizeof got);
      if (*fd < 0) *fd = got;
      else close(got);
    }
  }
  return n;
}

// Writes `count` valid needles one after another, answering SegmentReplaced
// with SegmentAck only if `ack`.
void WriteMany(uint32_t vid, int count, bool ack) {
  char buf[ipc::kMaxDatagram + sizeof(ipc::MsgHeader)];
  for (int i = 0; i < count; ++i) {
    const std::string rec = ValidRecord(NeedleId(1000 + i));
    const std::string body = WriteRequestBytes(vid, true, rec.size()) + rec;
    ipc::MsgHeader h{ipc::kMagic, ipc::kProtocolVersion, uint16_t(ipc::MsgType::kWriteRequest), uint32_t(body.size()), 0, uint64_t(i + 1)};
    SendRaw(std::string(reinterpret_cast<const char*>(&h), sizeof h) + body);
    for (;;) {
      int fd;
      const ssize_t n = ReceiveDatagram(buf, sizeof buf, &fd);
      if (fd >= 0) close(fd);
      if (n <= 0) _exit(0);
      ipc::MsgHeader r;
      std::memcpy(&r, buf, sizeof r);
      if (r.type == uint16_t(ipc::MsgType::kSegmentReplaced) && ack) {
        ipc::VolumeRef ref;
        std::memcpy(&ref, buf + sizeof r, sizeof ref);
        ipc::MsgHeader a{ipc::kMagic, ipc::kProtocolVersion, uint16_t(ipc::MsgType::kSegmentAck), uint32_t(sizeof ref), 0, 0};
        SendRaw(std::string(reinterpret_cast<const char*>(&a), sizeof a) + std::string(reinterpret_cast<const char*>(&ref), sizeof ref));
      }
      if (r.type == uint16_t(ipc::MsgType::kDrain)) _exit(0);
      if (r.type == uint16_t(ipc::MsgType::kWriteReply) && r.request_id == uint64_t(i + 1)) break;
    }
  }
}

// Reads the main channel up to the first write lane, and returns its socket.
int AwaitLane() {
  char buf[ipc::kMaxDatagram + sizeof(ipc::MsgHeader)];
  for (;;) {
    int fd;
    const ssize_t n = ReceiveDatagram(buf, sizeof buf, &fd);
    if (n < ssize_t(sizeof(ipc::MsgHeader))) _exit(16);
    ipc::MsgHeader h;
    std::memcpy(&h, buf, sizeof h);
    if (h.type == uint16_t(ipc::MsgType::kDrain)) _exit(0);  // no lane came
    if (h.type == uint16_t(ipc::MsgType::kWriteLane) && fd >= 0) {
      fcntl(fd, F_SETFL, 0);
      return fd;
    }
    if (fd >= 0) close(fd);  // Hello's sockets: not needed here
  }
}

}  // namespace

int HostileWorkerMain(const char* act_c) {
  const std::string act = act_c;
  const uint32_t vid = uint32_t(std::atoi(std::getenv("KELP_HOSTILE_VID") ? std::getenv("KELP_HOSTILE_VID") : "1"));
  fcntl(kChannel, F_SETFL, 0);  // blocking is simpler here
  if (std::getenv("KELP_HOSTILE_LANE")) g_send_fd = AwaitLane();
  if (act == "grow-ack" || act == "grow-noack") {
    WriteMany(vid, 900, act == "grow-ack");
  } else if (act == "grow-past-old-noack") {
    WriteMany(vid, 1500, false);  // past what the old segment can take
  } else if (act == "valid") {
    SendWrite(vid, ValidRecord(5), ValidRecord(5).size());
  } else if (act == "valid-memfd") {
    const std::string rec = LargeRecord();
    SendMemfdWrite(vid, RecordMemfd(rec, true), rec.size());
  } else if (act == "bad-crc") {
    std::string rec = ValidRecord(5);
    rec[kNeedleHeaderSize + 6] ^= 0x40;  // a data byte: the CRC no longer matches
    SendWrite(vid, rec, rec.size());
  } else if (act == "bad-size-field") {
    std::string rec = ValidRecord(5);
    rec[15] = char(rec[15] + 8);  // header size no longer matches the record length
    SendWrite(vid, rec, rec.size());
  } else if (act == "length-mismatch") {
    const std::string rec = ValidRecord(5);
    SendWrite(vid, rec, rec.size() + 8);
  } else if (act == "truncated-memfd") {
    // Announces the full length, then cuts the unsealed buffer short: a
    // writer that mapped it would die of SIGBUS reading past the end.
    const std::string rec = LargeRecord();
    const int fd = RecordMemfd(rec, false);
    if (ftruncate(fd, 4096) != 0) _exit(13);
    SendMemfdWrite(vid, fd, rec.size());
  } else if (act == "unsealed-memfd") {
    const std::string rec = LargeRecord();
    SendMemfdWrite(vid, RecordMemfd(rec, false), rec.size());
  } else if (act == "growing-memfd") {
    const std::string rec = LargeRecord();
    const int fd = RecordMemfd(rec, false);
    if (ftruncate(fd, off_t(rec.size() * 2)) != 0) _exit(14);
    SendMemfdWrite(vid, fd, rec.size());
  } else if (act == "pipe-fd") {
    int p[2];
    if (pipe(p) != 0) _exit(15);
    SendMemfdWrite(vid, p[0], 4096);
  } else if (act == "unknown-type") {
    SendRaw(Header(ipc::MsgType(999), 0));
  } else if (act == "wrong-version") {
    const std::string body = WriteRequestBytes(vid, true, 0);
    SendRaw(Header(ipc::MsgType::kWriteRequest, body.size(), ipc::kProtocolVersion + 1) + body);
  } else if (act == "short-delete") {
    SendRaw(Header(ipc::MsgType::kDeleteRequest, 4) + "abcd");
  } else if (act == "empty-datagram") {
    // recvmsg reads it as 0 bytes, as it reads the end of the stream.
    if (!TrySendRaw(kChannel, std::string())) _exit(17);
  } else if (act == "forked-lane-writer") {
    // A child inherits the lane (and the channel), waits until this process
    // has been killed for its lie, then tries to write through the lane.
    // $KELP_HOSTILE_MARK is created once the child has tried.
    const pid_t parent = getpid();
    const pid_t child = fork();
    if (child < 0) _exit(18);
    if (child == 0) {
      for (int i = 0; i < 30000 && getppid() == parent; ++i) usleep(1000);
      const std::string rec = ValidRecord(6);
      const std::string body = WriteRequestBytes(vid, true, rec.size()) + rec;
      for (int i = 0; i < 20 && getppid() != parent; ++i) {
        if (!TrySendRaw(g_send_fd, Header(ipc::MsgType::kWriteRequest, body.size()) + body)) break;
        usleep(10000);
      }
      if (const char* mark = std::getenv("KELP_HOSTILE_MARK")) close(open(mark, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
      _exit(0);
    }
    if (!TrySendRaw(kChannel, Header(ipc::MsgType(999), 0))) _exit(19);
  } else if (act == "admin-from-http") {
    SendRaw(Header(ipc::MsgType::kAdminRequest, 8) + std::string(8, '\0'));
  } else if (act == "admin-delete-from-http") {
    // Well formed, but a call only the gRPC worker may make.
    const std::string method = "VolumeDelete";
    const uint32_t fixed[2] = {uint32_t(method.size()), 0};
    SendRaw(Header(ipc::MsgType::kAdminRequest, 8 + method.size()) + std::string(reinterpret_cast<const char*>(fixed), 8) + method);
  } else {
    _exit(20);
  }
  // Wait for the verdict: Drain, or the channel cut (the supervisor killed us).
  char buf[ipc::kMaxDatagram + sizeof(ipc::MsgHeader)];
  for (;;) {
    const ssize_t n = recv(kChannel, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    ipc::MsgHeader h;
    if (size_t(n) >= sizeof h) {
      std::memcpy(&h, buf, sizeof h);
      if (h.type == uint16_t(ipc::MsgType::kDrain)) return 0;
    }
  }
}

}  // namespace kelp::testing
