// Headers of a read answer that come from the request or the needle: S3-style
// `response-*` overrides and Content-Disposition (Go's AdjustPassthroughHeaders),
// and the stored pairs.
#pragma once
#include <string>
#include <string_view>

#include "worker-http/http_types.h"

namespace kelp {

// Go's mime.FormatMediaType(type, {"filename": filename}).
std::string ContentDisposition(const std::string& type, const std::string& filename);

// Applies `response-cache-control`, `response-content-type` and the other
// passthrough query parameters (each replaces the header it names), then a
// Content-Disposition for `filename` unless one is set: `attachment` when
// `dl` is true, `inline` otherwise.
void SetPassthroughHeaders(const http::Request& r, const std::string& filename, http::Response* resp);

// The needle's pairs (a JSON object of strings, stored from `Seaweed-*` upload
// headers) as response headers, the way Go's read handler sets them (canonical
// names, each replacing what was set before), except the headers that frame
// the message (Content-Length, Transfer-Encoding, Connection and the other
// hop-by-hop ones), which only the server writes.
void SetPairHeaders(std::string_view pairs_json, http::Response* resp);

// Go's strconv.ParseBool accepting only its true spellings.
bool IsTrueParam(const std::string& v);

}  // namespace kelp
