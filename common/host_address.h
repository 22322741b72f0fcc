// The address a server names itself by when -ip is empty, chosen as Go's
// util.DetectedHostAddress does: the first IPv4 address of an interface
// that is up and not loopback, else the first such IPv6 address that is not
// link-local, else "localhost" (interfaces in index order).
#pragma once
#include <string>

namespace kelp {

std::string DetectedHostAddress();

}  // namespace kelp
