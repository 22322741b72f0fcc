// The gRPC worker's end of the supervisor channel. gRPC handler threads call
// Call() concurrently; one reader thread matches replies to callers by request
// id. The supervisor executes every call on its event loop, so calls are
// serialized there; here they only wait.
#pragma once
#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "ipc/channel.h"
#include "ipc/worker_side.h"

namespace kelp {

class SupervisorClient {
 public:
  explicit SupervisorClient(int fd) : channel_(fd) {}
  ~SupervisorClient();

  // Blocks until the Hello arrives; returns the server's argv.
  // The configuration the supervisor sends first (Hello).
  Result<ServerConfig> WaitConfig();
  // Starts the reader thread. `on_drain` runs on it when the supervisor asks
  // this worker to finish; `on_lost` when the supervisor is gone.
  void Start(std::function<void()> on_drain, std::function<void()> on_lost);
  void SendReady();

  // Forwards a decoded request; fills `response` on success.
  grpc::Status Call(const std::string& method, const google::protobuf::Message& request, google::protobuf::Message* response);
  // The same, for a call that may hand over a descriptor: `*fd` gets it (the
  // caller then owns it) or -1.
  grpc::Status CallForFd(const std::string& method, const google::protobuf::Message& request, google::protobuf::Message* response,
                         int* fd);
  // A call whose answer is a stream: `on_message` gets each streamed response
  // (serialized) as it arrives, and false from it abandons the call. No
  // deadline: it ends with the supervisor's final reply, or when it is gone.
  // `response`, when given, gets the final reply's body.
  grpc::Status CallStream(const std::string& method, const google::protobuf::Message& request,
                          const std::function<bool(const std::string&)>& on_message, google::protobuf::Message* response = nullptr);
  ipc::ServerStateView state();

 private:
  struct Pending {
    bool done = false;
    int code = 0;
    std::string message;
    std::string body;
    std::deque<std::string> streamed;  // kAdminProgress bodies not yet taken
    int fd = -1;                       // from kAdminFd, owned until taken
  };
  // Sends the request and registers `p` under a new id (0: not sent).
  uint64_t Begin(const std::string& method, const google::protobuf::Message& request, Pending* p);
  bool SendBlocking(ipc::MsgType type, uint64_t id, std::string_view fixed, std::string_view body);
  bool ReceiveBlocking(ipc::Message* m, int timeout_ms);
  void ReadLoop();
  void OnMessage(ipc::Message& m);

  ipc::Channel channel_;
  std::mutex send_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Pending*> pending_;
  uint64_t next_id_ = 1;
  bool lost_ = false;
  ipc::ServerStateView state_;
  std::thread reader_;
  std::function<void()> on_drain_, on_lost_;
};

}  // namespace kelp
