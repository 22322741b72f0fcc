#include "common/server_config.h"

#include <unistd.h>

#include "common/host_address.h"
#include "common/types.h"

namespace kelp {

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string ServerVersion() { return std::string(kBuildOffsetBytes == 5 ? "8000GB" : "30GB") + " kelp-" + kKelpVersion; }

std::string MasterHttpAddress(const std::string& master) {
  const size_t colon = master.rfind(':');
  const size_t dot = master.find('.', colon == std::string::npos ? 0 : colon);
  return colon != std::string::npos && dot != std::string::npos ? master.substr(0, dot) : master;
}

std::string MasterGrpcAddress(const std::string& master) {
  const size_t colon = master.rfind(':');
  if (colon == std::string::npos) return master;
  const std::string host = master.substr(0, colon);
  const std::string port = master.substr(colon + 1);
  const size_t dot = port.find('.');
  if (dot != std::string::npos) return host + ":" + port.substr(dot + 1);
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0') return master;
  return host + ":" + std::to_string(p + 10000);
}

Result<ServerConfig> BuildServerConfig(const Flags& f) {
  ServerConfig c;
  c.port = int(f.Int("port"));
  if (c.port <= 0 || c.port > 65535) return Status::Invalid("invalid -port " + std::to_string(c.port));
  c.grpc_port = f.Int("port.grpc") > 0 ? int(f.Int("port.grpc")) : c.port + 10000;
  // Go: an empty -ip is the detected address, and an empty -ip.bind is -ip.
  c.ip = f.Str("ip").empty() ? DetectedHostAddress() : f.Str("ip");
  c.bind_ip = f.Str("ip.bind").empty() ? c.ip : f.Str("ip.bind");
  const auto dirs = SplitComma(f.Str("dir"));
  if (dirs.empty()) return Status::Invalid("-dir is empty");
  const auto maxes = SplitComma(f.Str("max"));
  const auto disks = SplitComma(f.Str("disk"));
  if (maxes.size() > 1 && maxes.size() != dirs.size())
    return Status::Invalid(std::to_string(dirs.size()) + " directories by -dir, but only " + std::to_string(maxes.size()) +
                           " max volume counts by -max");
  for (size_t i = 0; i < dirs.size(); ++i) {
    LocationConfig l;
    l.dir = dirs[i];
    l.idx_dir = f.Str("dir.idx").empty() ? dirs[i] : f.Str("dir.idx");
    const std::string m = maxes.empty() ? "8" : maxes[maxes.size() == 1 ? 0 : i];
    char* end = nullptr;
    const long v = std::strtol(m.c_str(), &end, 10);
    if (m.empty() || *end != '\0' || v < 0) return Status::Invalid("The max specified in -max not a valid number " + m);
    l.max_volumes = int(v);
    if (!disks.empty()) l.disk_type = disks[disks.size() == 1 ? 0 : std::min(i, disks.size() - 1)];
    c.locations.push_back(l);
  }
  const long long workers = f.Int("workers");
  c.workers = workers > 0 ? int(workers) : int(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  c.file_size_limit_bytes = f.Int("fileSizeLimitMB") << 20;
  c.compaction_bytes_per_second = f.Int("compactionMBps") * 1048576;
  c.maintenance_bytes_per_second = f.Int("maintenanceMBps") * 1048576;
  c.allow_untrusted_remote_endpoints = f.Bool("volume.allowUntrustedRemoteEndpoints");
  c.idle_timeout_s = double(f.Int("idleTimeout"));
  c.read_mode = f.Str("readMode");
  c.concurrent_upload_limit_bytes = std::max(0LL, f.Int("concurrentUploadLimitMB")) << 20;
  c.concurrent_download_limit_bytes = std::max(0LL, f.Int("concurrentDownloadLimitMB")) << 20;
  c.inflight_upload_timeout_s = f.Seconds("inflightUploadDataTimeout");
  c.inflight_download_timeout_s = f.Seconds("inflightDownloadDataTimeout");
  c.metrics_port = int(std::max(0LL, f.Int("metricsPort")));
  c.fix_jpg_orientation = f.Bool("images.fix.orientation");
  c.metrics_ip = f.Str("metricsIp").empty() ? c.bind_ip : f.Str("metricsIp");
  auto security = LoadSecurityConfig(f.Str("securityFile"), f.Str("config_dir"));
  if (!security.ok()) return security.status();
  c.security = std::move(security.value());
  for (auto& ip : SplitComma(f.Str("whiteList"))) c.security.white_list.push_back(std::move(ip));
  c.masters = SplitComma(f.Str("mserver").empty() ? f.Str("master") : f.Str("mserver"));
  if (c.masters.empty()) return Status::Invalid("-master is empty");
  const std::string self = c.ip + ":" + std::to_string(c.port);
  c.public_port = f.Int("port.public") > 0 ? int(f.Int("port.public")) : c.port;
  c.public_url = f.Str("publicUrl").empty() ? c.ip + ":" + std::to_string(c.public_port) : f.Str("publicUrl");
  c.id = f.Str("id").empty() ? self : f.Str("id");
  c.data_center = f.Str("dataCenter");
  c.rack = f.Str("rack");
  c.pulse_seconds = int(std::max(1LL, f.Int("pulseSeconds")));
  c.pre_stop_seconds = int(std::max(0LL, f.Int("preStopSeconds")));
  return c;
}

}  // namespace kelp
