// Chunk manifests (needles uploaded with `cm=true`, Go's ChunkManifest): a read
// serves the chunks, fetched from whichever servers hold them, as one body
// (`cm=false` serves the manifest itself); a delete removes the chunks first.
#include <ctime>
#include <deque>

#include <nlohmann/json.hpp>

#include "worker-http/chunked_source.h"
#include "worker-http/concat_source.h"
#include "worker-http/gzip.h"
#include "worker-http/handlers.h"
#include "worker-http/jwt.h"
#include "worker-http/range_response.h"
#include "worker-http/read_headers.h"

#include "common/file_id.h"
#include "common/file_util.h"
#include "worker-http/json_writer.h"

namespace kelp {
namespace {

std::string FidToken(const std::string& key, const std::string& fid) {
  if (key.empty()) return "";
  // Go's volume servers sign their own chunk requests with a ten-second expiry.
  const int64_t exp = int64_t(time(nullptr)) + 10;
  return SignJwtHs256(JsonObject().Num("exp", exp).Str("fid", fid).Done(), key);
}

std::string ErrorOf(const http::ClientResponse& resp) {
  try {
    auto j = nlohmann::json::parse(resp.body);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  } catch (...) {
  }
  return "status " + std::to_string(resp.status);
}

}  // namespace

Result<ChunkManifest> Handlers::LoadManifest(int dat_fd, const StoredBlob& blob) const {
  std::string stored;
  if (kelp::Status s = CopyBlobData(dat_fd, blob, uint64_t(config_.file_size_limit_bytes), &stored); !s.ok()) return s;
  std::string_view text = stored;
  std::string inflated;
  // Go keeps the stored bytes when they do not decompress.
  if (blob.needle.IsCompressed() && Gunzip(text, size_t(InflateLimit()), &inflated)) text = inflated;
  return ParseChunkManifest(text);
}

void Handlers::ReadChunked(const http::Request& r, ChunkManifest m, std::string filename, http::Response resp,
                           http::Respond respond) {
  if (filename.empty()) filename = m.name;
  std::string mtype;
  if (!m.mime.empty() && m.mime.rfind("application/octet-stream", 0) != 0) mtype = m.mime;
  resp.Set("X-File-Store", "chunked");
  if (mtype.empty() && !PathExt(filename).empty()) mtype = MimeTypeByExtension(PathExt(filename));
  if (!mtype.empty()) resp.Set("Content-Type", mtype);
  resp.Set("Accept-Ranges", "bytes");
  SetPassthroughHeaders(r, filename, &resp);
  const int64_t total = m.TotalSize();
  if (r.method == "HEAD") {
    resp.Set("Content-Length", std::to_string(total));
    resp.head_only = true;
    return respond(std::move(resp));
  }
  RangePlan plan;
  if (!PlanRangeResponse(r, total, mtype, &resp, &plan)) return respond(std::move(resp));
  const std::string read_key = config_.security.jwt_read_key;
  const ChunkFetcher fetcher{&client_, &locator_, [read_key](const std::string& fid) { return FidToken(read_key, fid); }};
  if (plan.multipart) {
    auto body = std::make_unique<ConcatSource>();
    for (size_t i = 0; i < plan.ranges.size(); ++i) {
      body->AddLiteral(plan.framing.heads[i]);
      body->AddStream(std::make_unique<ChunkedSource>(fetcher, m.chunks, plan.ranges[i].start,
                                                      std::max<int64_t>(plan.ranges[i].length, 0)));
    }
    body->AddLiteral(plan.framing.tail);
    resp.stream = std::move(body);
    return respond(std::move(resp));
  }
  if (plan.length == 0) return respond(std::move(resp));
  // The status goes out once the first chunk's server has answered, so a
  // missing first chunk is a 500 naming it, as in Go.
  struct Waiting {
    http::Response resp;
    std::unique_ptr<ChunkedSource> source;
    http::Respond respond;
  };
  auto w = std::make_shared<Waiting>();
  w->resp = std::move(resp);
  w->source = std::make_unique<ChunkedSource>(fetcher, std::move(m.chunks), plan.start, plan.length);
  w->respond = std::move(respond);
  ChunkedSource* source = w->source.get();
  source->Start([w](kelp::Status s) {
    if (!s.ok()) return w->respond(TextError(std::move(w->resp), 500, s.message()));
    w->resp.stream = std::move(w->source);
    w->respond(std::move(w->resp));
  });
}

void Handlers::DeleteChunks(const ChunkManifest& m, std::function<void(kelp::Status)> done) {
  struct Job {
    std::string fid;
    VolumeId vid = 0;
  };
  // Every holder of every chunk is told, a few requests at a time; a chunk
  // already gone counts as deleted. The first failure is the answer.
  struct Run {
    std::deque<Job> queue;
    size_t in_flight = 0;
    std::string error;
    std::function<void(kelp::Status)> done;
  };
  auto run = std::make_shared<Run>();
  for (const ChunkInfo& c : m.chunks) {
    auto split = SplitFileId(c.fid);
    auto vid = split.ok() ? ParseVolumeId(split.value().vid) : Result<VolumeId>(split.status());
    if (!vid.ok()) return done(kelp::Status::Invalid("chunk delete " + c.fid + ": " + vid.status().message()));
    run->queue.push_back(Job{c.fid, vid.value()});
  }
  if (run->queue.empty()) return done(kelp::Status::Ok());
  run->done = std::move(done);
  const std::string write_key = config_.security.jwt_write_key;
  auto pump = std::make_shared<std::function<void()>>();
  *pump = [this, run, write_key, weak = std::weak_ptr<std::function<void()>>(pump)]() {
    constexpr size_t kParallel = 8;
    while (run->in_flight < kParallel && !run->queue.empty() && run->error.empty()) {
      Job job = std::move(run->queue.front());
      run->queue.pop_front();
      ++run->in_flight;
      auto next = weak.lock();
      locator_.Lookup(job.vid, [this, run, job, write_key, next](kelp::Status s, const std::vector<VolumeLocation>& found) {
        auto finish = [run, next](const std::string& error) {
          if (!error.empty() && run->error.empty()) run->error = error;
          --run->in_flight;
          if (run->in_flight == 0 && (run->queue.empty() || !run->error.empty())) {
            if (auto d = std::move(run->done)) {
              run->done = nullptr;
              d(run->error.empty() ? kelp::Status::Ok() : kelp::Status::Unavailable(run->error));
            }
            return;
          }
          (*next)();
        };
        if (!s.ok()) return finish("chunk delete " + job.fid + ": " + s.message());
        if (found.empty()) return finish("chunk delete " + job.fid + ": File Not Found");
        auto left = std::make_shared<size_t>(found.size());
        auto first_error = std::make_shared<std::string>();
        for (const VolumeLocation& loc : found) {
          http::ClientRequest req;
          req.method = "DELETE";
          req.host_port = loc.url;
          req.target = "/" + job.fid + "?type=replicate";
          if (std::string token = FidToken(write_key, job.fid); !token.empty()) req.headers.emplace_back("Authorization", "BEARER " + token);
          req.timeout_ms = 60000;
          client_.Fetch(std::move(req), 1 << 20, [job, left, first_error, finish](kelp::Status st, http::ClientResponse resp) {
            if (!st.ok()) *first_error = "chunk delete " + job.fid + ": " + st.message();
            else if (resp.status != 202 && resp.status != 404 && resp.status != 304 && first_error->empty())
              *first_error = "chunk delete " + job.fid + ": " + ErrorOf(resp);
            if (--*left == 0) finish(*first_error);
          });
        }
      });
    }
  };
  // After this call `pump` lives on in the callbacks of the lookups and deletes it started.
  (*pump)();
}

}  // namespace kelp
