// kelp-volume: the supervisor. Owns the volume files, the listening sockets and
// the index segments; runs the HTTP workers. See docs/architecture.md.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/log.h"
#include "common/server_config.h"
#include "common/types.h"
#include "supervisor/store.h"
#include "supervisor/worker_pool.h"

using namespace kelp;

namespace {

std::string ExeDir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  std::string p(buf);
  return p.substr(0, p.rfind('/'));
}

int Listen(const std::string& ip, int port) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (inet_pton(AF_INET6, ip.c_str(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = family = AF_INET6;
    a->sin6_port = htons(uint16_t(port));
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = family = AF_INET;
    a->sin_port = htons(uint16_t(port));
    const std::string host = ip == "localhost" ? "127.0.0.1" : ip;
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
      KLOG_ERROR("cannot parse listen address %s", ip.c_str());
      return -1;
    }
    len = sizeof *a;
  }
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 4096) != 0) {
    KLOG_ERROR("listen on %s:%d: %s", ip.c_str(), port, std::strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

struct Server {
  uv_loop_t* loop;
  WorkerPool* pool;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t watchdog;
  bool stopping = false;
};

void Stop(Server* s, const char* why) {
  if (s->stopping) return;
  s->stopping = true;
  KLOG_INFO("%s: draining workers", why);
  sd_notify(0, "STOPPING=1");
  s->pool->Shutdown([](void* arg) { uv_stop(static_cast<Server*>(arg)->loop); }, s);
}

}  // namespace

int main(int argc, char** argv) {
  SetLogRole("supervisor");
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = Flags::Parse(args);
  if (!flags.ok()) {
    std::fprintf(stderr, "%s\n%s", flags.status().message().c_str(), FlagUsage("kelp-volume").c_str());
    return 2;
  }
  if (flags.value().help()) {
    std::fputs(FlagUsage("kelp-volume").c_str(), stdout);
    return 0;
  }
  if (const auto todo = flags.value().UnimplementedSet(); !todo.empty()) {
    std::string names;
    for (const auto& n : todo) names += (names.empty() ? "-" : ", -") + n;
    KLOG_WARN("accepted but not acted on yet: %s", names.c_str());
  }
  auto config = BuildServerConfig(flags.value());
  if (!config.ok()) {
    KLOG_ERROR("%s", config.status().message().c_str());
    return 2;
  }
  const ServerConfig& cfg = config.value();

  std::vector<DiskLocation> locations;
  for (const auto& l : cfg.locations) locations.push_back({l.dir, l.idx_dir, l.max_volumes, l.disk_type});
  Store store(locations, kBuildOffsetBytes);
  if (Status s = store.LoadAll(); !s.ok()) {
    KLOG_ERROR("%s", s.message().c_str());
    return 1;
  }

  const int listen_fd = Listen(cfg.bind_ip, cfg.port);
  if (listen_fd < 0) return 1;

  uv_loop_t* loop = uv_default_loop();
  WorkerPoolOptions opts;
  opts.http_worker_path = ExeDir() + "/kelp-worker-http";
  opts.server_args = args;
  opts.listen_fds = {listen_fd};
  opts.http_workers = cfg.workers;
  WorkerPool pool(loop, &store, opts);
  Server server{loop, &pool};

  uv_signal_init(loop, &server.sigterm);
  uv_signal_init(loop, &server.sigint);
  uv_signal_init(loop, &server.sighup);
  server.sigterm.data = server.sigint.data = server.sighup.data = &server;
  uv_signal_start(&server.sigterm, [](uv_signal_t* h, int) { Stop(static_cast<Server*>(h->data), "SIGTERM"); }, SIGTERM);
  uv_signal_start(&server.sigint, [](uv_signal_t* h, int) { Stop(static_cast<Server*>(h->data), "SIGINT"); }, SIGINT);
  uv_signal_start(&server.sighup, [](uv_signal_t* h, int) {
    auto* s = static_cast<Server*>(h->data);
    sd_notify(0, "RELOADING=1");
    s->pool->Reload();
    sd_notify(0, "READY=1");
  }, SIGHUP);
  signal(SIGPIPE, SIG_IGN);

  pool.Start();
  KLOG_INFO("kelp-volume %s listening on %s:%d, %zu volume(s), %d http worker(s), %d-byte offsets", "0.1.0",
            cfg.bind_ip.c_str(), cfg.port, store.volumes().size(), cfg.workers, kBuildOffsetBytes);
  sd_notify(0, "READY=1");

  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    uv_timer_init(loop, &server.watchdog);
    uv_timer_start(&server.watchdog, [](uv_timer_t*) { sd_notify(0, "WATCHDOG=1"); }, 0, watchdog_usec / 2000);
  }

  uv_run(loop, UV_RUN_DEFAULT);
  for (auto& [vid, v] : store.volumes()) {
    if (Status s = v->Sync(); !s.ok()) KLOG_WARN("volume %u: %s", vid, s.message().c_str());
  }
  KLOG_INFO("stopped");
  return 0;
}
