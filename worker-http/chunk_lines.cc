#include "worker-http/chunk_lines.h"

#include <algorithm>

namespace kelp::http {
namespace {

// Go reads a chunk line with a 4096-byte buffer that must also hold its CRLF.
constexpr uint64_t kMaxLine = 4094;
constexpr int64_t kMaxExcess = 16 * 1024;
const char kTooLong[] = "header line too long";

}  // namespace

std::string ChunkLines::Extension(uint64_t from, uint64_t to) {
  // The first extension name follows the size and its ';'.
  if (size_end_ == 0) size_end_ = from - 1;
  return to - line_start_ > kMaxLine ? kTooLong : "";
}

std::string ChunkLines::LineEnds(uint64_t data_at, uint64_t size) {
  const uint64_t line = data_at - line_start_ - 2;
  if (line > kMaxLine) return kTooLong;
  const uint64_t digits = (size_end_ ? size_end_ : data_at - 2) - line_start_;
  if (digits > 16) return "http chunk length too large";
  // As Go counts it: the line and the CRLF after the data, less what the data
  // itself earns (16 bytes plus twice its size).
  excess_ += int64_t(line) + 2;
  excess_ -= 16 + int64_t(std::min<uint64_t>(size, uint64_t(INT64_MAX / 4)) * 2);
  excess_ = std::max<int64_t>(excess_, 0);
  if (excess_ > kMaxExcess) return "chunked encoding contains too much non-data";
  return "";
}

}  // namespace kelp::http
