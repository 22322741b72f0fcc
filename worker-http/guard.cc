#include "worker-http/guard.h"

#include <strings.h>

#include "worker-http/jwt.h"

namespace kelp {

std::string JwtOf(const http::Request& r) {
  std::string token = r.Query("jwt");
  if (token.empty()) {
    const std::string bearer = r.HeaderOr("authorization");
    if (bearer.size() > 7 && strncasecmp(bearer.c_str(), "BEARER", 6) == 0) token = bearer.substr(7);
  }
  if (token.empty()) {
    for (const auto& [k, v] : r.headers) {
      if (k != "cookie") continue;
      size_t pos = 0;
      while (pos < v.size()) {
        size_t end = v.find(';', pos);
        if (end == std::string::npos) end = v.size();
        std::string pair = v.substr(pos, end - pos);
        pair.erase(0, pair.find_first_not_of(' '));
        if (pair.rfind("AT=", 0) == 0) return pair.substr(3);
        pos = end + 1;
      }
    }
  }
  return token;
}

Guard::Guard(const SecurityConfig& config)
    : write_key_(config.jwt_write_key), read_key_(config.jwt_read_key), white_list_(config.white_list) {}

bool Guard::JwtAllows(const http::Request& r, const std::string& vid, const std::string& fid, bool write, int64_t now_s) const {
  const std::string& key = write ? write_key_ : read_key_;
  if (key.empty()) return true;
  const std::string token = JwtOf(r);
  if (token.empty()) return false;
  std::string id = fid;
  if (const size_t us = id.rfind('_'); us != std::string::npos && us > 0) id.resize(us);
  return VerifyFileIdJwt(token, key, vid + "," + id, now_s);
}

}  // namespace kelp
