// Replicated writes and deletes (Go's topology.ReplicatedWrite/Delete): for a
// volume whose placement asks for more than one copy, the other holders are
// looked up on the master before the local change, and the change is forwarded
// to each of them with `type=replicate` after it. The client hears success only
// when every copy has it; requests that are themselves replicas are not forwarded.
#include "worker-http/byte_ranges.h"
#include "worker-http/handlers.h"

namespace kelp {
namespace {

int CopyCount(const ReplicaPlacement& rp) { return 1 + rp.same_rack + rp.diff_rack + rp.diff_data_center; }

std::string EscapeFileName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c != '\n') out.push_back(c);
  }
  return out;
}

}  // namespace

void Handlers::FindReplicas(VolumeId vid, const VolumeView& v, bool is_replica,
                            std::function<void(kelp::Status, std::vector<VolumeLocation>)> done) {
  const int copies = CopyCount(v.replica_placement);
  if (is_replica || copies == 1) return done(kelp::Status::Ok(), {});
  const std::string self = config_.ip + ":" + std::to_string(config_.port);
  locator_.Lookup(vid, [this, vid, copies, self, done = std::move(done)](kelp::Status s, const std::vector<VolumeLocation>& found) {
    if (!s.ok()) return done(kelp::Status::Unavailable("replicating lookup failed for " + std::to_string(vid) + ": " + s.message()), {});
    if (int(found.size()) < copies) {
      // The master may not have heard from every replica yet: ask again next time.
      locator_.Invalidate(vid);
      return done(kelp::Status::Unavailable("replicating operations [" + std::to_string(found.size()) + "] is less than volume " +
                                            std::to_string(vid) + " replication copy count [" + std::to_string(copies) + "]"),
                  {});
    }
    std::vector<VolumeLocation> remote;
    for (const auto& l : found)
      if (l.url != self) remote.push_back(l);
    done(kelp::Status::Ok(), std::move(remote));
  });
}

void Handlers::SendToReplicas(const std::vector<VolumeLocation>& remotes,
                              const std::function<http::ClientRequest(const VolumeLocation&)>& make,
                              std::function<void(kelp::Status)> done) {
  if (remotes.empty()) return done(kelp::Status::Ok());
  struct Pending {
    size_t left;
    std::string errors;
    std::function<void(kelp::Status)> done;
  };
  auto pending = std::make_shared<Pending>(Pending{remotes.size(), "", std::move(done)});
  for (const auto& loc : remotes) {
    http::ClientRequest req = make(loc);
    req.host_port = loc.url;
    req.timeout_ms = 60000;
    const std::string url = loc.url;
    client_.Fetch(std::move(req), 1 << 20, [pending, url](kelp::Status s, http::ClientResponse resp) {
      if (s.ok() && (resp.status < 200 || resp.status >= 300) && resp.status != 404) {
        s = kelp::Status::Unavailable("status " + std::to_string(resp.status) + ": " + resp.body);
      }
      if (!s.ok()) pending->errors += (pending->errors.empty() ? "" : "\n") + ("[" + url + "]: " + s.message());
      if (--pending->left == 0)
        pending->done(pending->errors.empty() ? kelp::Status::Ok() : kelp::Status::Unavailable(pending->errors));
    });
  }
}

http::ClientRequest ReplicaUpload(const std::string& path, const NeedleFields& f, const ParsedUpload& u, bool fsync,
                                  const std::string& url, std::shared_ptr<const void> data_owner) {
  std::multimap<std::string, std::string> q;
  q.emplace("type", "replicate");
  q.emplace("ttl", (f.flags & kFlagHasTtl) ? f.ttl.String() : "");
  if (fsync) q.emplace("fsync", "true");
  if (f.last_modified > 0) q.emplace("ts", std::to_string(f.last_modified));
  if (f.flags & kFlagIsChunkManifest) q.emplace("cm", "true");
  http::ClientRequest req;
  req.method = "POST";
  req.target = path + "?" + http::EncodeQuery(q);
  // The needle data goes out as it lies in the upload: only the framing is per replica.
  struct Framing {
    std::string head, tail;
    std::shared_ptr<const void> data_owner;
  };
  auto framing = std::make_shared<Framing>();
  const std::string boundary = RandomBoundary();
  std::string& h = framing->head;
  h = "--" + boundary + "\r\n";
  h += "Content-Disposition: form-data; name=\"file\"; filename=\"" + EscapeFileName(f.name) + "\"\r\n";
  h += "Idempotency-Key: http://" + url + req.target + "\r\n";
  if (!f.mime.empty()) h += "Content-Type: " + std::string(f.mime) + "\r\n";
  if (f.flags & kFlagIsCompressed) h += "Content-Encoding: gzip\r\n";
  if (!u.content_md5.empty()) h += "Content-MD5: " + u.content_md5 + "\r\n";
  h += "\r\n";
  framing->tail = "\r\n--" + boundary + "--\r\n";
  framing->data_owner = std::move(data_owner);
  req.body = {framing->head, f.data, framing->tail};
  req.keep = std::move(framing);
  req.headers.emplace_back("Content-Type", "multipart/form-data; boundary=" + boundary);
  for (const auto& [k, v] : u.pairs) req.headers.emplace_back("Seaweed-" + k, v);
  return req;
}

}  // namespace kelp
