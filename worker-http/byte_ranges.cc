#include "worker-http/byte_ranges.h"

#include <sodium.h>

#include <limits>

namespace kelp {
namespace {

std::string_view TrimSpace(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

bool ParseGoInt64(std::string_view s, int64_t* v) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return false;
  uint64_t magnitude = 0;
  const uint64_t limit = negative ? uint64_t(std::numeric_limits<int64_t>::max()) + 1 : uint64_t(std::numeric_limits<int64_t>::max());
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = uint64_t(c - '0');
    if (magnitude > (limit - digit) / 10) return false;
    magnitude = magnitude * 10 + digit;
  }
  *v = negative ? int64_t(0 - magnitude) : int64_t(magnitude);
  return true;
}

std::string ByteRange::ContentRange(int64_t total) const {
  return "bytes " + std::to_string(start) + "-" + std::to_string(start + length - 1) + "/" + std::to_string(total);
}

RangeParse ParseByteRanges(std::string_view header, int64_t total, std::vector<ByteRange>* out) {
  out->clear();
  if (header.empty()) return RangeParse::kAbsent;
  constexpr std::string_view kPrefix = "bytes=";
  if (header.substr(0, kPrefix.size()) != kPrefix) return RangeParse::kInvalid;
  header.remove_prefix(kPrefix.size());
  bool dropped = false;
  while (true) {
    const size_t comma = header.find(',');
    const std::string_view item = TrimSpace(header.substr(0, comma));
    if (!item.empty()) {
      const size_t dash = item.find('-');
      if (dash == std::string_view::npos) return RangeParse::kInvalid;
      const std::string_view a = TrimSpace(item.substr(0, dash)), b = TrimSpace(item.substr(dash + 1));
      ByteRange r;
      if (a.empty()) {
        int64_t n = 0;
        if (!ParseGoInt64(b, &n)) return RangeParse::kInvalid;
        if (n > total) n = total;
        // n may be negative ("--1"): Go then yields a start past the end and a
        // negative length. Go's arithmetic wraps; a start that wraps below zero
        // would make Go slice out of bounds, so kelp calls it invalid.
        r.start = int64_t(uint64_t(total) - uint64_t(n));
        if (r.start < 0) return RangeParse::kInvalid;
        r.length = int64_t(uint64_t(total) - uint64_t(r.start));
      } else {
        int64_t s = 0;
        if (!ParseGoInt64(a, &s) || s < 0) return RangeParse::kInvalid;
        if (s >= total) {
          dropped = true;
        } else {
          r.start = s;
          if (b.empty()) {
            r.length = total - s;
          } else {
            int64_t e = 0;
            if (!ParseGoInt64(b, &e) || s > e) return RangeParse::kInvalid;
            if (e >= total) e = total - 1;
            r.length = e - s + 1;
          }
        }
      }
      if (a.empty() || r.length > 0) out->push_back(r);
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  if (dropped && out->empty()) return RangeParse::kNoOverlap;
  return RangeParse::kRanges;
}

std::string RandomBoundary() {
  unsigned char raw[30];
  randombytes_buf(raw, sizeof raw);
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : raw) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}

MultipartRanges FrameRanges(const std::vector<ByteRange>& ranges, std::string_view part_type, int64_t total,
                            std::string boundary) {
  MultipartRanges m;
  m.boundary = std::move(boundary);
  for (size_t i = 0; i < ranges.size(); ++i) {
    std::string head = i == 0 ? "--" : "\r\n--";
    head += m.boundary;
    head += "\r\nContent-Range: " + ranges[i].ContentRange(total) + "\r\nContent-Type: ";
    head += part_type;
    head += "\r\n\r\n";
    m.heads.push_back(std::move(head));
  }
  m.tail = "\r\n--" + m.boundary + "--\r\n";
  return m;
}

int64_t MultipartRanges::ContentLength(const std::vector<ByteRange>& ranges) const {
  int64_t n = int64_t(tail.size());
  for (size_t i = 0; i < heads.size(); ++i) n += int64_t(heads[i].size()) + std::max<int64_t>(ranges[i].length, 0);
  return n;
}

}  // namespace kelp
