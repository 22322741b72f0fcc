// Who may do what (Go's security.Guard), from the server's SecurityConfig: the
// write white list (IPs or CIDRs) for uploads and deletes, and file-id JWTs (the
// write key for uploads and deletes, the read key for reads) taken from the
// `jwt` parameter, `Authorization: Bearer` or the `AT` cookie, in that order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/ip_white_list.h"
#include "common/security_config.h"
#include "worker-http/http_types.h"

namespace kelp {

class Guard {
 public:
  explicit Guard(const SecurityConfig& config);

  bool WhiteListed(const std::string& ip) const { return white_list_.Allows(ip); }
  // `vid` and `fid` as parsed from the path; a "_delta" suffix of fid is ignored.
  bool JwtAllows(const http::Request& r, const std::string& vid, const std::string& fid, bool write, int64_t now_s) const;

 private:
  std::string write_key_, read_key_;
  IpWhiteList white_list_;
};

// security.GetJwt: the `jwt` query parameter, a Bearer token, or the AT cookie.
std::string JwtOf(const http::Request& r);

}  // namespace kelp
