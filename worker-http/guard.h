// Who may do what (Go's security.Guard): the write white list (-whiteList and
// security.toml's guard.white_list, IPs or CIDRs) for uploads and deletes, and
// file-id JWTs (security.toml's jwt.signing.key for writes, jwt.signing.read.key
// for reads) taken from the `jwt` parameter, `Authorization: Bearer` or the `AT`
// cookie, in that order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/server_config.h"
#include "common/status.h"
#include "worker-http/http_types.h"

namespace kelp {

class Guard {
 public:
  // Reads security.toml: `config.security_file`, else the first of Go's places
  // (., ~/.seaweedfs, /usr/local/etc/seaweedfs, /etc/seaweedfs) that has one.
  static Result<Guard> Load(const ServerConfig& config);
  static Guard FromKeys(std::string write_key, std::string read_key, const std::string& white_list);

  bool WhiteListed(const std::string& ip) const;
  // `vid` and `fid` as parsed from the path; a "_delta" suffix of fid is ignored.
  bool JwtAllows(const http::Request& r, const std::string& vid, const std::string& fid, bool write, int64_t now_s) const;
  const std::string& source() const { return source_; }

 private:
  struct Cidr {
    bool v6 = false;
    unsigned char addr[16] = {};
    int bits = 0;
  };
  void AddWhiteList(const std::string& comma_separated);

  std::string write_key_, read_key_, source_;
  std::vector<std::string> ips_;
  std::vector<Cidr> cidrs_;
};

// security.GetJwt: the `jwt` query parameter, a Bearer token, or the AT cookie.
std::string JwtOf(const http::Request& r);

}  // namespace kelp
