#include "common/ip_white_list.h"

#include <arpa/inet.h>

#include <cstdlib>

namespace kelp {

IpWhiteList::IpWhiteList(const std::vector<std::string>& entries) {
  for (const std::string& item : entries) {
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

bool IpWhiteList::Allows(const std::string& host) const {
  if (empty()) return true;
  for (const auto& w : ips_)
    if (w == host) return true;
  unsigned char addr[16] = {};
  const bool v6 = host.find(':') != std::string::npos;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), addr) != 1) return false;
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

}  // namespace kelp
