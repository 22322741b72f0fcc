// The supervisor/worker channel: framing checks, exact-length decoding, the
// bounded send queue, and status codes on the wire.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "ipc/channel.h"
#include "ipc/wire_code.h"

using namespace kelp;
using namespace kelp::ipc;

namespace {

void SendRawDatagram(int fd, const std::string& bytes) { REQUIRE(send(fd, bytes.data(), bytes.size(), 0) == ssize_t(bytes.size())); }

std::string Header(uint32_t magic, uint16_t version, MsgType type, uint32_t length) {
  MsgHeader h{magic, version, uint16_t(type), length, 0, 9};
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

}  // namespace

TEST_CASE("channel: a datagram of another protocol version, magic or length is refused") {
  int fds[2];
  REQUIRE(Channel::Pair(fds));
  Channel rx(fds[1]);
  Message m;
  SendRawDatagram(fds[0], Header(kMagic, kProtocolVersion, MsgType::kReady, 0));
  CHECK(rx.Recv(&m) == RecvResult::kMessage);
  SendRawDatagram(fds[0], Header(kMagic, kProtocolVersion + 1, MsgType::kReady, 0));
  CHECK(rx.Recv(&m) == RecvResult::kError);
  SendRawDatagram(fds[0], Header(0x4b4c5001, kProtocolVersion, MsgType::kReady, 0));
  CHECK(rx.Recv(&m) == RecvResult::kError);
  SendRawDatagram(fds[0], Header(kMagic, kProtocolVersion, MsgType::kReady, 4) + "abc");
  CHECK(rx.Recv(&m) == RecvResult::kError);
  CHECK(rx.Recv(&m) == RecvResult::kEmpty);
  close(fds[0]);
}

TEST_CASE("channel: a peer that closes with messages unread is closed, not malformed") {
  int fds[2];
  REQUIRE(Channel::Pair(fds));
  Channel tx(fds[0]);
  {
    Channel peer(fds[1]);
    REQUIRE(tx.Send(MsgType::kDrain, 1, std::string_view()));  // left unread by the peer
    SendRawDatagram(fds[1], Header(kMagic, kProtocolVersion, MsgType::kReady, 0));
  }  // the peer closes with the Drain still queued to it
  // The kernel reports the reset before or after what the peer sent last;
  // either way the stream ends as closed, never as an error.
  Message m;
  RecvResult r = tx.Recv(&m);
  if (r == RecvResult::kMessage) r = tx.Recv(&m);
  CHECK(r == RecvResult::kClosed);
}

TEST_CASE("channel: messages decode at their exact length") {
  int fds[2];
  REQUIRE(Channel::Pair(fds));
  Channel tx(fds[0]), rx(fds[1]);
  const VolumeRef ref{3, 0, 7};
  REQUIRE(tx.SendStruct(MsgType::kSegmentAck, 1, ref));
  REQUIRE(tx.SendStruct(MsgType::kSegmentAck, 2, ref, "x"));
  Message m;
  VolumeRef out{};
  REQUIRE(rx.Recv(&m) == RecvResult::kMessage);
  CHECK(m.As(&out));
  CHECK(out.generation == 7);
  REQUIRE(rx.Recv(&m) == RecvResult::kMessage);
  CHECK_FALSE(m.As(&out));  // one byte too many
  CHECK(m.AsPrefix(&out));  // a struct with a tail is decoded with its tail checked by the caller
}

TEST_CASE("channel: a peer that stops reading makes sends fail once the queue is full, instead of growing it without end") {
  int fds[2];
  REQUIRE(Channel::Pair(fds));
  Channel tx(fds[0]);
  const std::string payload(60000, 'q');
  size_t sent = 0;
  while (tx.Send(MsgType::kServerState, sent, payload)) {
    ++sent;
    REQUIRE(sent < 100000);
  }
  CHECK(tx.WantsWrite());
  CHECK(sent * payload.size() >= kMaxQueuedBytes / 2);
  close(fds[1]);
}

TEST_CASE("wire codes: every status code survives the trip, and an unknown one is an error") {
  const Code codes[] = {Code::kOk,       Code::kNotFound,       Code::kCorruption, Code::kInvalidArgument,
                        Code::kIOError,  Code::kReadOnly,       Code::kFull,       Code::kCookieMismatch,
                        Code::kTooLarge, Code::kUnavailable,    Code::kAlreadyExists};
  for (Code c : codes) CHECK(FromWire(uint16_t(ToWire(c)), "m").code() == c);
  CHECK(uint16_t(ToWire(Code::kReadOnly)) == 5);  // fixed numbers, not enum order
  CHECK(FromWire(4242, "from a newer build").code() == Code::kIOError);
}
