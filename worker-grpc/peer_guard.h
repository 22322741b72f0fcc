// Which peers a copy may pull from, as Go 4.48 decides it without
// -volume.allowUntrustedRemoteEndpoints: never loopback, unspecified,
// link-local or the cloud metadata address (private networks are fine: that
// is where peers live). And gRPC errors worded as Go prints them.
#pragma once
#include <grpcpp/grpcpp.h>

#include <string>

namespace kelp {

// "" when `host_port` may be dialled, else Go's reason
// (`remote endpoint "h:p" resolves to loopback address 127.0.0.1`).
std::string BlockedPeerAddress(const std::string& host_port);

}  // namespace kelp
