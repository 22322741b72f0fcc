// A response body streamed from another server as it arrives, through a
// PeerQueue (bounded memory however large the blob).
#pragma once
#include <memory>
#include <string>

#include "worker-http/http_client.h"
#include "worker-http/http_types.h"
#include "worker-http/peer_queue.h"

namespace kelp {

class ProxySource : public http::BodySource {
 public:
  explicit ProxySource(uint64_t length) : state_(std::make_shared<State>()) { state_->length = length; }
  ~ProxySource() override;

  // The exchange's body and end go here; call before the exchange delivers body bytes.
  void Bind(std::shared_ptr<http::ClientExchange> exchange) { state_->exchange = std::move(exchange); }
  std::function<void(const char*, size_t)> BodySink();
  std::function<void(Status)> DoneSink();

  uint64_t Length() const override { return state_->length; }
  bool Next(std::string* chunk) override;
  bool Failed() const override { return state_->failed; }
  bool Pending() const override { return !state_->ended && state_->queue.empty(); }
  void OnReady(std::function<void()> wake) override { state_->wake = std::move(wake); }

 private:
  // Shared with the exchange's callbacks, which may outlive this source.
  struct State {
    std::shared_ptr<http::ClientExchange> exchange;
    PeerQueue queue;
    uint64_t length = 0, received = 0;
    bool ended = false, failed = false;
    std::function<void()> wake;
    void Wake();
  };
  std::shared_ptr<State> state_;
};

}  // namespace kelp
