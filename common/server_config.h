// The server settings both the supervisor and the workers derive from flags.
#pragma once
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/security_config.h"

namespace kelp {

struct LocationConfig {
  std::string dir, idx_dir, disk_type;
  int max_volumes = 8;
};

struct ServerConfig {
  std::string ip;        // advertised address
  std::string bind_ip;   // listen address
  int port = 8080;
  int grpc_port = 0;
  std::vector<LocationConfig> locations;
  int workers = 1;
  long long file_size_limit_bytes = 256ll << 20;
  long long compaction_bytes_per_second = 0;  // -compactionMBps; 0: unthrottled
  long long maintenance_bytes_per_second = 0;  // -maintenanceMBps: volume copies
  // -volume.allowUntrustedRemoteEndpoints: copy sources on loopback,
  // link-local or unspecified addresses are refused without it (Go 4.48).
  bool allow_untrusted_remote_endpoints = false;
  double idle_timeout_s = 30;
  std::string read_mode;
  // Go's in-flight data limits (0: none) and how long a request waits for room.
  long long concurrent_upload_limit_bytes = 0;
  long long concurrent_download_limit_bytes = 0;
  double inflight_upload_timeout_s = 60;
  double inflight_download_timeout_s = 60;
  int public_port = 0;   // -port.public: a read-only listener when it differs from `port`
  bool fix_jpg_orientation = false;  // -images.fix.orientation
  int metrics_port = 0;  // -metricsPort: Prometheus text on /metrics (0: none)
  std::string metrics_ip;
  // security.toml (-securityFile, else Go's search path from -config_dir), with -whiteList
  // entries added to its white list.
  SecurityConfig security;

  // Cluster identity, as told to the master.
  std::vector<std::string> masters;  // HTTP addresses, "host:port" or "host:port.grpcPort"
  std::string public_url;            // default ip:port
  std::string id;                    // default ip:port
  std::string data_center, rack;
  int pulse_seconds = 5;
  int pre_stop_seconds = 10;
};

inline constexpr const char* kKelpVersion = "0.1.0";
// e.g. "30GB kelp-0.1.0": the volume size class of the build, as Go reports it, then kelp's version.
std::string ServerVersion();

// A master's gRPC address: "host:port.grpcPort" names it; otherwise port + 10000.
std::string MasterGrpcAddress(const std::string& master);
// A master's HTTP address: "host:port.grpcPort" -> "host:port".
std::string MasterHttpAddress(const std::string& master);

// Also reads security.toml: a malformed one is an error here, at start-up.
Result<ServerConfig> BuildServerConfig(const Flags& flags);
std::vector<std::string> SplitComma(const std::string& s);

}  // namespace kelp
