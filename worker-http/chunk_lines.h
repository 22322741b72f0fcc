// Go's limits on the lines of a chunked body (net/http/internal's chunked
// reader): a chunk line (size and extensions) of 4095 bytes or more is "header
// line too long", a size of more than 16 hex digits (leading zeros count) is
// "http chunk length too large", and more than 16 KiB of line overhead beyond
// what the data justifies is "chunked encoding contains too much non-data".
// Positions are byte offsets in the connection's stream, from the request parser.
#pragma once
#include <cstdint>
#include <string>

namespace kelp::http {

class ChunkLines {
 public:
  // The first chunk line starts at `at` (right after the head).
  void BodyStarts(uint64_t at) { line_start_ = at, size_end_ = 0, excess_ = 0; }
  // An extension of the current line spans [from, to): an error text once the
  // line is already too long, so a huge line is refused while it streams.
  std::string Extension(uint64_t from, uint64_t to);
  // The current line ended (its CRLF included) at `data_at`, announcing `size` bytes.
  std::string LineEnds(uint64_t data_at, uint64_t size);
  // The chunk's data and its CRLF end at `at`: the next line starts there.
  void ChunkEnds(uint64_t at) { line_start_ = at, size_end_ = 0; }

 private:
  uint64_t line_start_ = 0;
  uint64_t size_end_ = 0;  // where the size ends, once an extension follows it
  int64_t excess_ = 0;
};

}  // namespace kelp::http
