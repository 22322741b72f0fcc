#include "worker-http/peer_queue.h"

namespace kelp {

void PeerQueue::Push(const char* data, size_t n, http::ClientExchange* exchange) {
  if (n > 0) {
    pieces_.emplace_back(data, n);
    queued_ += n;
  }
  if (queued_ > kHighWater && exchange && !paused_) {
    paused_ = true;
    exchange->Pause();
  }
}

bool PeerQueue::Pop(std::string* out, http::ClientExchange* exchange) {
  if (pieces_.empty()) return false;
  *out = std::move(pieces_.front());
  pieces_.pop_front();
  queued_ -= out->size();
  if (paused_ && queued_ <= kHighWater / 2 && exchange) {
    paused_ = false;
    exchange->Resume();
  }
  return true;
}

}  // namespace kelp
