// An asynchronous HTTP/1.1 client on the worker's libuv loop (llhttp for the
// responses), for the requests a volume server makes itself: volume lookups on
// the master, replica writes and deletes, proxied reads and chunk fetches.
// Idle keep-alive connections are pooled per host:port, so replicated traffic
// does not exhaust ephemeral ports.
#pragma once
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kelp::http {

struct ClientRequest {
  std::string method = "GET";
  std::string host_port;  // "host:port"
  std::string target;     // path and query, e.g. "/3,01ab?type=replicate"
  std::vector<std::pair<std::string, std::string>> headers;
  // The body, sent uncopied after the head in one vectored write; `keep` owns
  // what the pieces point into (a retry on a fresh connection sends them again).
  std::vector<std::string_view> body;
  std::shared_ptr<const void> keep;
  uint64_t timeout_ms = 30000;  // for the whole exchange
};

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;  // only in Fetch (buffered) mode
  std::string Header(std::string_view name) const;  // case-insensitive, "" if absent
};

// Streaming callbacks. on_body may call the exchange's Pause() to stop reading
// until Resume(). Exactly one of on_done's outcomes ends the exchange.
struct ClientHandlers {
  std::function<void(ClientResponse& head)> on_headers;
  std::function<void(const char* data, size_t n)> on_body;
  std::function<void(Status status)> on_done;
};

class ClientExchange;

class Client {
 public:
  explicit Client(uv_loop_t* loop) : loop_(loop) {}
  ~Client();

  // Buffers the whole response body, refusing more than `max_body` bytes.
  void Fetch(ClientRequest req, size_t max_body, std::function<void(Status, ClientResponse)> done);
  // Streams the response; the returned handle can pause/resume reading or cancel.
  std::shared_ptr<ClientExchange> Stream(ClientRequest req, ClientHandlers handlers);

 private:
  friend class ClientExchange;
  uv_tcp_t* TakeIdle(const std::string& host_port);
  void PutIdle(const std::string& host_port, uv_tcp_t* tcp);
  void DropIdle(uv_tcp_t* tcp);

  uv_loop_t* loop_;
  std::multimap<std::string, uv_tcp_t*> idle_;
};

class ClientExchange : public std::enable_shared_from_this<ClientExchange> {
 public:
  void Pause();
  void Resume();
  void Cancel();  // on_done is not called afterwards
  ~ClientExchange();

 private:
  friend class Client;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kelp::http
