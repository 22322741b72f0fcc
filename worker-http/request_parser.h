// Assembles HTTP/1.x requests from bytes with llhttp, enforcing kelp's limits
// and Go's net/http acceptance rules (request_rules, chunk_lines). No I/O: the
// connection feeds it, and the fuzzer drives it directly.
#pragma once
#include <llhttp.h>

#include <functional>
#include <string>

#include "worker-http/chunk_lines.h"
#include "worker-http/http_types.h"
#include "worker-http/request_rules.h"

namespace kelp::http {

struct ParserLimits {
  size_t max_header_bytes = 1 << 20;
  uint64_t max_body_bytes = 256ull << 20;
};

class RequestParser {
 public:
  // kHeaders: the headers are in and `pause_after_headers` asked to stop
  // before the body; call ContinueBody() and feed the rest to go on.
  enum class Outcome { kNeedMore, kHeaders, kRequest, kError };

  explicit RequestParser(ParserLimits limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses until a request is complete (kRequest: `*consumed` bytes were used,
  // the rest belongs to the next request), more input is needed, or the input
  // is refused (kError: see Refused()).
  Outcome Feed(const char* data, size_t len, size_t* consumed);
  // After kRequest: the request; then call Next() before feeding more.
  Request& request() { return req_; }
  void Next();

  // True between the end of the headers and the end of the body.
  bool in_body() const { return in_body_; }
  // What Go answers to the refused request.
  Refusal Refused() const;
  // Called when a request's headers ask for "100-continue" (once the body is wanted).
  std::function<void()> on_expect_continue;
  // Asked once a request's headers are complete: true stops before its body.
  std::function<bool(const Request&)> pause_after_headers;
  void ContinueBody();

 private:
  // Where llhttp paused for the chunk line accounting.
  enum class Mark { kNone, kBodyStart, kLineEnd, kChunkEnd };

  static RequestParser* Self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }
  int Append(std::string* s, const char* at, size_t n);
  int HeaderField(const char* at, size_t n);
  void CommitHeader();
  int HeadersComplete();
  int Body(const char* at, size_t n);
  int ChunkExtension(const char* at, size_t n);
  int MessageComplete();
  bool AtMark(const char* stop);  // false: refused (chunk_error_)
  uint64_t StreamOffset(const char* p) const { return base_ + uint64_t(p - data_); }

  ParserLimits limits_;
  llhttp_t parser_{};
  llhttp_settings_t settings_{};
  Request req_;
  std::string field_, value_;
  size_t header_bytes_ = 0;
  bool in_value_ = false, in_body_ = false, complete_ = false, paused_at_headers_ = false, expects_continue_ = false;
  bool header_too_large_ = false, body_too_large_ = false, version_unsupported_ = false, refused_head_ = false;
  Refusal head_refusal_;
  // Chunk lines: offsets in the stream fed so far (base_ is where data_ starts).
  ChunkLines chunk_lines_;
  Mark mark_ = Mark::kNone;
  uint64_t chunk_size_ = 0, base_ = 0;
  const char* data_ = nullptr;
  std::string chunk_error_;
  llhttp_errno_t last_error_ = HPE_OK;
};

}  // namespace kelp::http
