// Routes requests to the blob and admin handlers, as Go's volume server mux
// does (upstream: weed/server/volume_server.go, volume_server_handlers*.go).
#pragma once
#include <string>

#include "common/server_config.h"
#include "ipc/shared_gauges.h"
#include "ipc/worker_side.h"
#include "worker-http/blob_reader.h"
#include "worker-http/ec/ec_needle.h"
#include "worker-http/chunk_manifest.h"
#include "worker-http/http_server.h"
#include "worker-http/http_types.h"
#include "worker-http/image_ops.h"
#include "worker-http/inflight_limits.h"
#include "worker-http/fid_path.h"
#include "worker-http/guard.h"
#include "worker-http/http_client.h"
#include "worker-http/supervisor_link.h"
#include "worker-http/upload.h"
#include "worker-http/volume_locator.h"
#include "worker-http/volume_table.h"

namespace kelp {



class Handlers {
 public:
  // `gauges` (shared by all workers) may be null: nothing is then counted or limited.
  Handlers(uv_loop_t* loop, const ServerConfig& config, VolumeTable* volumes, SupervisorLink* link,
           const ipc::ServerStateView* cluster, ipc::SharedGauges* gauges, int gauge_slot);

  // The main port.
  void Handle(http::Request& r, http::Respond respond);
  // -port.public: reads only (Go's publicReadOnlyHandler).
  void HandlePublic(http::Request& r, http::Respond respond);
  // Holds an upload's body back while the server's in-flight uploads are over
  // -concurrentUploadLimitMB (http::Server admission).
  http::Admission UploadAdmission();
  void set_draining() { draining_ = true; }
  // Reads of erasure-coded volumes (none without it).
  void set_ec_read(EcReadFn fn) { ec_read_ = std::move(fn); }
  void set_ec_delete(EcDeleteFn fn) { ec_delete_ = std::move(fn); }

 private:
  // Counts the request in the shared metrics and decorates its answer.
  http::Respond Measured(const http::Request& r, http::Respond respond);
  // Reads wait here while the server's in-flight downloads are over the limit.
  void ReadLimited(http::Request& r, http::Respond respond);
  void Read(http::Request& r, http::Respond respond);
  // A volume not mounted here may be erasure coded here: read through
  // `ec_read_`, else handled as held elsewhere (-readMode).
  void ReadErasureCoded(http::Request& r, VolumeId vid, NeedleId id, Cookie cookie, const UrlPathParts& parts, http::Respond respond);
  // Answers a read from a stored blob (conditional headers, ranges, images,
  // manifests). `dat_fd`: the volume's .dat for streamed blobs, else -1.
  void ServeBlob(http::Request& r, int dat_fd, const UrlPathParts& parts, Cookie cookie, StoredBlob& blob, http::Respond respond);
  // handlers_remote.cc: -readMode proxy/redirect for volumes held elsewhere.
  // `force_proxy`: proxied whatever -readMode says (a replica relieving an over-limit server).
  void ReadElsewhere(http::Request& r, VolumeId vid, const UrlPathParts& parts, http::Respond respond,
                     bool force_proxy = false);
  // handlers_replicate.cc: the other holders of a replicated volume, and forwarding to them.
  // `is_replica`: the request is itself a replica's copy (`type=replicate`), never forwarded.
  void FindReplicas(VolumeId vid, const VolumeView& v, bool is_replica,
                    std::function<void(kelp::Status, std::vector<VolumeLocation>)> done);
  void SendToReplicas(const std::vector<VolumeLocation>& remotes,
                      const std::function<http::ClientRequest(const VolumeLocation&)>& make,
                      std::function<void(kelp::Status)> done);
  std::string CurrentMaster() const {
    if (!cluster_->master.empty()) return cluster_->master;
    return config_.masters.empty() ? "" : config_.masters.front();
  }
  // handlers_chunked.cc: chunk manifests.
  // `dat_fd`: where a streamed blob's data is (-1 for a blob read whole).
  Result<ChunkManifest> LoadManifest(int dat_fd, const StoredBlob& blob) const;
  void ReadChunked(const http::Request& r, ChunkManifest m, std::string filename, http::Response resp, http::Respond respond);
  void DeleteChunks(const ChunkManifest& m, std::function<void(kelp::Status)> done);
  void Write(http::Request& r, http::Respond respond);
  // Everything a write needs once the request is gone (replica lookups and
  // writes outlive it): the body the upload views, the upload, the needle fields.
  struct PendingWrite {
    std::string body;
    ParsedUpload upload;
    std::string pairs_json;
    NeedleFields fields;
    std::string fixed;  // the upright JPEG, when -images.fix.orientation turned it
  };
  void WriteNeedle(http::Request& r, const VolumeView& v, std::shared_ptr<PendingWrite> w, const std::string& jwt,
                   http::Respond respond);
  void Delete(http::Request& r, http::Respond respond);
  void Status(http::Request& r, http::Respond respond);
  void Ui(http::Request& r, http::Respond respond);  // handlers_ui.cc
  // /favicon.ico and /seaweedfsstatic/seaweed50x50.png: kelp's own icon, drawn
  // on first request (tiny, so on the loop) (handlers_ui.cc).
  bool ServeStatic(const http::Request& r, const http::Respond& respond);
  // handlers_images.cc: serves `data` cropped/resized as asked (the original when that fails).
  void ServeImage(std::shared_ptr<const http::Request> r, http::Response resp, std::string mtype, std::string data,
                  std::string ext, ImageRequest request, http::Respond respond);
  void Healthz(http::Request& r, http::Respond respond);

  // What a gzipped needle may inflate to, read or written (decompression bombs).
  uint64_t InflateLimit() const { return uint64_t(config_.file_size_limit_bytes) * 4 + (64u << 20); }

  uv_loop_t* loop_;
  const ServerConfig& config_;
  Guard guard_;
  VolumeTable* volumes_;
  SupervisorLink* link_;
  const ipc::ServerStateView* cluster_;
  http::Client client_;
  VolumeLocator locator_;
  ipc::SharedGauges* gauges_;
  InflightLimits limits_;
  std::string icon_png_, icon_ico_;  // drawn on first request
  bool draining_ = false;
  EcReadFn ec_read_;
  EcDeleteFn ec_delete_;
};

// The replica copy of an upload, as Go's replicating uploader sends it. The
// needle data is not copied: `data_owner` keeps what `f.data` points into.
http::ClientRequest ReplicaUpload(const std::string& path, const NeedleFields& f, const ParsedUpload& u, bool fsync,
                                  const std::string& url, std::shared_ptr<const void> data_owner);

// Common response decorations (Server header, request id, CORS) and JSON bodies.
void Decorate(bool cors, http::Response* resp);
// `respond`, decorating the answer for request `r`.
http::Respond Decorated(const http::Request& r, http::Respond respond);
bool WantsPretty(const http::Request& r);
http::Response JsonResponse(const http::Request& r, int status, std::string json);
http::Response JsonResponse(bool pretty, int status, std::string json);
http::Response JsonError(bool pretty, int status, const std::string& message);
http::Response JsonError(const http::Request& r, int status, const std::string& message);
http::Response Empty(int status);

}  // namespace kelp
