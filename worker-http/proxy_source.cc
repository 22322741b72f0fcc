#include "worker-http/proxy_source.h"

namespace kelp {

void ProxySource::State::Wake() {
  if (auto w = std::move(wake)) {
    wake = nullptr;
    w();
  }
}

ProxySource::~ProxySource() {
  state_->wake = nullptr;
  if (!state_->ended && state_->exchange) state_->exchange->Cancel();
}

std::function<void(const char*, size_t)> ProxySource::BodySink() {
  return [st = state_](const char* d, size_t n) {
    st->queue.emplace_back(d, n);
    st->queued += n;
    st->received += n;
    if (st->queued > kHighWater && st->exchange && !st->paused) {
      st->paused = true;
      st->exchange->Pause();
    }
    st->Wake();
  };
}

std::function<void(Status)> ProxySource::DoneSink() {
  return [st = state_](Status s) {
    st->ended = true;
    // A body shorter than announced is a failure: the client must not take it as whole.
    if (!s.ok() || st->received != st->length) st->failed = true;
    st->Wake();
  };
}

bool ProxySource::Next(std::string* chunk) {
  State& st = *state_;
  if (st.queue.empty()) return false;
  *chunk = std::move(st.queue.front());
  st.queue.pop_front();
  st.queued -= chunk->size();
  if (st.paused && st.queued <= kHighWater / 2 && st.exchange) {
    st.paused = false;
    st.exchange->Resume();
  }
  return true;
}

}  // namespace kelp
