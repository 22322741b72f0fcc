// Query: selects fields from JSON needles (S3 Select's volume-side half).
// For each file id in order the needle is read as a plain GET reads it; its
// stored bytes are a run of JSON values, filtered and projected as Go does
// (common/json_scan.h), one QueriedStripe per id. CSV and Parquet inputs
// produce nothing, as in Go. A cookie mismatch ends the stream quietly.
// (upstream: weed/server/volume_grpc_query.go, weed/query/json;
// docs/scrub-query-receive.md §3)
#include <cstdlib>

#include "common/file_id.h"
#include "common/go_error.h"
#include "common/json_scan.h"
#include "proto/kelp_internal.pb.h"
#include "worker-grpc/volume_service.h"

namespace kelp {
namespace {

// One stripe is one gRPC message; the worker's limit is far above this.
constexpr size_t kMaxStripeBytes = 64u << 20;

// Go parses the volume id with its error ignored: not a number reads as 0,
// and a big one wraps to 32 bits (strconv.ParseUint, then uint32()).
uint32_t LenientVolumeId(std::string_view s) {
  uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return 0;
    const uint64_t next = v * 10 + uint64_t(c - '0');
    if (next / 10 != v) return 0xFFFFFFFFu;  // out of range: ParseUint's maximum
    v = next;
  }
  return s.empty() ? 0 : uint32_t(v);
}

}  // namespace

grpc::Status VolumeService::Query(grpc::ServerContext*, const volume_server_pb::QueryRequest* req,
                                  grpc::ServerWriter<volume_server_pb::QueriedStripe>* writer) {
  const std::vector<std::string> selections(req->selections().begin(), req->selections().end());
  for (const std::string& fid : req->from_file_ids()) {
    auto parts = SplitFileId(fid);
    if (!parts.ok()) return GoError(parts.status().message());
    auto key = ParseFidWithDelta(parts.value().key);
    if (!key.ok()) return GoError(key.status().message());
    kelp_internal::NeedleRead read;
    read.set_volume_id(LenientVolumeId(parts.value().vid));
    read.set_needle_id(key.value().id);
    kelp_internal::NeedleData needle;
    if (grpc::Status s = supervisor_->Call("kelp.ReadNeedleData", read, &needle); !s.ok()) return s;
    if (needle.size() != 0 && needle.cookie() != key.value().cookie) return grpc::Status::OK;
    // Go crashes on a missing input or filter; kelp reads them as empty.
    if (!req->input_serialization().has_json_input()) continue;
    const auto& filter = req->filter();
    std::string records;
    bool too_big = false;
    json::ForEachTopLevelValue(needle.data(), [&](std::string_view line) {
      if (json::FilterPasses(line, filter.field(), filter.operand(), filter.value())) records += json::Project(line, selections);
      too_big = records.size() > kMaxStripeBytes;
      return !too_big;
    });
    // Go builds any size and then fails to send it; kelp stops first.
    if (too_big) return GoError("query result for " + fid + " exceeds " + std::to_string(kMaxStripeBytes) + " bytes");
    volume_server_pb::QueriedStripe stripe;
    stripe.set_records(records);
    if (!writer->Write(stripe)) return grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away");
  }
  return grpc::Status::OK;
}

}  // namespace kelp
