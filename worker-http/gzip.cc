#include "worker-http/gzip.h"

#include <zlib.h>

#include <cstdint>
#include <functional>

namespace kelp {
namespace {

constexpr int kGzipWindowBits = 15 + 16;

// Inflates `in`, handing each piece of output to `sink`; stops when sink says so.
bool Inflate(std::string_view in, const std::function<bool(const char*, size_t)>& sink) {
  z_stream z{};
  if (inflateInit2(&z, kGzipWindowBits) != Z_OK) return false;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());
  char buf[64 * 1024];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    if (!sink(buf, sizeof buf - z.avail_out)) {
      rc = Z_MEM_ERROR;
      break;
    }
  } while (rc != Z_STREAM_END);
  inflateEnd(&z);
  return rc == Z_STREAM_END;
}

}  // namespace

bool IsGzipped(std::string_view d) { return d.size() >= 2 && uint8_t(d[0]) == 0x1f && uint8_t(d[1]) == 0x8b; }

bool Gunzip(std::string_view in, size_t limit, std::string* out) {
  out->clear();
  return Inflate(in, [&](const char* p, size_t n) {
    out->append(p, n);
    return out->size() <= limit;
  });
}

bool GunzippedSize(std::string_view in, uint64_t limit, uint64_t* size) {
  uint64_t n = 0;
  const bool ok = Inflate(in, [&](const char*, size_t k) {
    n += k;
    return n <= limit;
  });
  *size = n;
  return ok;
}

bool Gzip(std::string_view in, std::string* out) {
  if (in.size() > UINT32_MAX / 2) return false;
  z_stream z{};
  // Go's util.GzipData level (gzip.BestSpeed) and gzip header: no name, no
  // time, OS "unknown" (zlib would say Unix).
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  gz_header header{};
  header.os = 255;
  deflateSetHeader(&z, &header);
  out->resize(deflateBound(&z, uLong(in.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = uInt(out->size());
  const int rc = deflate(&z, Z_FINISH);
  out->resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END;
}

}  // namespace kelp
