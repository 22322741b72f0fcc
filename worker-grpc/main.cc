// kelp-worker-grpc: serves the VolumeServer gRPC API. Started by the
// supervisor only, with fd 3 connected to it. It binds the gRPC port itself
// (with SO_REUSEPORT, so a replacement can bind before this one drains).
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "common/log.h"
#include "common/server_config.h"
#include "worker-grpc/supervisor_client.h"
#include "worker-grpc/volume_service.h"

using namespace kelp;

namespace {

// In-flight calls get this long to finish when the worker drains.
constexpr auto kDrainGrace = std::chrono::seconds(5);
// Go's volume server accepts messages up to this size.
constexpr int kMaxMessageBytes = 1 << 30;

}  // namespace

int main(int, char**) {
  SetLogRole("grpc");
  if (!ipc::AdoptSupervisorChannel("kelp-worker-grpc")) return 2;
  SupervisorClient supervisor(ipc::kSupervisorFd);
  auto cfg = supervisor.WaitConfig();
  if (!cfg.ok()) {
    KLOG_ERROR("bad configuration from supervisor: %s", cfg.status().message().c_str());
    return 2;
  }
  const ServerConfig config = cfg.value();

  VolumeService service(&supervisor, &config);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  const std::string address = (config.bind_ip.find(':') != std::string::npos ? "[" + config.bind_ip + "]" : config.bind_ip) + ":" +
                              std::to_string(config.grpc_port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound_port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    KLOG_ERROR("cannot listen for gRPC on %s", address.c_str());
    return 1;
  }
  std::atomic<bool> draining{false};
  supervisor.Start(
      [&] {
        if (draining.exchange(true)) return;
        std::thread([&] {
          server->Shutdown(std::chrono::system_clock::now() + kDrainGrace);
          _exit(0);
        }).detach();
      },
      [] { _exit(0); });
  supervisor.SendReady();
  KLOG_INFO("grpc listening on %s", address.c_str());
  server->Wait();
  _exit(0);
}
