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
    st->queue.Push(d, n, st->exchange.get());
    st->received += n;
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

bool ProxySource::Next(std::string* chunk) { return state_->queue.Pop(chunk, state_->exchange.get()); }

}  // namespace kelp
