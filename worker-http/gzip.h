// gzip helpers for compressed needles (zlib).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace kelp {

bool IsGzipped(std::string_view data);  // starts with the gzip magic
// Inflates gzip data; refuses output beyond `limit` bytes (decompression bombs).
bool Gunzip(std::string_view in, size_t limit, std::string* out);
// The inflated size of gzip data without keeping it; false past `limit` or on
// corrupt input.
bool GunzippedSize(std::string_view in, uint64_t limit, uint64_t* size);
// Compresses at the fastest level, as Go's volume server does for uploads.
bool Gzip(std::string_view in, std::string* out);

}  // namespace kelp
