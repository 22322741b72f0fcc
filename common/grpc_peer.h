// The caller's host as gRPC C++ names the peer of a call ("ipv4:10.0.0.5:4711",
// "ipv6:[fd00::1]:4711", possibly percent-encoded), in the form Go's
// net.IP.String gives for a TCP peer: an IPv4-mapped IPv6 address is written
// as IPv4. A peer that is not TCP is returned whole, so it matches no white
// list entry by accident.
#pragma once
#include <string>
#include <string_view>

namespace kelp {

std::string GrpcPeerHost(std::string_view peer);

}  // namespace kelp
