// Bytes received from a peer server and not yet taken by the client. Reading
// from the peer pauses while more than kHighWater bytes wait and resumes once
// fewer than half do, so a relayed body (a proxied read, an assembled chunk
// manifest) holds at most about kHighWater bytes whatever its size.
#pragma once
#include <deque>
#include <string>

#include "worker-http/http_client.h"

namespace kelp {

class PeerQueue {
 public:
  static constexpr size_t kHighWater = 1 << 20;

  // Queues bytes; pauses `exchange` (when given) once over the high-water mark.
  void Push(const char* data, size_t n, http::ClientExchange* exchange);
  // Takes the oldest piece; resumes `exchange` (when given) once below half the mark.
  bool Pop(std::string* out, http::ClientExchange* exchange);
  bool empty() const { return pieces_.empty(); }
  // A new exchange starts reading: nothing is paused any more.
  void ForgetPause() { paused_ = false; }

 private:
  std::deque<std::string> pieces_;
  size_t queued_ = 0;
  bool paused_ = false;
};

}  // namespace kelp
