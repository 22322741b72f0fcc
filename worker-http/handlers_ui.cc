// /ui/index.html: a status page for people, served (as in Go) only when
// writes are not JWT-protected, since it lists every volume. kelp's own page:
// the disks, then the volumes this server holds.
#include <sys/statvfs.h>

#include "common/file_util.h"
#include "worker-http/handlers.h"

namespace kelp {
namespace {


}  // namespace

void Handlers::Ui(http::Request& r, http::Respond respond) {
  (void)r;
  std::string page = "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>kelp volume server " +
                     http::HtmlEscape(ServerVersion()) + "</title>\n</head>\n<body>\n<h1>kelp volume server</h1>\n";
  page += "<p>Version " + http::HtmlEscape(ServerVersion()) + " &middot; " + http::HtmlEscape(config_.ip + ":" + std::to_string(config_.port)) +
          " &middot; master " + http::HtmlEscape(CurrentMaster()) + (cluster_->registered ? " (registered)" : " (not registered)") + "</p>\n";
  page += "<h2>Disks</h2>\n<table>\n<tr><th>Path</th><th>Type</th><th>Total</th><th>Free</th><th>Max volumes</th></tr>\n";
  for (const auto& loc : config_.locations) {
    const std::string dir = AbsolutePath(loc.dir);
    struct statvfs st {};
    uint64_t all = 0, free = 0;
    if (statvfs(dir.c_str(), &st) == 0) {
      all = uint64_t(st.f_blocks) * st.f_frsize;
      free = uint64_t(st.f_bavail) * st.f_frsize;
    }
    page += "<tr><td>" + http::HtmlEscape(dir) + "</td><td>" + http::HtmlEscape(loc.disk_type.empty() ? "hdd" : loc.disk_type) + "</td><td>" +
            std::to_string(all >> 20) + " MiB</td><td>" + std::to_string(free >> 20) + " MiB</td><td>" +
            std::to_string(loc.max_volumes) + "</td></tr>\n";
  }
  page += "</table>\n<h2>Volumes</h2>\n<table>\n<tr><th>Id</th><th>Collection</th><th>Size</th><th>Files</th>"
          "<th>Deleted</th><th>Replication</th><th>TTL</th><th>Read only</th></tr>\n";
  for (const auto& [id, v] : volumes_->all()) {
    const SegmentCounters c = v->segment.Counters();
    char rp[8];
    std::snprintf(rp, sizeof rp, "%03u", unsigned(v->replica_placement.Byte()));
    page += "<tr><td>" + std::to_string(id) + "</td><td>" + http::HtmlEscape(v->collection) + "</td><td>" + std::to_string(c.dat_size) +
            "</td><td>" + std::to_string(c.file_count) + "</td><td>" + std::to_string(c.deleted_count) + "</td><td>" + rp +
            "</td><td>" + http::HtmlEscape(v->ttl.String()) + "</td><td>" + (v->segment.ReadOnly() ? "yes" : "no") + "</td></tr>\n";
  }
  page += "</table>\n</body>\n</html>\n";
  http::Response resp;
  resp.Set("Content-Type", "text/html; charset=utf-8");
  resp.body = std::move(page);
  respond(std::move(resp));
}

bool Handlers::ServeStatic(const http::Request& r, const http::Respond& respond) {
  const std::string* body = nullptr;
  const char* type = nullptr;
  const bool ico = r.path == "/favicon.ico";
  if ((!ico && r.path != "/seaweedfsstatic/seaweed50x50.png") || (r.method != "GET" && r.method != "HEAD")) return false;
  if (ico) {
    if (icon_ico_.empty()) icon_ico_ = IconIco(IconPng(32), 32);
    body = &icon_ico_;
    type = "image/x-icon";
  } else {
    if (icon_png_.empty()) icon_png_ = IconPng(50);
    body = &icon_png_;
    type = "image/png";
  }
  http::Response resp;
  resp.Set("Content-Type", type);
  resp.Set("Content-Length", std::to_string(body->size()));
  if (r.method == "HEAD") resp.head_only = true;
  else resp.body = *body;
  Decorated(r, respond)(std::move(resp));
  return true;
}

}  // namespace kelp
