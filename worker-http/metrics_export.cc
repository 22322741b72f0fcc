#include "worker-http/metrics_export.h"

#include <sys/statvfs.h>

#include <cstdio>
#include <map>

#include "common/file_util.h"

namespace kelp {
namespace {

constexpr const char* kPrefix = "SeaweedFS_volumeServer_";

std::string Number(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}

std::string Quote(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

struct Writer {
  std::string out;
  void Head(const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + kPrefix + name + " " + help + "\n# TYPE " + kPrefix + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, double v) {
    out += kPrefix + name + (labels.empty() ? "" : "{" + labels + "}") + " " + Number(v) + "\n";
  }
};

}  // namespace

std::string PrometheusText(const ipc::SharedGauges& g, const VolumeTable& volumes, const ServerConfig& config) {
  using ipc::RequestKind;
  Writer w;
  w.Head("concurrent_download_limit", "gauge", "Limit on the bytes of downloads in flight.");
  w.Sample("concurrent_download_limit", "", double(config.concurrent_download_limit_bytes));
  w.Head("concurrent_upload_limit", "gauge", "Limit on the bytes of uploads in flight.");
  w.Sample("concurrent_upload_limit", "", double(config.concurrent_upload_limit_bytes));

  w.Head("handler_total", "counter", "Counter of volume server handlers.");
  w.Sample("handler_total", "type=\"downloadLimitCondition\"", double(g.download_limit_waits.load()));
  w.Sample("handler_total", "type=\"uploadLimitCondition\"", double(g.upload_limit_waits.load()));

  w.Head("in_flight_download_size", "gauge", "Bytes of downloads in flight.");
  w.Sample("in_flight_download_size", "", double(g.DownloadBytes()));
  w.Head("in_flight_requests", "gauge", "Requests being handled now.");
  for (size_t k = 0; k < size_t(RequestKind::kCount); ++k)
    w.Sample("in_flight_requests", std::string("type=\"") + ipc::RequestKindName(RequestKind(k)) + "\"", double(g.InFlight(RequestKind(k))));
  w.Head("in_flight_upload_size", "gauge", "Bytes of uploads in flight.");
  w.Sample("in_flight_upload_size", "", double(g.UploadBytes()));

  int max_volumes = 0;
  for (const auto& l : config.locations) max_volumes += l.max_volumes;
  w.Head("max_volumes", "gauge", "Maximum number of volumes.");
  w.Sample("max_volumes", "", double(max_volumes));

  w.Head("request_seconds", "histogram", "Request handling time.");
  for (size_t k = 0; k < size_t(RequestKind::kCount); ++k) {
    const uint64_t count = g.latency_count[k].load();
    if (count == 0) continue;
    const std::string type = std::string("type=\"") + ipc::RequestKindName(RequestKind(k)) + "\"";
    uint64_t cumulative = 0;
    double bound = 0.0001;
    for (int b = 0; b < ipc::kLatencyBuckets; ++b, bound *= 2) {
      cumulative += g.latency_buckets[k][b].load();
      w.Sample("request_seconds_bucket", type + ",le=\"" + Number(bound) + "\"", double(cumulative));
    }
    w.Sample("request_seconds_bucket", type + ",le=\"+Inf\"", double(count));
    w.Sample("request_seconds_sum", type, double(g.latency_sum_ns[k].load()) / 1e9);
    w.Sample("request_seconds_count", type, double(count));
  }
  w.Head("request_total", "counter", "Counter of volume server requests.");
  for (size_t k = 0; k < size_t(RequestKind::kCount); ++k) {
    for (int s = 0; s < ipc::kStatusSlots; ++s) {
      const uint64_t n = g.requests[k][s].load();
      if (n == 0) continue;
      w.Sample("request_total", "code=\"" + std::to_string(s + ipc::kMinStatus) + "\",type=\"" + ipc::RequestKindName(RequestKind(k)) + "\"",
               double(n));
    }
  }

  w.Head("resource", "gauge", "Disk space of each data directory.");
  for (const auto& l : config.locations) {
    struct statvfs st {};
    const std::string dir = AbsolutePath(l.dir);
    if (statvfs(dir.c_str(), &st) != 0) continue;
    const double all = double(st.f_blocks) * double(st.f_frsize), free = double(st.f_bfree) * double(st.f_frsize);
    const std::string name = "name=\"" + Quote(dir) + "\",type=";
    w.Sample("resource", name + "\"all\"", all);
    w.Sample("resource", name + "\"avail\"", double(st.f_bavail) * double(st.f_frsize));
    w.Sample("resource", name + "\"free\"", free);
    w.Sample("resource", name + "\"used\"", all - free);
  }

  w.Head("start_time_seconds", "gauge", "Start time of the volume server, as seconds since UNIX epoch.");
  w.Sample("start_time_seconds", "", double(g.start_time_seconds.load()));

  struct PerCollection {
    uint64_t volumes = 0, read_only = 0, size = 0, deleted = 0;
  };
  std::map<std::string, PerCollection> collections;
  for (const auto& [id, v] : volumes.all()) {
    PerCollection& c = collections[v->collection];
    const SegmentCounters counters = v->segment.Counters();
    ++c.volumes;
    if (v->segment.ReadOnly()) ++c.read_only;
    c.size += counters.dat_size;
    c.deleted += counters.deleted_bytes;
  }
  w.Head("read_only_volumes", "gauge", "Number of read only volumes.");
  for (const auto& [name, c] : collections)
    w.Sample("read_only_volumes", "collection=\"" + Quote(name) + "\",type=\"IsReadOnly\"", double(c.read_only));
  w.Head("total_disk_size", "gauge", "Disk size used by volumes.");
  for (const auto& [name, c] : collections) {
    w.Sample("total_disk_size", "collection=\"" + Quote(name) + "\",type=\"deleted_bytes\"", double(c.deleted));
    w.Sample("total_disk_size", "collection=\"" + Quote(name) + "\",type=\"normal\"", double(c.size));
  }
  w.Head("volumes", "gauge", "Number of volumes or shards.");
  for (const auto& [name, c] : collections)
    w.Sample("volumes", "collection=\"" + Quote(name) + "\",type=\"volume\"", double(c.volumes));
  return w.out;
}

}  // namespace kelp
