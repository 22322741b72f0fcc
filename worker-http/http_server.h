// HTTP/1.1 server on libuv + llhttp, one per worker process.
// Per connection: one request is handled at a time; while its response is
// pending the parser is paused and the socket is not read, so pipelined
// requests are answered in order and a client cannot make the worker buffer
// more than one request ahead.
#pragma once
#include <uv.h>

#include <functional>
#include <memory>
#include <set>

#include "worker-http/http_types.h"

namespace kelp::http {

struct ServerLimits {
  size_t max_header_bytes = 1 << 20;  // Go's http.DefaultMaxHeaderBytes
  uint64_t max_body_bytes = 256ull << 20;
  uint64_t idle_timeout_ms = 30000;
  size_t stream_chunk_bytes = 1 << 20;
};

class Connection;

// Decides from its headers whether a request's body may be read now (Go's
// in-flight upload limit). `decide` is called exactly once: with a refusal,
// answered at once without reading the body (the connection then closes), or
// with a hold kept until the request's answer has been sent.
struct Admission {
  using Decide = std::function<void(std::shared_ptr<void> hold, std::unique_ptr<Response> refusal)>;
  std::function<bool(const Request& head)> wanted;
  std::function<void(const Request& head, Decide decide)> decide;
};


class Server {
 public:
  // The handler must eventually call `respond` exactly once.
  using Handler = std::function<void(Request&, Respond)>;

  // `server_name` is the Server header of the responses this layer writes itself.
  Server(uv_loop_t* loop, Handler handler, ServerLimits limits, std::string server_name);
  bool Listen(int fd);
  void SetAdmission(Admission a) { admission_ = std::move(a); }
  // Stops accepting; keep-alive connections close after their current request.
  void Drain(std::function<void()> on_drained);
  size_t connections() const { return connections_.size(); }

 private:
  friend class Connection;

  void Closed(Connection* c);
  static void OnConnection(uv_stream_t* server, int status);

  uv_loop_t* loop_;
  Handler handler_;
  Admission admission_;
  ServerLimits limits_;
  std::vector<uv_tcp_t*> listeners_;
  std::set<Connection*> connections_;
  size_t peak_connections_ = 0;  // most connections open since the last trim
  static constexpr size_t kTrimAfterConnections = 64;
  bool draining_ = false;
  std::function<void()> on_drained_;
  std::string server_name_;
};

}  // namespace kelp::http
