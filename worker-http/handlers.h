// Routes requests to the blob and admin handlers, as Go's volume server mux
// does (upstream: weed/server/volume_server.go, volume_server_handlers*.go).
#pragma once
#include <string>

#include "common/server_config.h"
#include "worker-http/http_types.h"
#include "worker-http/supervisor_link.h"
#include "worker-http/volume_table.h"

namespace kelp {


// The server-wide facts the supervisor broadcasts (ipc::ServerState).
struct ClusterState {
  bool registered = false;  // heartbeating to a master
  bool maintenance = false;
  uint64_t volume_size_limit = 0;
  std::string master;
};

class Handlers {
 public:
  Handlers(const ServerConfig& config, VolumeTable* volumes, SupervisorLink* link, const ClusterState* cluster)
      : config_(config), volumes_(volumes), link_(link), cluster_(cluster) {}

  void Handle(http::Request& r, http::Respond respond);
  void set_draining() { draining_ = true; }

 private:
  void Read(http::Request& r, http::Respond respond);
  void Write(http::Request& r, http::Respond respond);
  void Delete(http::Request& r, http::Respond respond);
  void Status(http::Request& r, http::Respond respond);
  void Healthz(http::Request& r, http::Respond respond);

  const ServerConfig& config_;
  VolumeTable* volumes_;
  SupervisorLink* link_;
  const ClusterState* cluster_;
  bool draining_ = false;
};

// Common response decorations (Server header, CORS) and JSON bodies.
bool WantsPretty(const http::Request& r);
http::Response JsonResponse(const http::Request& r, int status, std::string json);
http::Response JsonResponse(bool pretty, int status, std::string json);
http::Response JsonError(bool pretty, int status, const std::string& message);
http::Response JsonError(const http::Request& r, int status, const std::string& message);
http::Response Empty(int status);

}  // namespace kelp
