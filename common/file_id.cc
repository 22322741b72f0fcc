#include "common/file_id.h"

#include "common/go_quote.h"

#include <charconv>

#include "common/bytes.h"

namespace kelp {

bool ParseHex(std::string_view s, size_t max_digits, uint64_t* out) {
  if (s.empty() || s.size() > max_digits) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = v << 4 | uint64_t(d);
  }
  *out = v;
  return true;
}

Result<NeedleIdCookie> ParseNeedleIdCookie(std::string_view s) {
  if (s.size() <= size_t(kCookieSize) * 2) return Status::Invalid("KeyHash is too short.");
  if (s.size() > size_t(kNeedleIdSize + kCookieSize) * 2) return Status::Invalid("KeyHash is too long.");
  const size_t split = s.size() - kCookieSize * 2;
  NeedleIdCookie r;
  uint64_t cookie = 0;
  // Go wraps strconv's error twice: "needle id <s> format error: ..." inside "Parse needleId error: ...".
  const std::string_view id = s.substr(0, split), cookie_hex = s.substr(split);
  if (!ParseHex(id, 16, &r.id))
    return Status::Invalid("Parse needleId error: needle id " + std::string(id) + " format error: strconv.ParseUint: parsing " +
                           GoQuote(id) + ": invalid syntax");
  if (!ParseHex(cookie_hex, 8, &cookie))
    return Status::Invalid("Parse cookie error: needle cookie " + std::string(cookie_hex) +
                           " format error: strconv.ParseUint: parsing " + GoQuote(cookie_hex) + ": invalid syntax");
  r.cookie = Cookie(cookie);
  return r;
}

Result<FileIdParts> SplitFileId(std::string_view fid) {
  const size_t comma = fid.find(',');
  if (comma == std::string_view::npos || comma == 0) return Status::Invalid("Wrong fid format.");
  return FileIdParts{fid.substr(0, comma), fid.substr(comma + 1)};
}

Result<VolumeId> ParseVolumeId(std::string_view s) {
  // Go parses a 64-bit number and keeps its low 32 bits.
  uint64_t v = 0;
  bool valid = !s.empty(), overflow = false;
  for (char c : s) {
    if (c < '0' || c > '9') { valid = false; break; }
    const uint64_t d = uint64_t(c - '0');
    if (v > (~uint64_t(0) - d) / 10) overflow = true;
    v = v * 10 + d;
  }
  if (!valid || overflow)
    return Status::Invalid("strconv.ParseUint: parsing \"" + std::string(s) + "\": " + (valid ? "value out of range" : "invalid syntax"));
  return VolumeId(v);
}

std::string FormatNeedleIdCookie(NeedleId id, Cookie cookie) {
  uint8_t b[12];
  PutU64(b, id);
  PutU32(b + 8, cookie);
  size_t first = 0;
  while (first < 8 && b[first] == 0) ++first;
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve((12 - first) * 2);
  for (size_t i = first; i < 12; ++i) {
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
  return out;
}

std::string FormatFileId(VolumeId vid, NeedleId id, Cookie cookie) {
  return std::to_string(vid) + "," + FormatNeedleIdCookie(id, cookie);
}

Result<NeedleIdCookie> ParseFidWithDelta(std::string_view fid) {
  if (fid.size() <= size_t(kCookieSize) * 2) return Status::Invalid("Invalid fid: " + std::string(fid));
  std::string_view delta;
  const size_t us = fid.rfind('_');
  if (us != std::string_view::npos && us > 0) {
    delta = fid.substr(us + 1);
    fid = fid.substr(0, us);
  }
  auto r = ParseNeedleIdCookie(fid);
  if (!r.ok() || delta.empty()) return r;
  uint64_t d = 0;
  auto [ptr, ec] = std::from_chars(delta.data(), delta.data() + delta.size(), d);
  if (ec == std::errc::result_out_of_range)
    return Status::Invalid("strconv.ParseUint: parsing \"" + std::string(delta) + "\": value out of range");
  if (ec != std::errc() || ptr != delta.data() + delta.size())
    return Status::Invalid("strconv.ParseUint: parsing \"" + std::string(delta) + "\": invalid syntax");
  NeedleIdCookie v = r.value();
  if (d > ~uint64_t(0) - v.id) return Status::Invalid("delta overflows needle id");
  v.id += d;
  return v;
}

}  // namespace kelp
