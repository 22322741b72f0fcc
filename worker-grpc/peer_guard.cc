#include "worker-grpc/peer_guard.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace kelp {
namespace {

std::string HostOf(const std::string& host_port) {
  std::string host = host_port;
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.find(']');
    return close == std::string::npos ? host : host.substr(1, close - 1);
  }
  const size_t colon = host.rfind(':');
  return colon == std::string::npos ? host : host.substr(0, colon);
}

// The reason an address is refused, "" if it is not.
std::string Refusal(const std::string& endpoint, const sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    const uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
    const std::string q = "remote endpoint \"" + endpoint + "\" ";
    if (a == 0xA9FEA9FEu) return q + "targets instance metadata service " + text;
    if ((a >> 24) == 127) return q + "resolves to loopback address " + text;
    if (a == 0) return q + "resolves to unspecified address " + text;
    if ((a >> 16) == 0xA9FE || (a >> 8) == 0xE00000) return q + "resolves to link-local address " + text;
    return "";
  }
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    inet_ntop(AF_INET6, &a, text, sizeof text);
    const std::string q = "remote endpoint \"" + endpoint + "\" ";
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      sockaddr_in v4{};
      v4.sin_family = AF_INET;
      std::memcpy(&v4.sin_addr, a.s6_addr + 12, 4);
      return Refusal(endpoint, reinterpret_cast<const sockaddr*>(&v4));
    }
    if (IN6_IS_ADDR_LOOPBACK(&a)) return q + "resolves to loopback address " + text;
    if (IN6_IS_ADDR_UNSPECIFIED(&a)) return q + "resolves to unspecified address " + text;
    if (IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_MC_LINKLOCAL(&a)) return q + "resolves to link-local address " + text;
    if (IN6_IS_ADDR_MC_NODELOCAL(&a)) return q + "resolves to interface-local address " + text;
  }
  return "";
}

}  // namespace

std::string BlockedPeerAddress(const std::string& host_port) {
  const std::string host = HostOf(host_port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found)
    return "resolve remote endpoint host \"" + host + "\": no such host";
  std::string why;
  for (addrinfo* a = found; a && why.empty(); a = a->ai_next) why = Refusal(host_port, a->ai_addr);
  freeaddrinfo(found);
  return why;
}

}  // namespace kelp
