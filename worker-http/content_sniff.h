// Content-Type sniffing as Go's net/http applies it to responses whose handler
// set no Content-Type (http.DetectContentType, after the WHATWG MIME sniffing
// standard): looks at the first 512 bytes only.
#pragma once
#include <string>
#include <string_view>

namespace kelp::http {

inline constexpr size_t kSniffLen = 512;
std::string DetectContentType(std::string_view data);

}  // namespace kelp::http
