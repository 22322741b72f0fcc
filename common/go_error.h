// Go's handlers return plain errors, which gRPC-go sends as UNKNOWN with the
// error's text: the answer kelp gives wherever Go gives one of those.
#pragma once
#include <grpcpp/support/status.h>

#include <string>

namespace kelp {

inline grpc::Status GoError(const std::string& message) { return grpc::Status(grpc::StatusCode::UNKNOWN, message); }

// A failed call as gRPC-go prints it: "rpc error: code = Unknown desc = ...".
inline std::string GoRpcError(const grpc::Status& s) {
  static const char* const kNames[] = {"OK",          "Canceled",         "Unknown",  "InvalidArgument", "DeadlineExceeded", "NotFound",
                                       "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
                                       "OutOfRange",  "Unimplemented",    "Internal", "Unavailable",     "DataLoss",         "Unauthenticated"};
  const int code = int(s.error_code());
  const std::string name = code >= 0 && code < int(sizeof kNames / sizeof kNames[0]) ? kNames[code] : "Code(" + std::to_string(code) + ")";
  return "rpc error: code = " + name + " desc = " + s.error_message();
}

}  // namespace kelp
