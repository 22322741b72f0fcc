// Reads of volumes this server does not hold: with -readMode=proxy the request
// is forwarded to a server the master names and the answer streamed back; with
// -readMode=redirect the client is sent there with a 301 (Go's
// proxyReqToTargetServer). The target gets `proxied=true`.
#include <strings.h>

#include <algorithm>
#include <random>

#include "worker-http/handlers.h"
#include "worker-http/proxy_source.h"

namespace kelp {
namespace {

bool HopByHop(const std::string& lower) {
  return lower == "connection" || lower == "keep-alive" || lower == "transfer-encoding" || lower == "te" ||
         lower == "upgrade" || lower == "proxy-connection" || lower == "host" || lower == "content-length" ||
         lower == "trailer";
}


// The state of one proxied read, shared by the exchange's callbacks.
struct ProxyCall {
  http::Respond respond;
  bool head = false, responded = false;
  ProxySource* source = nullptr;  // owned by the response once responded
  std::function<void(const char*, size_t)> body_sink;
  std::function<void(Status)> done_sink;
  http::Response buffered;  // used when the peer sent no Content-Length
  std::shared_ptr<http::ClientExchange> exchange;
};

}  // namespace

void Handlers::ReadElsewhere(http::Request& r, VolumeId vid, const UrlPathParts& parts, http::Respond respond,
                             bool force_proxy) {
  const std::string self = config_.ip + ":" + std::to_string(config_.port);
  auto request = std::make_shared<http::Request>(r);  // the lookup completes after `r` may be gone
  locator_.Lookup(vid, [this, request, parts, self, force_proxy, respond = std::move(respond)](kelp::Status s, const std::vector<VolumeLocation>& found) {
    if (!s.ok()) return respond(Empty(404));
    std::vector<VolumeLocation> locations = found;
    if (locations.size() >= 2) std::shuffle(locations.begin(), locations.end(), std::mt19937(std::random_device{}()));
    // Go skips every location whose URL merely contains this server's address.
    auto target = std::find_if(locations.begin(), locations.end(),
                               [&](const VolumeLocation& l) { return l.url.find(self) == std::string::npos; });
    if (target == locations.end()) return respond(Empty(404));
    if (config_.read_mode == "redirect" && !force_proxy) {
      std::multimap<std::string, std::string> q;
      if (const std::string c = request->Query("collection"); !c.empty()) q.emplace("collection", c);
      q.emplace("proxied", "true");
      const std::string url = "http://" + target->url + "/" + parts.vid + "," + parts.fid + "?" + http::EncodeQuery(q);
      http::Response resp;
      resp.status = 301;
      resp.Set("Location", url);
      if (request->method == "GET" || request->method == "HEAD") resp.Set("Content-Type", "text/html; charset=utf-8");
      if (request->method == "GET") resp.body = "<a href=\"" + http::HtmlEscape(url) + "\">Moved Permanently</a>.\n\n";
      return respond(std::move(resp));
    }
    std::multimap<std::string, std::string> q;
    for (auto& [k, v] : request->QueryPairs())
      if (k != "proxied") q.emplace(k, v);
    q.emplace("proxied", "true");
    const size_t qm = request->url.find('?');
    http::ClientRequest out;
    out.method = request->method;
    out.host_port = target->url;
    out.target = request->url.substr(0, qm) + "?" + http::EncodeQuery(q);
    for (const auto& [k, v] : request->headers)
      if (!HopByHop(k)) out.headers.emplace_back(k, v);
    out.timeout_ms = 30ull * 60 * 1000;

    auto call = std::make_shared<ProxyCall>();
    call->respond = respond;
    call->head = request->method == "HEAD";
    http::ClientHandlers h;
    h.on_headers = [call](http::ClientResponse& head) {
      http::Response resp;
      resp.status = head.status;
      std::string length;
      for (const auto& [k, v] : head.headers) {
        std::string lower = k;
        for (char& c : lower) c = char(tolower(static_cast<unsigned char>(c)));
        if (lower == "server" || lower == "date") continue;
        if (lower == "content-length") length = v;
        if (HopByHop(lower)) continue;
        resp.Add(k, v);
      }
      const bool bodiless = call->head || head.status == 304 || head.status == 204;
      if (bodiless) {
        if (!length.empty()) resp.Set("Content-Length", length);
        resp.head_only = call->head;
        call->responded = true;
        return call->respond(std::move(resp));
      }
      if (length.empty()) {
        call->buffered = std::move(resp);
        return;
      }
      auto source = std::make_unique<ProxySource>(std::strtoull(length.c_str(), nullptr, 10));
      source->Bind(call->exchange);
      call->body_sink = source->BodySink();
      call->done_sink = source->DoneSink();
      resp.Set("Content-Length", length);
      resp.stream = std::move(source);
      call->responded = true;
      call->respond(std::move(resp));
    };
    h.on_body = [call, limit = uint64_t(config_.file_size_limit_bytes) + (1 << 20)](const char* d, size_t n) {
      if (call->body_sink) return call->body_sink(d, n);
      if (call->responded) return;
      if (call->buffered.body.size() + n > limit) {
        // An unbounded answer without a length: give up rather than hold it.
        call->responded = true;
        call->exchange->Cancel();
        return call->respond(Empty(500));
      }
      call->buffered.body.append(d, n);
    };
    h.on_done = [call](kelp::Status st) {
      if (call->done_sink) return call->done_sink(st);
      if (call->responded) return;
      call->responded = true;
      if (!st.ok()) return call->respond(Empty(500));
      call->respond(std::move(call->buffered));
    };
    call->exchange = client_.Stream(std::move(out), std::move(h));
  });
}

}  // namespace kelp
