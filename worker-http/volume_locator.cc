#include "worker-http/volume_locator.h"

#include <nlohmann/json.hpp>

#include "common/server_config.h"

namespace kelp {

Status VolumeLocator::ParseLookup(int status, const std::string& body, std::vector<VolumeLocation>* out) {
  out->clear();
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Unavailable("master lookup: status " + std::to_string(status));
  if (j.contains("error") && j["error"].is_string() && !j["error"].get<std::string>().empty())
    return Status::NotFound(j["error"].get<std::string>());
  if (!j.contains("locations") || !j["locations"].is_array()) return Status::NotFound("no locations");
  for (const auto& l : j["locations"]) {
    if (!l.is_object() || !l.contains("url") || !l["url"].is_string()) continue;
    VolumeLocation loc;
    loc.url = l["url"].get<std::string>();
    loc.public_url = l.contains("publicUrl") && l["publicUrl"].is_string() ? l["publicUrl"].get<std::string>() : loc.url;
    out->push_back(std::move(loc));
  }
  if (out->empty()) return Status::NotFound("volume has no locations");
  return Status::Ok();
}

void VolumeLocator::Lookup(VolumeId vid, Done done) {
  const auto now = std::chrono::steady_clock::now();
  if (auto it = cache_.find(vid); it != cache_.end()) {
    if (it->second.expires > now) return done(Status::Ok(), it->second.locations);
    cache_.erase(it);
  }
  const std::string master = MasterHttpAddress(master_());
  if (master.empty()) return done(Status::Unavailable("no master"), {});
  auto [waiting, first] = in_flight_.try_emplace(vid);
  waiting->second.push_back(std::move(done));
  if (!first) return;
  http::ClientRequest req;
  req.host_port = master;
  req.target = "/dir/lookup?volumeId=" + std::to_string(vid);
  req.timeout_ms = 10000;
  client_->Fetch(std::move(req), 1 << 20, [this, vid](Status s, http::ClientResponse resp) {
    std::vector<VolumeLocation> locations;
    if (s.ok()) s = ParseLookup(resp.status, resp.body, &locations);
    if (s.ok()) cache_[vid] = Entry{locations, std::chrono::steady_clock::now() + std::chrono::minutes(10)};
    std::vector<Done> callers = std::move(in_flight_[vid]);
    in_flight_.erase(vid);
    for (Done& d : callers) d(s, locations);
  });
}

}  // namespace kelp
