// What every worker does with the supervisor channel on its side: adopt fd 3 at
// start, read its configuration from Hello, and decode ServerState broadcasts.
#pragma once
#include <string>

#include "common/server_config.h"
#include "common/status.h"
#include "ipc/channel.h"

namespace kelp::ipc {

inline constexpr int kSupervisorFd = 3;

// Ignores SIGPIPE, dies with the supervisor, and makes fd 3 close-on-exec and
// non-blocking. False (after telling stderr) when fd 3 is not open: the binary
// was started by hand.
bool AdoptSupervisorChannel(const char* binary_name);

// The server configuration carried by a Hello message (the server's flags).
Result<ServerConfig> ConfigFromHello(const Message& hello);

// The registration state the supervisor broadcasts (ServerState).
struct ServerStateView {
  bool registered = false;   // heartbeating to a master
  bool maintenance = false;  // mutations are refused
  uint64_t volume_size_limit = 0;
  std::string master;  // the master heartbeated to, "" when none
};
bool DecodeServerState(const Message& m, ServerStateView* out);

}  // namespace kelp::ipc
