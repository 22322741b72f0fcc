#include "common/security_config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <toml++/toml.h>

#include "common/server_config.h"

namespace kelp {

namespace {

std::string ExpandHome(const std::string& dir, const char* home) {
  if (dir.empty() || dir[0] != '~' || !home) return dir;
  return std::string(home) + dir.substr(1);
}

}  // namespace

Result<SecurityConfig> LoadSecurityConfig(const std::string& explicit_path, const std::string& config_dir) {
  std::string path = explicit_path;
  if (path.empty()) {
    const char* home = getenv("HOME");
    for (const std::string& dir : {ExpandHome(config_dir, home), std::string("."), home ? std::string(home) + "/.seaweedfs" : std::string(),
                                   std::string("/usr/local/etc/seaweedfs"), std::string("/etc/seaweedfs")}) {
      std::error_code ec;
      if (!dir.empty() && std::filesystem::is_regular_file(dir + "/security.toml", ec)) {
        path = dir + "/security.toml";
        break;
      }
    }
  }
  SecurityConfig c;
  if (path.empty()) return c;
  if (FILE* probe = std::fopen(path.c_str(), "r")) {
    std::fclose(probe);
  } else {
    return Status::Invalid("open " + path + ": " + std::strerror(errno));
  }
  try {
    const toml::table t = toml::parse_file(path);
    c.jwt_write_key = t["jwt"]["signing"]["key"].value_or(std::string());
    c.jwt_read_key = t["jwt"]["signing"]["read"]["key"].value_or(std::string());
    if (auto list = t["guard"]["white_list"].value<std::string>()) c.white_list = SplitComma(*list);
    if (auto arr = t["guard"]["white_list"].as_array())
      for (const auto& e : *arr)
        if (auto s = e.value<std::string>())
          for (auto& item : SplitComma(*s)) c.white_list.push_back(std::move(item));
  } catch (const toml::parse_error& e) {
    return Status::Invalid(path + ": " + std::string(e.description()));
  }
  c.source = path;
  return c;
}

}  // namespace kelp
