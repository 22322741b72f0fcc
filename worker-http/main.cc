// kelp-worker-http: serves the HTTP API. Started by the supervisor only, with
// fd 3 connected to it; everything else (flags, sockets, volumes) arrives there.
#include <unistd.h>
#include <sodium.h>
#include <uv.h>

#include <memory>

#include "common/log.h"
#include "common/server_config.h"
#include "ipc/worker_side.h"
#include "worker-http/handlers.h"
#include "worker-http/http_server.h"
#include "worker-http/supervisor_link.h"
#include "worker-http/volume_table.h"

using namespace kelp;

namespace {

struct Worker {
  uv_loop_t* loop = nullptr;
  ServerConfig config;
  VolumeTable volumes;
  std::unique_ptr<SupervisorLink> link;
  std::unique_ptr<Handlers> handlers;
  std::unique_ptr<http::Server> server;
  std::vector<int> listen_fds;
  ipc::ServerStateView cluster;
  bool configured = false;

  void OnControl(ipc::Message& m);
  void Start();
};

void Worker::OnControl(ipc::Message& m) {
  switch (m.type()) {
    case ipc::MsgType::kHello: {
      auto cfg = ipc::ConfigFromHello(m);
      if (!cfg.ok()) {
        KLOG_ERROR("bad configuration from supervisor: %s", cfg.status().message().c_str());
        _exit(2);
      }
      config = cfg.value();
      listen_fds = m.fds;
      m.fds.clear();
      configured = true;
      break;
    }
    case ipc::MsgType::kVolumeAttach:
      if (Status s = volumes.Attach(m); !s.ok()) KLOG_ERROR("attach volume: %s", s.message().c_str());
      break;
    case ipc::MsgType::kVolumeDetach: {
      ipc::VolumeRef ref;
      if (m.As(&ref)) volumes.Detach(ref.volume_id);
      break;
    }
    case ipc::MsgType::kSegmentReplaced: {
      ipc::VolumeRef ref;
      if (!m.As(&ref) || m.fds.size() != 1) break;
      auto gen = volumes.ReplaceSegment(ref.volume_id, m.fds[0]);
      if (gen.ok()) link->SendStruct(ipc::MsgType::kSegmentAck, ipc::VolumeRef{ref.volume_id, 0, gen.value()});
      break;
    }
    case ipc::MsgType::kServerState:
      ipc::DecodeServerState(m, &cluster);
      break;
    case ipc::MsgType::kAttachDone:
      if (!server) Start();
      break;
    case ipc::MsgType::kDrain:
      if (handlers) handlers->set_draining();
      if (server) server->Drain([] { _exit(0); });
      else _exit(0);
      break;
    default:
      KLOG_WARN("unexpected message type %u from supervisor", unsigned(m.header.type));
  }
}

void Worker::Start() {
  if (!configured) {
    KLOG_ERROR("volumes arrived before configuration");
    _exit(2);
  }
  handlers = std::make_unique<Handlers>(loop, config, &volumes, link.get(), &cluster);
  http::ServerLimits limits;
  // Multipart framing around a file of the maximum size still fits.
  limits.max_body_bytes = uint64_t(config.file_size_limit_bytes) + (1 << 20);
  limits.idle_timeout_ms = uint64_t(config.idle_timeout_s * 1000);
  server = std::make_unique<http::Server>(loop, [this](http::Request& r, http::Respond respond) {
    handlers->Handle(r, std::move(respond));
  }, limits, ServerVersion());
  for (int fd : listen_fds) {
    if (!server->Listen(fd)) {
      KLOG_ERROR("cannot listen on inherited socket %d", fd);
      _exit(1);
    }
  }
  link->Send(ipc::MsgType::kReady, std::string_view());
}

}  // namespace

int main(int, char**) {
  SetLogRole("http");
  if (!ipc::AdoptSupervisorChannel("kelp-worker-http")) return 2;
  if (sodium_init() < 0) {
    std::fprintf(stderr, "libsodium failed to initialise\n");
    return 1;
  }
  Worker w;
  w.loop = uv_default_loop();
  w.link = std::make_unique<SupervisorLink>(w.loop, ipc::kSupervisorFd, [&w](ipc::Message& m) { w.OnControl(m); });
  uv_signal_t term;
  uv_signal_init(w.loop, &term);
  term.data = &w;
  // SIGTERM (supervisor gone): drain like a reload.
  uv_signal_start(&term, [](uv_signal_t* h, int) {
    auto* w = static_cast<Worker*>(h->data);
    if (w->server) w->server->Drain([] { _exit(0); });
    else _exit(0);
  }, SIGTERM);
  return uv_run(w.loop, UV_RUN_DEFAULT);
}
