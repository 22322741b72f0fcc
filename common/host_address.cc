#include "common/host_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <vector>

namespace kelp {
namespace {

struct Candidate {
  unsigned index;  // the interface's; getifaddrs order is kept within one
  std::string address;
};

bool IsLoopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return (ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr) >> 24) == 127;
  const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(&a) || (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127);
}

}  // namespace

std::string DetectedHostAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::vector<Candidate> v4, v6;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    const sockaddr* sa = i->ifa_addr;
    if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) || IsLoopback(sa)) continue;
    char text[INET6_ADDRSTRLEN] = {0};
    const unsigned index = if_nametoindex(i->ifa_name);
    if (sa->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
      v4.push_back({index, text});
    } else {
      const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(&a)) continue;
      inet_ntop(AF_INET6, &a, text, sizeof text);
      v6.push_back({index, text});
    }
  }
  freeifaddrs(list);
  auto first = [](std::vector<Candidate>& c) {
    std::stable_sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.index < b.index; });
    return c.front().address;
  };
  if (!v4.empty()) return first(v4);
  if (!v6.empty()) return first(v6);
  return "localhost";
}

}  // namespace kelp
