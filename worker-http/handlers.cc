#include "worker-http/handlers.h"

#include <strings.h>

#include <charconv>
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <ctime>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/types.h"
#include "common/file_util.h"
#include "worker-http/blob_reader.h"
#include "worker-http/byte_ranges.h"
#include "worker-http/concat_source.h"
#include "worker-http/content_sniff.h"
#include "worker-http/fid_path.h"
#include "worker-http/gzip.h"
#include "worker-http/json_writer.h"
#include "worker-http/off_loop.h"
#include "worker-http/range_response.h"
#include "worker-http/read_headers.h"
#include "worker-http/request_id.h"
#include "worker-http/upload.h"
#include "worker-http/write_form.h"

namespace kelp {
namespace {

uint64_t NowSeconds() { return uint64_t(time(nullptr)); }

std::string HttpTime(uint64_t secs) {
  const time_t t = time_t(secs);
  tm g;
  gmtime_r(&t, &g);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &g);
  return buf;
}

bool ParseHttpTime(const std::string& s, uint64_t* secs) {
  tm t{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &t);
  if (!end || *end != '\0') return false;
  *secs = uint64_t(timegm(&t));
  return true;
}

std::string Etag(uint32_t crc) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", crc);
  return b;
}


}  // namespace


void Decorate(bool cors, http::Response* resp) {
  // Set first in Go's handlers, so a stored pair named Server replaces it.
  if (!resp->Has("Server")) resp->headers.insert(resp->headers.begin(), {"Server", "SeaweedFS Volume " + ServerVersion()});
  // A handler may have set its own (a proxied answer keeps the peer's).
  if (!resp->Has("X-Amz-Request-Id")) resp->Set("X-Amz-Request-Id", NewRequestId());
  if (cors) {
    resp->Set("Access-Control-Allow-Origin", "*");
    resp->Set("Access-Control-Allow-Credentials", "true");
  }
}

http::Response Empty(int status) {
  http::Response r;
  r.status = status;
  return r;
}

bool WantsPretty(const http::Request& r) { return !r.Query("pretty").empty(); }

http::Response JsonResponse(const http::Request& r, int status, std::string json) {
  return JsonResponse(WantsPretty(r), status, std::move(json));
}

http::Response JsonError(bool pretty, int status, const std::string& message) {
  return JsonResponse(pretty, status, JsonObject().Str("error", message).Done());
}

http::Response JsonResponse(bool pretty, int status, std::string json) {
  http::Response resp;
  resp.status = status;
  resp.Set("Content-Type", "application/json");
  resp.Set("X-Content-Type-Options", "nosniff");
  if (pretty) {
    // Go re-marshals with two-space indentation.
    std::string out;
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < json.size(); ++i) {
      const char c = json[i];
      if (in_str) {
        out.push_back(c);
        if (c == '\\' && i + 1 < json.size()) out.push_back(json[++i]);
        else if (c == '"') in_str = false;
        continue;
      }
      switch (c) {
        case '"': in_str = true; out.push_back(c); break;
        case '{': case '[':
          out.push_back(c);
          if (i + 1 < json.size() && (json[i + 1] == '}' || json[i + 1] == ']')) { out.push_back(json[++i]); break; }
          out += "\n" + std::string(size_t(++depth) * 2, ' ');
          break;
        case '}': case ']': out += "\n" + std::string(size_t(--depth) * 2, ' ') + c; break;
        case ',': out += ",\n" + std::string(size_t(depth) * 2, ' '); break;
        case ':': out += ": "; break;
        default: out.push_back(c);
      }
    }
    json = std::move(out);
  }
  resp.body = std::move(json);
  return resp;
}

http::Response JsonError(const http::Request& r, int status, const std::string& message) {
  return JsonResponse(r, status, JsonObject().Str("error", message).Done());
}

Handlers::Handlers(uv_loop_t* loop, const ServerConfig& config, VolumeTable* volumes, SupervisorLink* link,
                   const ipc::ServerStateView* cluster, ipc::SharedGauges* gauges, int gauge_slot)
    : loop_(loop), config_(config), guard_(config.security), volumes_(volumes), link_(link), cluster_(cluster), client_(loop),
      locator_(&client_, [this] { return CurrentMaster(); }), gauges_(gauges),
      limits_(loop, gauges, gauge_slot,
              InflightLimits::Config{config.concurrent_upload_limit_bytes, config.concurrent_download_limit_bytes,
                                     config.inflight_upload_timeout_s, config.inflight_download_timeout_s}) {}

http::Respond Decorated(const http::Request& r, http::Respond respond) {
  // Replies may arrive after the connection (and `r`) are gone: capture values only.
  return [cors = r.Header("origin") != nullptr, respond = std::move(respond)](http::Response resp) {
    Decorate(cors, &resp);
    respond(std::move(resp));
  };
}

http::Respond Handlers::Measured(const http::Request& r, http::Respond respond) {
  if (!gauges_) return Decorated(r, std::move(respond));
  const bool cors = r.Header("origin") != nullptr;
  const ipc::RequestKind kind = ipc::RequestKindOf(r.method.c_str());
  std::atomic<int64_t>* in_flight = &gauges_->in_flight[size_t(kind)][size_t(limits_.slot())];
  in_flight->fetch_add(1, std::memory_order_relaxed);
  const auto start = std::chrono::steady_clock::now();
  return [cors, respond = std::move(respond), kind, in_flight, start, gauges = gauges_](http::Response resp) {
    Decorate(cors, &resp);
    in_flight->fetch_sub(1, std::memory_order_relaxed);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    gauges->CountRequest(kind, resp.status, uint64_t(ns));
    respond(std::move(resp));
  };
}

void Handlers::Handle(http::Request& r, http::Respond respond) {
  // Go routes /ui/index.html only when writes are not JWT-protected.
  const bool ui = r.path == "/ui/index.html" && config_.security.jwt_write_key.empty();
  if (r.path == "/status" || r.path == "/healthz" || r.path == "/readyz" || ui) {
    auto decorated = Decorated(r, std::move(respond));
    if (r.path == "/status") return Status(r, decorated);
    if (ui) return Ui(r, decorated);
    return Healthz(r, decorated);
  }
  if (ServeStatic(r, respond)) return;
  auto measured = Measured(r, std::move(respond));
  if (r.method == "GET" || r.method == "HEAD") return ReadLimited(r, measured);
  if (r.method == "POST" || r.method == "PUT") return Write(r, measured);
  if (r.method == "DELETE") return Delete(r, measured);
  if (r.method == "OPTIONS") {
    http::Response resp;
    resp.Set("Access-Control-Allow-Methods", "PUT, POST, GET, DELETE, OPTIONS");
    resp.Set("Access-Control-Allow-Headers", "*");
    return measured(std::move(resp));
  }
  measured(JsonError(r, 400, "unsupported method " + r.method));
}

void Handlers::HandlePublic(http::Request& r, http::Respond respond) {
  if (ServeStatic(r, respond)) return;
  auto measured = Measured(r, std::move(respond));
  if (r.method == "GET" || r.method == "HEAD") return ReadLimited(r, measured);
  http::Response resp;
  if (r.method == "OPTIONS") {
    resp.Set("Access-Control-Allow-Methods", "GET, OPTIONS");
    resp.Set("Access-Control-Allow-Headers", "*");
  }
  // Go's public handler writes nothing for other methods: an empty 200.
  measured(std::move(resp));
}

http::Admission Handlers::UploadAdmission() {
  http::Admission a;
  a.wanted = [this](const http::Request& head) {
    return limits_.UploadLimited() && (head.method == "POST" || head.method == "PUT") && head.Query("type") != "replicate";
  };
  a.decide = [this](const http::Request& head, http::Admission::Decide decide) {
    int64_t length = 0;
    if (const std::string* cl = head.Header("content-length")) length = std::strtoll(cl->c_str(), nullptr, 10);
    const bool cors = head.Header("origin") != nullptr;
    const bool pretty = WantsPretty(head);
    const ipc::RequestKind kind = ipc::RequestKindOf(head.method.c_str());
    limits_.WaitForUpload([this, length, cors, pretty, kind, decide = std::move(decide)](bool admitted) {
      if (admitted) return decide(limits_.HoldUpload(length), nullptr);
      auto refusal = std::make_unique<http::Response>(JsonError(
          pretty, 429, "reject because inflight upload data " + std::to_string(limits_.UploadBytes()) + " > " +
                           std::to_string(limits_.upload_limit()) + ", and wait timeout"));
      Decorate(cors, refusal.get());
      if (gauges_) gauges_->CountRequest(kind, 429, 0);
      decide(nullptr, std::move(refusal));
    });
  };
  return a;
}

void Handlers::ReadLimited(http::Request& r, http::Respond respond) {
  if (!limits_.DownloadOver()) return Read(r, std::move(respond));
  // Go first sends the read to another holder of a replicated volume.
  const UrlPathParts parts = ParseUrlPath(r.path);
  auto vid = ParseVolumeId(parts.vid);
  if (!vid.ok()) return respond(Empty(400));
  const VolumeView* v = volumes_->Find(vid.value());
  if (r.Query("proxied") != "true" && v && v->replica_placement.Byte() != 0)
    return ReadElsewhere(r, vid.value(), parts, std::move(respond), /*force_proxy=*/true);
  auto request = std::make_shared<http::Request>(r);  // the wait outlasts `r`
  const int64_t before = limits_.DownloadBytes();
  limits_.WaitForDownload([this, request, before, respond = std::move(respond)](bool admitted) {
    if (admitted) return Read(*request, respond);
    respond(JsonError(*request, 429, "request " + request->path + " because inflight download data " +
                                         std::to_string(before) + " > " + std::to_string(limits_.download_limit()) +
                                         ", and wait timeout"));
  });
}

void Handlers::Read(http::Request& r, http::Respond respond) {
  const UrlPathParts parts = ParseUrlPath(r.path);
  if (!guard_.JwtAllows(r, parts.vid, parts.fid, false, int64_t(NowSeconds()))) return respond(JsonError(r, 401, "wrong jwt"));
  auto vid = ParseVolumeId(parts.vid);
  if (!vid.ok()) return respond(Empty(400));
  auto fid = ParseFidWithDelta(parts.fid);
  if (!fid.ok()) return respond(Empty(400));
  const VolumeView* v = volumes_->Find(vid.value());
  if (!v) return ReadErasureCoded(r, vid.value(), fid.value().id, fid.value().cookie, parts, std::move(respond));
  StoredBlob blob;
  std::string error;
  switch (ReadBlob(*v, fid.value().id, r.Query("readDeleted") == "true", &blob, &error)) {
    case ReadOutcome::kNotFound:
    case ReadOutcome::kDeleted:
      return respond(Empty(404));
    case ReadOutcome::kError:
      return respond(Empty(500));
    case ReadOutcome::kOk:
      break;
  }
  ServeBlob(r, v->dat_fd, parts, fid.value().cookie, blob, std::move(respond));
}

void Handlers::ReadErasureCoded(http::Request& r, VolumeId vid, NeedleId id, Cookie cookie, const UrlPathParts& parts, http::Respond respond) {
  auto not_here = [this, vid, parts](http::Request& req, http::Respond respond) {
    if (config_.read_mode == "local") return respond(Empty(404));
    ReadElsewhere(req, vid, parts, std::move(respond));
  };
  if (!ec_read_) return not_here(r, std::move(respond));
  auto request = std::make_shared<http::Request>(r);  // the read completes after `r` may be gone
  ec_read_(CurrentMaster(), vid, id, [this, request, parts, cookie, not_here, respond = std::move(respond)](EcNeedleRead got) mutable {
    switch (got.outcome) {
      case EcNeedleRead::Outcome::kNoVolume:
        return not_here(*request, std::move(respond));
      case EcNeedleRead::Outcome::kNotFound:
      case EcNeedleRead::Outcome::kDeleted:
        return respond(Empty(404));
      case EcNeedleRead::Outcome::kError:
        KLOG_WARN("ec read %s: %s", request->path.c_str(), got.error.c_str());
        return respond(Empty(500));
      case EcNeedleRead::Outcome::kOk:
        break;
    }
    StoredBlob blob;
    blob.record = std::move(got.record);
    kelp::Status s;
    if (got.data) {
      s = ParseRecordWithoutData(got.version, got.data_size, &blob);
      blob.source = std::move(got.data);
    } else {
      s = ParseNeedle(reinterpret_cast<const uint8_t*>(blob.record.data()), blob.record.size, got.size, got.version, &blob.needle);
    }
    if (!s.ok()) {
      KLOG_WARN("ec read %s: %s", request->path.c_str(), s.message().c_str());
      return respond(Empty(500));
    }
    ServeBlob(*request, -1, parts, cookie, blob, std::move(respond));
  });
}

namespace {

// A streamed blob's source that failed: deleted meanwhile (NotFound) is a 404.
int StreamedReadStatus(const kelp::Status& s) { return s.code() == kelp::Code::kNotFound ? 404 : 500; }

}  // namespace

void Handlers::ServeBlob(http::Request& r, int dat_fd, const UrlPathParts& parts, Cookie cookie, StoredBlob& blob, http::Respond respond) {
  const ParsedNeedle& n = blob.needle;
  if (n.header.cookie != cookie) return respond(Empty(404));
  // Go expires a needle by its own TTL, counted from when it was appended.
  if ((n.flags & kFlagHasTtl) && (n.flags & kFlagHasLastModified) && n.ttl.Seconds() / 60 > 0) {
    const uint64_t now_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    if (now_ns >= n.append_at_ns + n.ttl.Seconds() / 60 * 60 * 1000000000ull) return respond(Empty(404));
  }

  http::Response resp;
  // Counted in flight until the answer is out (Go's memory cost of a read).
  resp.hold = limits_.HoldDownload(int64_t(n.header.size));
  if (n.last_modified != 0) {
    resp.Set("Last-Modified", HttpTime(n.last_modified));
    uint64_t since = 0;
    if (const std::string* ims = r.Header("if-modified-since"); ims && ParseHttpTime(*ims, &since) && since >= n.last_modified) {
      resp.status = 304;
      return respond(std::move(resp));
    }
  }
  const std::string etag = Etag(n.checksum);
  if (r.HeaderOr("if-none-match") == "\"" + etag + "\"") {
    resp.status = 304;
    return respond(std::move(resp));
  }
  resp.Set("Etag", "\"" + etag + "\"");
  if (n.flags & kFlagHasPairs) SetPairHeaders(n.pairs, &resp);
  std::string filename = parts.filename, ext = parts.ext;
  if (!n.name.empty() && filename.empty()) {
    filename = std::string(n.name);
    if (ext.empty()) ext = PathExt(filename);
  }
  std::string lower_ext = ext;
  for (char& c : lower_ext) c = char(tolower(static_cast<unsigned char>(c)));
  const ImageRequest image = ImageRequestFor(r, lower_ext);
  const bool manifest = n.IsChunkManifest() && r.Query("cm") != "false";
  if (blob.source && (manifest || (image.Any() && r.method != "HEAD"))) {
    // Served from the whole data: the record is read whole, then served again.
    auto request = std::make_shared<http::Request>(r);
    return blob.source->ReadWhole([this, request, parts, cookie, respond = std::move(respond)](kelp::Status s, StoredBlob whole) mutable {
      if (!s.ok()) return respond(Empty(StreamedReadStatus(s)));
      ServeBlob(*request, -1, parts, cookie, whole, std::move(respond));
    });
  }
  if (manifest) {
    // A manifest that does not parse is served as it is stored, as in Go.
    if (auto m = LoadManifest(dat_fd, blob); m.ok())
      return ReadChunked(r, std::move(m.value()), parts.filename, std::move(resp), std::move(respond));
  }
  std::string mtype;
  if (!n.mime.empty() && std::string_view(n.mime).rfind("application/octet-stream", 0) != 0) mtype = std::string(n.mime);

  std::string inflated;
  bool decompressed = false;
  std::string_view data = n.data;
  if (n.IsCompressed() && !blob.streamed) {
    if (image.Any()) {
      // A transformed image is served from the inflated bytes.
      if (Gunzip(data, size_t(InflateLimit()), &inflated)) {
        data = inflated;
        decompressed = true;
      }
    } else if (r.HeaderOr("accept-encoding").find("gzip") != std::string::npos && IsGzipped(data)) {
      resp.Set("Content-Encoding", "gzip");
    } else if (Gunzip(data, size_t(InflateLimit()), &inflated)) {
      data = inflated;
      decompressed = true;
    }
  }
  if (mtype.empty() && !PathExt(filename).empty()) mtype = MimeTypeByExtension(PathExt(filename));
  if (!mtype.empty()) resp.Set("Content-Type", mtype);
  resp.Set("Accept-Ranges", "bytes");
  SetPassthroughHeaders(r, filename, &resp);
  const int64_t total = int64_t(blob.streamed ? blob.data_size : data.size());
  if (r.method == "HEAD") {
    resp.Set("Content-Length", std::to_string(total));
    resp.head_only = true;
    return respond(std::move(resp));
  }
  if (image.Any()) {
    std::string whole;
    if (decompressed) whole = std::move(inflated);
    else if (!CopyBlobData(dat_fd, blob, ~uint64_t(0), &whole).ok()) return respond(Empty(500));
    return ServeImage(std::make_shared<const http::Request>(r), std::move(resp), mtype, std::move(whole), lower_ext, image,
                      std::move(respond));
  }
  RangePlan plan;
  if (!PlanRangeResponse(r, total, mtype, &resp, &plan)) return respond(std::move(resp));
  if (blob.streamed && mtype.empty() && !plan.multipart) {
    const int64_t sniff_at = std::clamp<int64_t>(plan.start, 0, total);
    if (blob.source && blob.peeked_at != sniff_at) {
      // The first bytes are read, then the blob is served again with them.
      auto request = std::make_shared<http::Request>(r);
      auto held = std::make_shared<StoredBlob>(std::move(blob));
      return held->source->Peek(uint64_t(sniff_at), http::kSniffLen,
                                [this, request, parts, cookie, held, sniff_at, respond = std::move(respond)](kelp::Status s, std::string head) mutable {
                                  if (!s.ok()) return respond(Empty(StreamedReadStatus(s)));
                                  held->peeked_at = sniff_at;
                                  held->peeked = std::move(head);
                                  ServeBlob(*request, -1, parts, cookie, *held, std::move(respond));
                                });
    }
    if (blob.source) {
      resp.Set("Content-Type", http::DetectContentType(blob.peeked));
    } else {
      std::string head(size_t(std::min<int64_t>(total - sniff_at, int64_t(http::kSniffLen))), '\0');
      if (PreadFull(dat_fd, head.data(), head.size(), off_t(blob.data_offset + uint64_t(sniff_at))).ok())
        resp.Set("Content-Type", http::DetectContentType(head));
    }
  }
  auto slice = [&](int64_t start, int64_t len) -> std::unique_ptr<http::BodySource> {
    const uint64_t length = uint64_t(std::max<int64_t>(len, 0));
    if (blob.source) return blob.source->Slice(uint64_t(start), length);
    return StreamBlobData(dat_fd, blob, uint64_t(start), length, kStreamPieceBytes);
  };
  if (plan.multipart) {
    const auto& ranges = plan.ranges;
    if (blob.streamed) {
      auto body = std::make_unique<ConcatSource>();
      for (size_t i = 0; i < ranges.size(); ++i) {
        body->AddLiteral(plan.framing.heads[i]);
        body->AddStream(slice(ranges[i].start, ranges[i].length));
      }
      body->AddLiteral(plan.framing.tail);
      resp.stream = std::move(body);
    } else {
      FillRangeBody(plan, data, &resp);
    }
    return respond(std::move(resp));
  }
  const int64_t start = plan.start, len = plan.length;
  if (len == 0) {
    // Nothing to send (an empty needle or range).
  } else if (blob.streamed && !blob.source && start == 0 && uint64_t(len) == blob.data_size && blob.data_size <= kCheckFirstLimit) {
    // Go checks the CRC of the whole data before its answer is committed:
    // a mismatch is its 500, never a body. The pass runs on the loop, so
    // only up to kCheckFirstLimit; a larger needle is checked as it streams.
    auto checked = MapAndCheckData(dat_fd, blob);
    if (!checked.ok()) {
      KLOG_ERROR("read %s: %s", r.path.c_str(), checked.status().message().c_str());
      return respond(Empty(500));
    }
    const uint32_t crc = checked.value().crc;
    if (!CrcMatches(crc, n.checksum)) {
      return respond(TextError(std::move(resp), 500,
                               "ReadNeedleData checksum " + std::to_string(crc) + " expected " + std::to_string(n.checksum) +
                                   " for Needle: " + std::to_string(ParseVolumeId(parts.vid).value()) + "," + NeedleString(n, blob.data_size)));
    }
    resp.stream = StreamCheckedData(dat_fd, blob, std::move(checked.value()), kStreamPieceBytes);
  } else if (blob.streamed) {
    resp.stream = slice(start, len);
  } else if (!decompressed) {
    // Hand the record buffer itself to the response: no copy of the data.
    resp.body_offset = size_t(data.data() - blob.record.data()) + size_t(start);
    resp.body_length = size_t(len);
    resp.buffer = std::move(blob.record);
  } else {
    FillRangeBody(plan, inflated, &resp);
  }
  respond(std::move(resp));
}

void Handlers::Write(http::Request& r, http::Respond respond) {
  if (!guard_.WhiteListed(r.remote_ip)) return respond(Empty(401));
  if (const kelp::Status form = ApplyWriteForm(&r); !form.ok()) return respond(JsonError(r, 400, form.message()));
  const UrlPathParts parts = ParseUrlPath(r.path);
  auto vid = ParseVolumeId(parts.vid);
  if (!vid.ok()) return respond(JsonError(r, 400, vid.status().message()));
  if (!guard_.JwtAllows(r, parts.vid, parts.fid, true, int64_t(NowSeconds()))) return respond(JsonError(r, 401, "wrong jwt"));
  const std::string jwt = JwtOf(r);
  auto upload = ParseUpload(r, uint64_t(config_.file_size_limit_bytes), InflateLimit());
  if (!upload.ok()) return respond(JsonError(r, 400, upload.status().message()));
  auto fid = ParseFidWithDelta(UploadFidOf(r.path));
  if (!fid.ok()) return respond(JsonError(r, 400, fid.status().message()));
  const VolumeView* v = volumes_->Find(vid.value());
  if (!v) {
    return respond(JsonError(r, 500, "volume " + std::to_string(vid.value()) + " not found on " + config_.ip + ":" +
                                         std::to_string(config_.port)));
  }
  if (v->segment.ReadOnly()) return respond(JsonError(r, 500, "volume " + std::to_string(vid.value()) + " is read only"));

  auto w = std::make_shared<PendingWrite>();
  w->upload = std::move(upload.value());
  {
    // Moving a short (inline) string moves its bytes: re-point the view.
    const char* old_base = r.body.data();
    const std::string_view data = w->upload.data;
    const bool views_body = data.data() >= old_base && data.data() <= old_base + r.body.size();
    w->body = std::move(r.body);
    if (views_body) w->upload.data = std::string_view(w->body.data() + (data.data() - old_base), data.size());
  }
  w->fields = NeedleFieldsFor(w->upload, fid.value().id, fid.value().cookie, NowSeconds(), &w->pairs_json);
  if (config_.fix_jpg_orientation && IsJpegUpload(w->upload) && !w->upload.gzipped) {
    // Go turns JPEGs upright by their EXIF orientation before storing them.
    auto fixed = std::make_shared<std::optional<std::string>>();
    auto request = std::make_shared<http::Request>(r);  // its body now lives in `w`
    return RunOffLoop(
        loop_, [w, fixed] { *fixed = FixJpegOrientation(w->fields.data); },
        [this, fixed, request, w, volume = vid.value(), jwt, respond] {
          if (*fixed) {
            w->fixed = std::move(**fixed);
            w->fields.data = w->fixed;
          }
          const VolumeView* v = volumes_->Find(volume);
          if (!v) return respond(JsonError(*request, 500, "volume " + std::to_string(volume) + " not found"));
          WriteNeedle(*request, *v, w, jwt, respond);
        });
  }
  WriteNeedle(r, *v, w, jwt, std::move(respond));
}

void Handlers::WriteNeedle(http::Request& r, const VolumeView& v, std::shared_ptr<PendingWrite> w,
                           const std::string& jwt, http::Respond respond) {
  const uint32_t crc = Crc32c(w->fields.data.data(), w->fields.data.size());
  const std::string etag = Etag(crc);

  // Re-uploading identical content is not written again, as in Go (replicas still get it).
  StoredBlob old;
  std::string error;
  const bool unchanged = ReadBlob(v, w->fields.id, false, &old, &error) == ReadOutcome::kOk && !old.streamed &&
                         old.needle.header.cookie == w->fields.cookie && old.needle.checksum == crc &&
                         old.needle.data == w->fields.data;

  const bool fsync = r.Query("fsync") == "true";
  const bool pretty = WantsPretty(r);
  const VolumeId volume = v.id;
  const std::string path = r.url.substr(0, r.url.find('?'));
  auto answer = [=](kelp::Status st) {
    if (!st.ok()) return respond(JsonError(pretty, 500, st.message()));
    const ParsedUpload& u = w->upload;
    if (unchanged) {
      http::Response resp = Empty(204);
      resp.Set("Etag", "\"" + etag + "\"");
      resp.Set("Content-MD5", u.content_md5);
      return respond(std::move(resp));
    }
    JsonObject o;
    if ((w->fields.flags & kFlagHasName) && !w->fields.name.empty()) o.Str("name", std::string(w->fields.name));
    if (u.original_size) o.UNum("size", u.original_size);
    o.Str("eTag", etag);
    if (!w->fields.mime.empty()) o.Str("mime", std::string(w->fields.mime));
    if (!u.content_md5.empty()) o.Str("contentMd5", u.content_md5);
    http::Response resp = JsonResponse(pretty, 201, o.Done());
    resp.headers.insert(resp.headers.begin(), {"Etag", "\"" + etag + "\""});
    resp.headers.insert(resp.headers.begin() + 1, {"Content-MD5", u.content_md5});
    respond(std::move(resp));
  };
  FindReplicas(volume, v, r.Query("type") == "replicate", [=, this](kelp::Status st, std::vector<VolumeLocation> remotes) {
    if (!st.ok()) return answer(st);
    auto replicate = [=, this, remotes = std::move(remotes)]() {
      SendToReplicas(remotes, [&](const VolumeLocation& loc) {
        http::ClientRequest req = ReplicaUpload(path, w->fields, w->upload, fsync, loc.url, w);
        if (!jwt.empty()) req.headers.emplace_back("Authorization", "BEARER " + jwt);
        return req;
      },
                     [=](kelp::Status rs) {
                       if (!rs.ok()) return answer(kelp::Status::Unavailable("failed to write to replicas for volume " + std::to_string(volume) + ": " + rs.message()));
                       answer(kelp::Status::Ok());
                     });
    };
    if (unchanged) return replicate();
    link_->Write(volume, w->fields, crc, fsync, [=](const MutationResult& res) {
      // Go's text for any failure of the local write.
      if (!res.status.ok()) return answer(kelp::Status::IOError("failed to write to local disk: " + res.status.message()));
      replicate();
    });
  });
}

void Handlers::Delete(http::Request& r, http::Respond respond) {
  if (!guard_.WhiteListed(r.remote_ip)) return respond(Empty(401));
  const UrlPathParts parts = ParseUrlPath(r.path);
  auto fid = ParseFidWithDelta(parts.fid);
  if (!fid.ok()) return respond(JsonError(r, 400, fid.status().message()));
  if (!guard_.JwtAllows(r, parts.vid, parts.fid, true, int64_t(NowSeconds()))) return respond(JsonError(r, 401, "wrong jwt"));
  const std::string jwt = JwtOf(r);
  auto vid = ParseVolumeId(parts.vid);
  const VolumeView* v = vid.ok() ? volumes_->Find(vid.value()) : nullptr;
  if (!v && vid.ok() && ec_delete_) {
    // Not mounted here as a volume: perhaps erasure coded here.
    const bool pretty = WantsPretty(r);
    auto request = std::make_shared<http::Request>(r);
    return ec_delete_(CurrentMaster(), vid.value(), fid.value().id, fid.value().cookie,
                      [request, pretty, respond = std::move(respond)](EcNeedleDelete got) {
                        if (got.no_volume || got.deleted) return respond(JsonResponse(*request, 404, JsonObject().Num("size", 0).Done()));
                        if (!got.error.empty()) return respond(JsonError(pretty, 500, "Deletion Failed: " + got.error));
                        respond(JsonResponse(pretty, 202, JsonObject().Num("size", int64_t(got.size)).Done()));
                      });
  }
  StoredBlob blob;
  std::string error;
  if (!v || ReadBlob(*v, fid.value().id, false, &blob, &error) != ReadOutcome::kOk)
    return respond(JsonResponse(r, 404, JsonObject().Num("size", 0).Done()));
  if (blob.needle.header.cookie != fid.value().cookie)
    return respond(JsonError(r, 400, "File Random Cookie does not match."));
  int64_t count = int64_t(blob.needle.header.size);
  // Go copies `ts` into the needle's LastModified, which a tombstone does not store.
  const bool pretty = WantsPretty(r);
  const VolumeId volume = vid.value();
  const NeedleIdCookie idc = fid.value();
  const std::string path = r.url.substr(0, r.url.find('?'));
  auto fail = [=](const kelp::Status& st) { respond(JsonError(pretty, 500, "Deletion Failed: " + st.message())); };
  const bool is_replica = r.Query("type") == "replicate";
  // Runs after the chunk deletes of a manifest, when `r` may be gone.
  auto delete_needle = [=, this](int64_t reported) {
    const VolumeView* v = volumes_->Find(volume);
    if (!v) return fail(kelp::Status::NotFound("volume " + std::to_string(volume) + " is gone"));
    FindReplicas(volume, *v, is_replica, [=, this](kelp::Status st, std::vector<VolumeLocation> remotes) {
      if (!st.ok()) return fail(st);
      link_->Delete(volume, idc.id, idc.cookie, 0, [=, this](const MutationResult& res) {
        if (!res.status.ok()) return fail(res.status);
        SendToReplicas(remotes, [&](const VolumeLocation&) {
          http::ClientRequest req;
          req.method = "DELETE";
          req.target = path + "?type=replicate";
          if (!jwt.empty()) req.headers.emplace_back("Authorization", "BEARER " + jwt);
          return req;
        }, [=](kelp::Status rs) {
          if (!rs.ok()) return fail(rs);
          respond(JsonResponse(pretty, 202, JsonObject().Num("size", reported).Done()));
        });
      });
    });
  };
  if (!blob.needle.IsChunkManifest()) return delete_needle(count);
  auto m = LoadManifest(v->dat_fd, blob);
  if (!m.ok()) return respond(JsonError(r, 500, "Load chunks manifest error: " + m.status().message()));
  // Every chunk is deleted before the manifest, so a failure leaves the manifest to retry with.
  count = m.value().size;
  DeleteChunks(m.value(), [=](kelp::Status s) {
    if (!s.ok()) return respond(JsonError(pretty, 500, "Delete chunks error: " + s.message()));
    delete_needle(count);
  });
}

// Like Go's: unhealthy while not registered with a master or shutting down.
void Handlers::Healthz(http::Request&, http::Respond respond) { respond(Empty(draining_ || !cluster_->registered ? 503 : 200)); }

}  // namespace kelp
