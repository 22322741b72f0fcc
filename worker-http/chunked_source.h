// The body of a chunk-manifest read: the chunks (needles on any volume server)
// fetched one after the other over HTTP and streamed as one body. Only the
// parts of chunks inside the requested span are asked for (with a Range when a
// chunk is cut). Fetched bytes wait in a PeerQueue, so memory per read stays
// bounded.
#pragma once
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker-http/chunk_manifest.h"
#include "worker-http/http_client.h"
#include "worker-http/http_types.h"
#include "worker-http/volume_locator.h"

namespace kelp {

struct ChunkFetcher {
  http::Client* client = nullptr;
  VolumeLocator* locator = nullptr;
  // A read token for a chunk's file id, or "" when reads are not signed.
  std::function<std::string(const std::string& fid)> read_jwt;
};

class ChunkedSource : public http::BodySource {
 public:
  ChunkedSource(ChunkFetcher fetcher, std::vector<ChunkInfo> chunks, int64_t start, int64_t length);
  ~ChunkedSource() override;

  // Starts fetching; `first` is told when the first chunk's server has
  // answered (OK) or that it failed, with the message Go would put in its 500.
  // Without a Start, the first Next() starts the fetch.
  void Start(std::function<void(Status)> first);

  uint64_t Length() const override { return uint64_t(length_); }
  bool Next(std::string* chunk) override;
  bool Failed() const override;
  bool Pending() const override;
  void OnReady(std::function<void()> wake) override;

 private:
  struct State;
  std::shared_ptr<State> state_;
  int64_t length_;
};

}  // namespace kelp
