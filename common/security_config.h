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

// Reads `path`, or when empty the first security.toml in Go's search order:
// `config_dir` (-config_dir, a leading "~" is the home directory), the
// working directory, ~/.seaweedfs, /usr/local/etc/seaweedfs, /etc/seaweedfs.
// Finding none is no error; a file that cannot be read or parsed is one (Go
// would go on without security; kelp refuses to start instead).
Result<SecurityConfig> LoadSecurityConfig(const std::string& path, const std::string& config_dir = "");

}  // namespace kelp
