// Turns an upload request into needle fields, as Go's ParseUpload and
// CreateNeedleFromRequest do (upstream: weed/storage/needle/needle_parse_upload.go,
// needle.go). Pure: no I/O, so it is unit-tested and fuzzed directly.
#pragma once
#include <map>
#include <memory>
#include <utility>
#include <string>
#include <string_view>

#include "common/needle.h"
#include "common/status.h"
#include "worker-http/http_types.h"
#include "worker-http/media_params.h"

namespace kelp {

struct ParsedUpload {
  std::string file_name;
  std::string_view data;  // points into the request body, or into `owned_data`
  std::shared_ptr<const std::string> owned_data;  // the gzipped body kelp compressed
  std::string mime;
  std::map<std::string, std::string> pairs;  // "Seaweed-" prefix already removed
  bool gzipped = false;
  uint64_t original_size = 0;
  uint64_t modified_time = 0;
  Ttl ttl;
  bool chunk_manifest = false;
  std::string content_md5;
};

// `size_limit` is -fileSizeLimitMB in bytes; `inflate_limit` bounds what a
// gzipped upload may inflate to (sizes and Content-MD5 are of the inflated data).
// Compressible uploads (Go's IsCompressableFileType) are gzipped when that saves
// at least 10%, except replica writes (`type=replicate`), which keep the sender's.
Result<ParsedUpload> ParseUpload(const http::Request& r, uint64_t size_limit, uint64_t inflate_limit);

// Go's util.IsCompressableFileType: {should be compressed, sure}.
std::pair<bool, bool> IsCompressibleFileType(std::string_view ext, std::string_view mime);

// The needle fields Go would write for this upload (flags included). Views
// point into `u` and `pairs_json`, which must outlive the result.
NeedleFields NeedleFieldsFor(const ParsedUpload& u, NeedleId id, Cookie cookie, uint64_t now_s, std::string* pairs_json);

// Go's mime.TypeByExtension for the extensions kelp knows ("" when unknown).
std::string MimeTypeByExtension(std::string_view ext_lower);
// Go's test for -images.fix.orientation: a JPEG by MIME type or file name.
bool IsJpegUpload(const ParsedUpload& u);

}  // namespace kelp
