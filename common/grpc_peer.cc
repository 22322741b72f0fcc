#include "common/grpc_peer.h"

#include <arpa/inet.h>

#include <algorithm>

namespace kelp {
namespace {

std::string PercentDecoded(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(char(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Go's net.IP.String: canonical text, IPv4-mapped addresses as IPv4.
std::string Canonical(std::string host, bool v6) {
  if (const size_t zone = host.find('%'); v6 && zone != std::string::npos) host.resize(zone);
  unsigned char addr[16];
  if (!v6) {
    if (inet_pton(AF_INET, host.c_str(), addr) != 1) return host;
  } else {
    if (inet_pton(AF_INET6, host.c_str(), addr) != 1) return host;
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, addr)) {
      char text[INET_ADDRSTRLEN];
      return inet_ntop(AF_INET, addr + 12, text, sizeof text) ? text : host;
    }
  }
  char text[INET6_ADDRSTRLEN];
  return inet_ntop(v6 ? AF_INET6 : AF_INET, addr, text, sizeof text) ? text : host;
}

}  // namespace

std::string GrpcPeerHost(std::string_view raw) {
  const std::string peer = PercentDecoded(raw);
  if (peer.rfind("ipv4:", 0) == 0) {
    const std::string rest = peer.substr(5);
    return Canonical(rest.substr(0, rest.rfind(':')), false);
  }
  if (peer.rfind("ipv6:", 0) == 0) {
    std::string rest = peer.substr(5);
    if (!rest.empty() && rest[0] == '[') {
      const size_t close = rest.find(']');
      if (close != std::string::npos) return Canonical(rest.substr(1, close - 1), true);
    }
    return Canonical(rest, true);
  }
  return peer;
}

}  // namespace kelp
