// Where a volume lives, asked of the master (`/dir/lookup`) and cached for ten
// minutes, as Go's volume server caches its lookups. Concurrent lookups of one
// volume share a single request to the master. Used to proxy or redirect
// reads of volumes held elsewhere and to find a volume's other replicas.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "worker-http/http_client.h"

namespace kelp {

struct VolumeLocation {
  std::string url;         // "host:port"
  std::string public_url;
};

class VolumeLocator {
 public:
  using Done = std::function<void(Status, const std::vector<VolumeLocation>&)>;
  // `master` yields the master to ask now ("host:port" or "host:port.grpcPort").
  VolumeLocator(http::Client* client, std::function<std::string()> master) : client_(client), master_(std::move(master)) {}

  void Lookup(VolumeId vid, Done done);
  void Invalidate(VolumeId vid) { cache_.erase(vid); }

  // Parses a /dir/lookup answer; exposed for tests.
  static Status ParseLookup(int status, const std::string& body, std::vector<VolumeLocation>* out);

 private:
  struct Entry {
    std::vector<VolumeLocation> locations;
    std::chrono::steady_clock::time_point expires;
  };
  http::Client* client_;
  std::function<std::string()> master_;
  std::unordered_map<VolumeId, Entry> cache_;
  std::unordered_map<VolumeId, std::vector<Done>> in_flight_;  // callers waiting on the master
};

}  // namespace kelp
