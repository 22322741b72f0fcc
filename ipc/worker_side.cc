#include "ipc/worker_side.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "common/flags.h"
#include "ipc/build_id.h"
#include "ipc/messages.h"

namespace kelp::ipc {

bool AdoptSupervisorChannel(const char* binary_name) {
  signal(SIGPIPE, SIG_IGN);
  // Never outlive the supervisor.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (fcntl(kSupervisorFd, F_GETFD) < 0) {
    std::fprintf(stderr, "%s is started by kelp-volume, not by hand\n", binary_name);
    return false;
  }
  fcntl(kSupervisorFd, F_SETFD, FD_CLOEXEC);
  fcntl(kSupervisorFd, F_SETFL, fcntl(kSupervisorFd, F_GETFL) | O_NONBLOCK);
  return true;
}

Result<ServerConfig> ConfigFromHello(const Message& m) {
  Hello h;
  if (m.type() != MsgType::kHello || !m.AsPrefix(&h)) return Status::Invalid("not a Hello message");
  h.build_id[sizeof h.build_id - 1] = '\0';
  if (std::strncmp(h.build_id, BuildId(), sizeof h.build_id) != 0)
    return Status::Invalid(std::string("refusing a supervisor of another build (supervisor ") + h.build_id + ", this worker " + BuildId() +
                           "): restart kelp-volume after an upgrade instead of reloading it");
  std::vector<std::string> args;
  std::string_view rest = m.Tail(sizeof h);
  for (uint32_t i = 0; i < h.argc && !rest.empty(); ++i) {
    const size_t nul = rest.find('\0');
    args.emplace_back(rest.substr(0, nul));
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  }
  auto flags = Flags::Parse(args);
  if (!flags.ok()) return flags.status();
  return BuildServerConfig(flags.value());
}

bool DecodeServerState(const Message& m, ServerStateView* out) {
  ServerState st;
  if (!m.AsPrefix(&st) || m.payload.size() != sizeof st + st.master_length) return false;
  out->registered = st.registered;
  out->maintenance = st.maintenance;
  out->volume_size_limit = st.volume_size_limit;
  out->master = std::string(m.Tail(sizeof st).substr(0, st.master_length));
  return true;
}

}  // namespace kelp::ipc
