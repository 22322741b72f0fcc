// The worker's end of the supervisor channel and of its write lanes: sends
// each mutation down the lane of its volume's location (the main channel when
// there is none), matches replies from any of them to their callbacks by
// request id, and hands every other message to `on_control`. It keeps the
// lane of each attached volume itself (kWriteLane, kVolumeAttach,
// kVolumeDetach are seen here first). If the supervisor goes away the worker
// exits: it cannot acknowledge writes.
#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

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

  // Encodes the needle into the outgoing buffer (inline datagram or memfd).
  // `data_checksum` is the CRC-32C of fields.data, which the caller has.
  void Write(VolumeId vid, const NeedleFields& fields, uint32_t data_checksum, bool fsync, Done done);
  void Delete(VolumeId vid, NeedleId id, Cookie cookie, uint64_t append_at_ns, Done done);
  // A call to the supervisor's admin service (only the few methods an HTTP
  // worker may use). `done` gets the gRPC code (0: ok), the error text, the
  // serialized response and a descriptor the answer handed over (or -1; the
  // callback owns it).
  using AdminDone = std::function<void(int code, const std::string& message, const std::string& body, int fd)>;
  void AdminCall(const std::string& method, const std::string& request, AdminDone done);
  void Send(ipc::MsgType type, std::string_view payload) { main_->channel.Send(type, 0, payload); Poll(main_.get()); }
  template <typename T>
  void SendStruct(ipc::MsgType type, const T& body) { main_->channel.SendStruct(type, 0, body); Poll(main_.get()); }

 private:
  // A socket to the supervisor, watched by the loop.
  struct Endpoint {
    SupervisorLink* link = nullptr;
    bool control = false;  // the main channel: every message type may come
    ipc::Channel channel;
    uv_poll_t poll{};
    int poll_events = 0;  // what poll watches now (a libuv restart costs two epoll_ctl calls)
    explicit Endpoint(int fd) : channel(fd) {}
  };
  void Poll(Endpoint* e);
  void OnEvents(Endpoint* e, int events);
  void OnMessage(Endpoint* e, ipc::Message& m);
  void AddLane(ipc::Message& m);
  // The endpoint a mutation of `vid` goes down.
  Endpoint* RouteOf(VolumeId vid);

  uv_loop_t* loop_;
  std::unique_ptr<Endpoint> main_;
  std::vector<std::unique_ptr<Endpoint>> lanes_;  // by location index; null where none came
  std::unordered_map<VolumeId, uint32_t> lane_of_;
  std::function<void(ipc::Message&)> on_control_;
  std::unordered_map<uint64_t, Done> pending_;
  struct AdminPending {
    AdminDone done;
    int fd = -1;  // from kAdminFd, until the reply takes it
  };
  std::unordered_map<uint64_t, AdminPending> admin_pending_;
  void OnAdminMessage(ipc::Message& m);
  uint64_t next_id_ = 1;
};

}  // namespace kelp
