// Go's handlers return plain errors, which gRPC-go sends as UNKNOWN with the
// error's text: the answer kelp gives wherever Go gives one of those.
#pragma once
#include <grpcpp/support/status.h>

#include <string>

namespace kelp {

inline grpc::Status GoError(const std::string& message) { return grpc::Status(grpc::StatusCode::UNKNOWN, message); }

}  // namespace kelp
