// gzip helpers for compressed needles (zlib).
#pragma once
#include <string>
#include <string_view>

namespace kelp {

bool IsGzipped(std::string_view data);  // starts with the gzip magic
// Inflates gzip data; refuses output beyond `limit` bytes (decompression bombs).
bool Gunzip(std::string_view in, size_t limit, std::string* out);

}  // namespace kelp
