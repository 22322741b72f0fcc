// security.toml as a volume server reads it (Go's util.LoadSecurityConfiguration):
// the file-id JWT keys and the write white list.
#pragma once
#include <string>
#include <vector>

#include "common/status.h"

namespace kelp {

struct SecurityConfig {
  std::string jwt_write_key;  // jwt.signing.key
  std::string jwt_read_key;   // jwt.signing.read.key
  std::vector<std::string> white_list;  // guard.white_list: IPs or CIDRs
  std::string source;  // the file read, empty when none was found
};

// Reads `path`, or when empty the first security.toml in Go's places
// (., ~/.seaweedfs, /usr/local/etc/seaweedfs, /etc/seaweedfs); none is no error.
Result<SecurityConfig> LoadSecurityConfig(const std::string& path);

}  // namespace kelp
