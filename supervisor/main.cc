// kelp-volume: the supervisor. Owns the volume files, the listening sockets and
// the index segments; runs the HTTP workers. See docs/architecture.md.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <fcntl.h>

#include <ctime>
#include <unistd.h>
#include <sodium.h>
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
#include "storage/fault_env.h"
#include "supervisor/admin_service.h"
#include "supervisor/heartbeat_client.h"
#include "supervisor/heartbeat_report.h"
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
      // A name (Go resolves -ip=volume1 too): its first IPv4 address.
      addrinfo hints{};
      hints.ai_family = AF_INET;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* found = nullptr;
      if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found) {
        KLOG_ERROR("cannot resolve listen address %s", ip.c_str());
        return -1;
      }
      a->sin_addr = reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr;
      freeaddrinfo(found);
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
  HeartbeatClient* heartbeat;
  const ServerConfig* config;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t watchdog;
  uv_timer_t pre_stop;
  bool stopping = false;
};

// Shutdown order, as Go's: leave the master first (it stops sending writes
// here), wait -preStopSeconds for clients to notice, then drain the workers.
void Stop(Server* s, const char* why) {
  if (s->stopping) return;
  s->stopping = true;
  sd_notify(0, "STOPPING=1");
  s->heartbeat->RequestStop();
  KLOG_INFO("%s: stopped heartbeating; draining workers in %d s", why, s->config->pre_stop_seconds);
  uv_timer_init(s->loop, &s->pre_stop);
  s->pre_stop.data = s;
  uv_timer_start(&s->pre_stop, [](uv_timer_t* t) {
    auto* s = static_cast<Server*>(t->data);
    s->pool->Shutdown([](void* arg) { uv_stop(static_cast<Server*>(arg)->loop); }, s);
  }, uint64_t(s->config->pre_stop_seconds) * 1000, 0);
}

}  // namespace

int main(int argc, char** argv) {
  SetLogRole("supervisor");
  if (sodium_init() < 0) {
    std::fprintf(stderr, "libsodium failed to initialise\n");
    return 1;
  }
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
  std::vector<std::string> flag_sources;
  Status filled = flags.value().FillFromEnvironment(environ, &flag_sources);
  if (filled.ok()) filled = flags.value().FillFromOptionsFile(&flag_sources);
  if (!filled.ok()) {
    std::fprintf(stderr, "%s\n", filled.message().c_str());
    return 2;
  }
  for (const auto& s : flag_sources) KLOG_INFO("flag %s", s.c_str());
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
  if (cfg.security.source.empty())
    KLOG_INFO("no security.toml found: no JWT keys%s", cfg.security.white_list.empty() ? ", no white list" : "");
  else
    KLOG_INFO("security configuration from %s", cfg.security.source.c_str());

  std::vector<DiskLocation> locations;
  for (const auto& l : cfg.locations) locations.push_back({l.dir, l.idx_dir, l.max_volumes, l.disk_type});
  Store store(locations, kBuildOffsetBytes, ProcessEnv());
  if (Status s = store.LoadAll(); !s.ok()) {
    KLOG_ERROR("%s", s.message().c_str());
    return 1;
  }

  // Listeners in the order workers expect them (ipc::Hello): main, public, metrics.
  std::vector<int> listen_fds;
  for (int port : {cfg.port, cfg.public_port != cfg.port ? cfg.public_port : 0, cfg.metrics_port}) {
    if (port == 0) continue;
    const int fd = Listen(port == cfg.metrics_port && port != cfg.port ? cfg.metrics_ip : cfg.bind_ip, port);
    if (fd < 0) return 1;
    listen_fds.push_back(fd);
  }
  auto gauges_fd = ipc::CreateSharedGauges();
  if (!gauges_fd.ok()) {
    KLOG_ERROR("%s", gauges_fd.status().message().c_str());
    return 1;
  }
  auto gauges = ipc::MapSharedGauges(gauges_fd.value());
  if (!gauges.ok()) {
    KLOG_ERROR("%s", gauges.status().message().c_str());
    return 1;
  }

  uv_loop_t* loop = uv_default_loop();
  store.StartWriters(loop);
  WorkerPoolOptions opts;
  // Opened once: every worker this supervisor ever starts runs these images,
  // even after a package upgrade replaces the files (docs/architecture.md).
  int job_worker_exe = -1;
  for (auto [name, fd] : {std::pair{"kelp-worker-http", &opts.http_worker_exe}, std::pair{"kelp-worker-grpc", &opts.grpc_worker_exe},
                          std::pair{"kelp-worker-ec", &job_worker_exe}}) {
    const std::string path = ExeDir() + "/" + name;
    *fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
      KLOG_ERROR("cannot open worker executable %s: %s", path.c_str(), std::strerror(errno));
      return 1;
    }
  }
  opts.server_args = flags.value().SetArgs();
  // The address detected for an empty -ip is the supervisor's: workers are
  // told it rather than detecting their own.
  if (flags.value().Str("ip").empty()) opts.server_args.push_back("-ip=" + cfg.ip);
  opts.listen_fds = listen_fds;
  opts.gauges_fd = gauges_fd.value();
  opts.gauges = gauges.value();
  opts.http_workers = cfg.workers;
  WorkerPool pool(loop, &store, opts);

  SharedServerState shared;
  AdminService* admin_ptr = nullptr;
  HeartbeatClient* heartbeat_ptr = nullptr;
  auto identity = [&] {
    ServerIdentity who;
    who.config = &cfg;
    if (admin_ptr) who.state = admin_ptr->state();
    return who;
  };
  MasterEvents events;
  events.full_report = [&] {
    if (admin_ptr) admin_ptr->RemoveExpiredVolumes(uint64_t(std::time(nullptr)));
    return FullReport(store, identity());
  };
  events.volume_size_limit = [&](uint64_t limit) {
    if (limit == store.volume_size_limit()) return;
    KLOG_INFO("volume size limit from master: %llu bytes", static_cast<unsigned long long>(limit));
    store.set_volume_size_limit(limit);
    shared.volume_size_limit = limit;
    pool.SetServerState(shared);
  };
  events.registered = [&](bool up, const std::string& master) {
    shared.registered = up;
    shared.master = master;
    pool.SetServerState(shared);
  };
  Server* server_ptr = nullptr;
  int exit_code = 0;
  events.duplicate_directories = [&](const std::string& why) {
    // Go exits at once; kelp leaves the master and drains first, then exits 1.
    exit_code = 1;
    if (server_ptr) Stop(server_ptr, why.c_str());
  };
  std::vector<DirectoryId> directories;
  for (const DiskLocation& loc : store.locations()) directories.push_back(DirectoryId{loc.dir, loc.uuid});
  HeartbeatClient heartbeat(loop, cfg.masters, cfg.pulse_seconds, events, directories);
  heartbeat_ptr = &heartbeat;

  AdminHooks hooks;
  // A delta names this server and one volume that came or went.
  auto send_delta = [&](const master_pb::VolumeShortInformationMessage& info, bool added) {
    master_pb::Heartbeat delta;
    FillIdentity(identity(), &delta);
    *(added ? delta.add_new_volumes() : delta.add_deleted_volumes()) = info;
    heartbeat_ptr->SendDelta(std::move(delta));
  };
  hooks.volume_added = [&](Volume* v) {
    pool.BroadcastAttach(v);
    send_delta(ShortInfo(store, *v), true);
  };
  hooks.volume_removed = [&](VolumeId id, const master_pb::VolumeShortInformationMessage& info) {
    pool.BroadcastDetach(id);
    send_delta(info, false);
  };
  hooks.volumes_changed = [&] { heartbeat_ptr->SendFullReportSoon(); };
  hooks.ec_shards_changed = [&](std::vector<master_pb::VolumeEcShardInformationMessage> added,
                                std::vector<master_pb::VolumeEcShardInformationMessage> removed) {
    master_pb::Heartbeat delta;
    FillIdentity(identity(), &delta);
    for (auto& m : added) *delta.add_new_ec_shards() = std::move(m);
    for (auto& m : removed) *delta.add_deleted_ec_shards() = std::move(m);
    heartbeat_ptr->SendDelta(std::move(delta));
  };
  hooks.state_changed = [&] {
    shared.maintenance = admin_ptr->state().maintenance();
    shared.state_version = admin_ptr->state().version();
    pool.SetServerState(shared);
  };
  hooks.leave = [&] { heartbeat_ptr->RequestStop(); };
  hooks.volume_mutated = [&](VolumeId id, std::function<void()> then) {
    pool.AnnounceSegment(id);
    pool.WhenSwitched(id, std::move(then));
  };
  hooks.volume_replaced = [&](Volume* v) {
    pool.BroadcastReattach(v);
    heartbeat_ptr->SendFullReportSoon();  // the new size and compaction revision
  };
  BackgroundJobs jobs(loop);
  AdminService admin(&store, &cfg, hooks);
  admin_ptr = &admin;
  admin.set_jobs(&jobs);
  JobWorkers job_workers(job_worker_exe);
  admin.set_job_workers(&job_workers);
  if (Status s = admin.LoadState(); !s.ok()) {
    KLOG_ERROR("%s", s.message().c_str());
    return 1;
  }
  shared.maintenance = admin.state().maintenance();
  shared.state_version = admin.state().version();
  pool.SetServerState(shared);
  pool.set_admin_handler([&](uint64_t caller, const std::string& method, const std::string& body, AdminReplyFn reply,
                             AdminProgressFn progress) {
    admin.HandleAsync(
        method, body,
        [reply](const grpc::Status& s, const std::string& out, int fd) { reply(int(s.error_code()), s.error_message(), out, fd); },
        std::move(progress), caller);
  });

  Server server{loop, &pool, &heartbeat, &cfg};
  server_ptr = &server;

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

  // The master calls back on the gRPC port as soon as it hears of this
  // server: register only once a gRPC worker listens, as Go does.
  bool heartbeat_started = false;
  pool.set_on_grpc_ready([&] {
    if (heartbeat_started || server.stopping) return;
    heartbeat_started = true;
    heartbeat.Start();
  });
  // Only what that worker drove: during a reload the old worker's exit must
  // not undo the new one's copies and pushes.
  pool.set_on_grpc_exit([&](uint64_t serial) {
    admin.AbortCopies(serial);
    admin.AbortReceives(serial);
  });
  pool.Start();
  KLOG_INFO("kelp-volume %s listening on %s:%d, %zu volume(s), %d http worker(s), %d-byte offsets", kKelpVersion,
            cfg.bind_ip.c_str(), cfg.port, store.volumes().size(), cfg.workers, kBuildOffsetBytes);
  sd_notify(0, "READY=1");

  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    uv_timer_init(loop, &server.watchdog);
    uv_timer_start(&server.watchdog, [](uv_timer_t*) { sd_notify(0, "WATCHDOG=1"); }, 0, watchdog_usec / 2000);
  }

  uv_run(loop, UV_RUN_DEFAULT);
  jobs.Stop();  // a vacuum copy in progress ends as interrupted
  heartbeat.Stop();
  store.StopWriters();  // syncs every volume
  KLOG_INFO("stopped");
  return exit_code;
}
