#include "worker-http/guard.h"

#include <arpa/inet.h>
#include <strings.h>

#include <cstdlib>
#include <cstring>

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

Guard::Guard(const SecurityConfig& config) : write_key_(config.jwt_write_key), read_key_(config.jwt_read_key) {
  for (const std::string& item : config.white_list) {
    const size_t slash = item.find('/');
    if (slash == std::string::npos) {
      ips_.push_back(item);
      continue;
    }
    Cidr c;
    const std::string ip = item.substr(0, slash);
    c.bits = std::atoi(item.c_str() + slash + 1);
    c.v6 = ip.find(':') != std::string::npos;
    if (inet_pton(c.v6 ? AF_INET6 : AF_INET, ip.c_str(), c.addr) == 1 && c.bits >= 0 && c.bits <= (c.v6 ? 128 : 32))
      cidrs_.push_back(c);
  }
}

bool Guard::WhiteListed(const std::string& ip) const {
  if (ips_.empty() && cidrs_.empty()) return true;
  for (const auto& w : ips_)
    if (w == ip) return true;
  unsigned char addr[16] = {};
  const bool v6 = ip.find(':') != std::string::npos;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, ip.c_str(), addr) != 1) return false;
  for (const Cidr& c : cidrs_) {
    if (c.v6 != v6) continue;
    int bits = c.bits, i = 0;
    bool match = true;
    for (; bits >= 8; bits -= 8, ++i) match = match && addr[i] == c.addr[i];
    if (match && bits > 0) {
      const unsigned char mask = static_cast<unsigned char>(0xff << (8 - bits));
      match = (addr[i] & mask) == (c.addr[i] & mask);
    }
    if (match) return true;
  }
  return false;
}

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
