// Headers of a read answer that come from the request: S3-style
// `response-*` overrides and Content-Disposition (Go's AdjustPassthroughHeaders).
#pragma once
#include <string>

#include "worker-http/http_types.h"

namespace kelp {

// Go's mime.FormatMediaType(type, {"filename": filename}).
std::string ContentDisposition(const std::string& type, const std::string& filename);

// Applies `response-cache-control`, `response-content-type` and the other
// passthrough query parameters (each replaces the header it names), then a
// Content-Disposition for `filename` unless one is set: `attachment` when
// `dl` is true, `inline` otherwise.
void SetPassthroughHeaders(const http::Request& r, const std::string& filename, http::Response* resp);

// Go's strconv.ParseBool accepting only its true spellings.
bool IsTrueParam(const std::string& v);

}  // namespace kelp
