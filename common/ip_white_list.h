// The write white list of security.Guard: exact IPs and CIDR blocks. The HTTP
// worker checks uploads and deletes against it, the gRPC worker the
// administrative calls. An empty list lets everyone through, as Go's does.
#pragma once
#include <string>
#include <vector>

namespace kelp {

class IpWhiteList {
 public:
  // Entries that are neither an address nor a valid CIDR match nothing.
  explicit IpWhiteList(const std::vector<std::string>& entries);

  bool Allows(const std::string& host) const;
  bool empty() const { return ips_.empty() && cidrs_.empty(); }

 private:
  struct Cidr {
    bool v6 = false;
    unsigned char addr[16] = {};
    int bits = 0;
  };
  std::vector<std::string> ips_;
  std::vector<Cidr> cidrs_;
};

}  // namespace kelp
