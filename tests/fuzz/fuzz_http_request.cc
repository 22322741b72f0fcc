// libFuzzer: the HTTP request path up to the storage layer: llhttp request
// assembly with kelp's limits, URL/fid parsing, query parsing and upload
// (raw and multipart) parsing into needle fields.
#include <cstdint>
#include <string>

#include "worker-http/fid_path.h"
#include "worker-http/request_parser.h"
#include "worker-http/upload.h"

using namespace kelp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::RequestParser parser(http::ParserLimits{64 * 1024, 1 << 20});
  const char* p = reinterpret_cast<const char*>(data);
  size_t left = size;
  for (int requests = 0; requests < 16 && left > 0; ++requests) {
    size_t used = 0;
    const auto outcome = parser.Feed(p, left, &used);
    if (outcome != http::RequestParser::Outcome::kRequest) {
      if (outcome == http::RequestParser::Outcome::kError) (void)parser.Refused();
      break;
    }
    http::Request& r = parser.request();
    const UrlPathParts parts = ParseUrlPath(r.path);
    (void)ParseVolumeId(parts.vid);
    (void)ParseFidWithDelta(parts.fid);
    (void)ParseFidWithDelta(UploadFidOf(r.path));
    (void)r.Query("ttl");
    auto upload = ParseUpload(r, 1 << 20, 1 << 22);
    if (upload.ok()) {
      std::string pairs;
      const NeedleFields f = NeedleFieldsFor(upload.value(), 1, 2, 3, &pairs);
      if (PlanNeedleV3(f).total < (4u << 20)) (void)EncodeNeedleV3(f);
    }
    p += used;
    left -= used;
    parser.Next();
  }
  return 0;
}
