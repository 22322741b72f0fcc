// The worker's end of the supervisor channel: sends mutations, matches replies
// to their callbacks by request id, and hands every other message to `on_control`.
// If the supervisor goes away the worker exits: it cannot acknowledge writes.
#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <unordered_map>

#include "common/needle.h"
#include "common/status.h"
#include "ipc/channel.h"

namespace kelp {

struct MutationResult {
  Status status;
  uint32_t size = 0;
};

class SupervisorLink {
 public:
  using Done = std::function<void(const MutationResult&)>;
  SupervisorLink(uv_loop_t* loop, int fd, std::function<void(ipc::Message&)> on_control);

  // Encodes the needle straight into the outgoing buffer (inline datagram or memfd).
  void Write(VolumeId vid, const NeedleFields& fields, bool fsync, Done done);
  void Delete(VolumeId vid, NeedleId id, Cookie cookie, uint64_t append_at_ns, Done done);
  void Send(ipc::MsgType type, std::string_view payload) { channel_.Send(type, 0, payload); Poll(); }
  template <typename T>
  void SendStruct(ipc::MsgType type, const T& body) { channel_.SendStruct(type, 0, body); Poll(); }

 private:
  void Poll();
  void OnEvents(int events);
  void Fail(uint64_t id, Status s);

  uv_loop_t* loop_;
  ipc::Channel channel_;
  uv_poll_t poll_{};
  std::function<void(ipc::Message&)> on_control_;
  std::unordered_map<uint64_t, Done> pending_;
  uint64_t next_id_ = 1;
};

}  // namespace kelp
