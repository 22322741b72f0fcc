// kelp-worker-http: serves the HTTP API. Started by the supervisor only, with
// fd 3 connected to it; everything else (flags, sockets, volumes) arrives there.
#include <malloc.h>
#include <unistd.h>
#include <sodium.h>
#include <uv.h>

#include <memory>

#include "common/log.h"
#include "common/server_config.h"
#include "ipc/shared_gauges.h"
#include "ipc/worker_side.h"
#include "worker-http/handlers.h"
#include "worker-http/http_server.h"
#include "worker-http/image_ops.h"
#include "worker-http/metrics_export.h"
#include "worker-http/ec/ec_reader.h"
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
  EcPeers ec_peers;
  std::unique_ptr<EcReader> ec_reader;
  std::unique_ptr<http::Server> server, public_server, metrics_server;
  std::vector<int> listen_fds;
  int gauges_fd = -1;
  int gauge_slot = 0;
  ipc::SharedGauges* gauges = nullptr;
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
      ipc::Hello hello{};
      if (!m.AsPrefix(&hello) || m.fds.empty()) {
        KLOG_ERROR("hello without sockets");
        _exit(2);
      }
      // The listeners, then the shared gauges (ipc::Hello).
      listen_fds.assign(m.fds.begin(), m.fds.end() - 1);
      gauges_fd = m.fds.back();
      gauge_slot = int(hello.gauge_slot);
      m.fds.clear();
      if (auto g = ipc::MapSharedGauges(gauges_fd); g.ok()) gauges = g.value();
      else KLOG_ERROR("shared gauges: %s (running without limits and metrics)", g.status().message().c_str());
      configured = true;
      break;
    }
    case ipc::MsgType::kVolumeAttach: {
      ipc::VolumeAttach a;
      const bool decoded = m.AsPrefix(&a);
      if (Status s = volumes.Attach(m); !s.ok()) KLOG_ERROR("attach volume: %s", s.message().c_str());
      // Acknowledged like a segment: a re-attach (after a vacuum) waits for it.
      else if (decoded) link->SendStruct(ipc::MsgType::kSegmentAck, ipc::VolumeRef{a.volume_id, 0, a.generation});
      break;
    }
    case ipc::MsgType::kVolumeDetach: {
      ipc::VolumeRef ref;
      if (m.As(&ref)) volumes.Detach(ref.volume_id);
      break;
    }
    case ipc::MsgType::kSegmentReplaced: {
      ipc::VolumeRef ref;
      if (!m.As(&ref) || m.fds.size() != 1) break;
      // A volume this worker does not have is read through no segment at
      // all: it is acknowledged as switched. A segment it cannot map is not,
      // and the supervisor replaces this worker at its deadline.
      auto gen = volumes.Find(ref.volume_id) ? volumes.ReplaceSegment(ref.volume_id, m.fds[0]) : Result<uint64_t>(ref.generation);
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
      if (public_server) public_server->Drain([] {});
      if (metrics_server) metrics_server->Drain([] {});
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
  handlers = std::make_unique<Handlers>(loop, config, &volumes, link.get(), &cluster, gauges, gauge_slot);
  ec_reader = std::make_unique<EcReader>(loop, link.get(), &ec_peers);
  handlers->set_ec_read([this](const std::string& master, VolumeId vid, NeedleId id, std::function<void(EcNeedleRead)> done) {
    ec_reader->Read(master, vid, id, std::move(done));
  });
  handlers->set_ec_delete([this](const std::string& master, VolumeId vid, NeedleId id, Cookie cookie, std::function<void(EcNeedleDelete)> done) {
    ec_reader->Delete(master, vid, id, cookie, std::move(done));
  });
  http::ServerLimits limits;
  // Multipart framing around a file of the maximum size still fits.
  limits.max_body_bytes = uint64_t(config.file_size_limit_bytes) + (1 << 20);
  limits.idle_timeout_ms = uint64_t(config.idle_timeout_s * 1000);
  server = std::make_unique<http::Server>(loop, [this](http::Request& r, http::Respond respond) {
    handlers->Handle(r, std::move(respond));
  }, limits, ServerVersion());
  server->SetAdmission(handlers->UploadAdmission());
  const bool has_public = config.public_port != config.port;
  const bool has_metrics = config.metrics_port > 0;
  if (listen_fds.size() != 1 + size_t(has_public) + size_t(has_metrics)) {
    KLOG_ERROR("expected %d listening sockets, got %zu", 1 + int(has_public) + int(has_metrics), listen_fds.size());
    _exit(2);
  }
  size_t next_fd = 0;
  auto listen = [&](http::Server* s) {
    const int fd = listen_fds[next_fd++];
    if (!s->Listen(fd)) {
      KLOG_ERROR("cannot listen on inherited socket %d", fd);
      _exit(1);
    }
  };
  listen(server.get());
  if (has_public) {
    public_server = std::make_unique<http::Server>(loop, [this](http::Request& r, http::Respond respond) {
      handlers->HandlePublic(r, std::move(respond));
    }, limits, ServerVersion());
    listen(public_server.get());
  }
  if (has_metrics) {
    metrics_server = std::make_unique<http::Server>(loop, [this](http::Request& r, http::Respond respond) {
      http::Response resp;
      if (r.path == "/metrics" && gauges) {
        resp.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        resp.body = PrometheusText(*gauges, volumes, config);
      } else {
        resp.status = 404;
        resp.Set("Content-Type", "text/plain; charset=utf-8");
        resp.Set("X-Content-Type-Options", "nosniff");
        resp.body = "404 page not found\n";
      }
      respond(std::move(resp));
    }, http::ServerLimits{}, ServerVersion());
    listen(metrics_server.get());
  }
  link->Send(ipc::MsgType::kReady, std::string_view());
}

}  // namespace

int main(int, char**) {
  SetLogRole("http");
  // Allocations below kBodyHeapLimit come from the heap and are reused there.
  // With glibc's defaults the pages of large request bodies went back to the
  // kernel between requests, and every 1 MB upload faulted in and zeroed
  // fresh pages. A body string grows by doubling from its 4 MiB reservation,
  // so bodies of up to 8 MiB with a Content-Length stay on the heap.
  // Memory stays with the worker until it is trimmed: free space above
  // kTrimLimit at the top of a heap at once, and all free space when a crowd
  // of at least 64 connections has gone (http_server); below that, up to
  // kTrimLimit per heap may stay.
  constexpr int kBodyHeapLimit = 16 << 20, kTrimLimit = 64 << 20;
  mallopt(M_MMAP_THRESHOLD, kBodyHeapLimit);
  mallopt(M_TRIM_THRESHOLD, kTrimLimit);
  if (!ipc::AdoptSupervisorChannel("kelp-worker-http")) return 2;
  if (sodium_init() < 0) {
    std::fprintf(stderr, "libsodium failed to initialise\n");
    return 1;
  }
  if (!InitImages()) {
    std::fprintf(stderr, "libvips failed to initialise\n");
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
