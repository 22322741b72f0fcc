// The server settings both the supervisor and the workers derive from flags.
#pragma once
#include <string>
#include <vector>

#include "common/flags.h"

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
  double idle_timeout_s = 30;
  std::string read_mode;
};

Result<ServerConfig> BuildServerConfig(const Flags& flags);
std::vector<std::string> SplitComma(const std::string& s);

}  // namespace kelp
