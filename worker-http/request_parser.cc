#include "worker-http/request_parser.h"

#include <strings.h>

#include <algorithm>
#include <utility>

namespace kelp::http {

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_url = [](llhttp_t* p, const char* at, size_t n) { return Self(p)->Append(&Self(p)->req_.url, at, n); };
  settings_.on_header_field = [](llhttp_t* p, const char* at, size_t n) { return Self(p)->HeaderField(at, n); };
  settings_.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
    RequestParser* r = Self(p);
    r->in_value_ = true;
    return r->Append(&r->value_, at, n);
  };
  settings_.on_headers_complete = [](llhttp_t* p) { return Self(p)->HeadersComplete(); };
  settings_.on_body = [](llhttp_t* p, const char* at, size_t n) { return Self(p)->Body(at, n); };
  settings_.on_chunk_extension_name = [](llhttp_t* p, const char* at, size_t n) { return Self(p)->ChunkExtension(at, n); };
  settings_.on_chunk_extension_value = [](llhttp_t* p, const char* at, size_t n) { return Self(p)->ChunkExtension(at, n); };
  // Both pause llhttp, so that Feed learns where the chunk line ended or begins.
  settings_.on_chunk_header = [](llhttp_t* p) {
    Self(p)->mark_ = Mark::kLineEnd;
    Self(p)->chunk_size_ = p->content_length;
    return int(HPE_PAUSED);
  };
  settings_.on_chunk_complete = [](llhttp_t* p) {
    Self(p)->mark_ = Mark::kChunkEnd;
    return int(HPE_PAUSED);
  };
  settings_.on_message_complete = [](llhttp_t* p) { return Self(p)->MessageComplete(); };
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  // Like Go: Transfer-Encoding: chunked overrides a Content-Length (RFC 7230 3.3.3).
  llhttp_set_lenient_chunked_length(&parser_, 1);
  parser_.data = this;
}

int RequestParser::Append(std::string* s, const char* at, size_t n) {
  header_bytes_ += n;
  if (header_bytes_ > limits_.max_header_bytes) {
    header_too_large_ = true;
    return HPE_USER;
  }
  s->append(at, n);
  return HPE_OK;
}

int RequestParser::HeaderField(const char* at, size_t n) {
  if (in_value_) CommitHeader();
  // A new field: Go reads at most kMaxHeaderFields of them.
  if (field_.empty() && req_.headers.size() >= kMaxHeaderFields) {
    header_too_large_ = true;
    return HPE_USER;
  }
  return Append(&field_, at, n);
}

void RequestParser::CommitHeader() {
  std::string name = std::move(field_);
  for (char& c : name) c = char(tolower(static_cast<unsigned char>(c)));
  req_.headers.emplace_back(std::move(name), std::move(value_));
  field_.clear();
  value_.clear();
  in_value_ = false;
}

int RequestParser::HeadersComplete() {
  if (in_value_ || !field_.empty()) CommitHeader();
  if (parser_.http_major != 1) {
    version_unsupported_ = true;
    return HPE_USER;
  }
  if (!AcceptHead(req_, parser_.http_minor, &head_refusal_)) {
    refused_head_ = true;
    return HPE_USER;
  }
  req_.method = llhttp_method_name(llhttp_method_t(parser_.method));
  req_.http_major = parser_.http_major;
  req_.http_minor = parser_.http_minor;
  const size_t q = req_.url.find('?');
  req_.path = UrlDecode(std::string_view(req_.url).substr(0, q), false);
  req_.query = q == std::string::npos ? "" : req_.url.substr(q + 1);
  const bool has_length = parser_.flags & F_CONTENT_LENGTH;
  const bool chunked = parser_.flags & F_CHUNKED;
  if (has_length && !chunked && parser_.content_length > limits_.max_body_bytes) {
    body_too_large_ = true;
    return HPE_USER;
  }
  // Go sends "100 Continue" only on HTTP/1.1 for a body that is not empty.
  const std::string* e = req_.Header("expect");
  expects_continue_ = e && HasToken(*e, "100-continue") && parser_.http_minor >= 1 &&
                      (chunked || (has_length && parser_.content_length > 0));
  if (has_length && !chunked) req_.body.reserve(size_t(std::min<uint64_t>(parser_.content_length, 4 << 20)));
  in_body_ = true;
  if (chunked) mark_ = Mark::kBodyStart;
  if (pause_after_headers && pause_after_headers(req_)) paused_at_headers_ = true;
  if (paused_at_headers_ || chunked) return HPE_PAUSED;
  if (expects_continue_ && on_expect_continue) on_expect_continue();
  return HPE_OK;
}

int RequestParser::Body(const char* at, size_t n) {
  if (req_.body.size() + n > limits_.max_body_bytes) {
    body_too_large_ = true;
    return HPE_USER;
  }
  req_.body.append(at, n);
  return HPE_OK;
}

int RequestParser::ChunkExtension(const char* at, size_t n) {
  chunk_error_ = chunk_lines_.Extension(StreamOffset(at), StreamOffset(at + n));
  return chunk_error_.empty() ? HPE_OK : HPE_USER;
}

int RequestParser::MessageComplete() {
  in_body_ = false;
  req_.keep_alive = llhttp_should_keep_alive(&parser_);
  complete_ = true;
  return HPE_PAUSED;
}

bool RequestParser::AtMark(const char* stop) {
  const Mark mark = std::exchange(mark_, Mark::kNone);
  const uint64_t at = StreamOffset(stop);
  switch (mark) {
    case Mark::kBodyStart:
      chunk_lines_.BodyStarts(at);
      // A pause for the line accounting only: the continue goes out now.
      if (!paused_at_headers_ && expects_continue_ && on_expect_continue) on_expect_continue();
      return true;
    case Mark::kLineEnd:
      chunk_error_ = chunk_lines_.LineEnds(at, chunk_size_);
      return chunk_error_.empty();
    case Mark::kChunkEnd:
      chunk_lines_.ChunkEnds(at);
      return true;
    case Mark::kNone:
      return true;
  }
  return true;
}

RequestParser::Outcome RequestParser::Feed(const char* data, size_t len, size_t* consumed) {
  data_ = data;
  const char* p = data;
  const char* end = data + len;
  for (;;) {
    const llhttp_errno_t err = llhttp_execute(&parser_, p, size_t(end - p));
    const char* stop = err == HPE_OK ? end : llhttp_get_error_pos(&parser_);
    if (!stop) stop = end;
    *consumed = size_t(stop - data);
    if (err == HPE_OK) break;
    if (err == HPE_PAUSED && mark_ != Mark::kNone) {
      if (!AtMark(stop)) {
        last_error_ = HPE_USER;
        break;
      }
      if (paused_at_headers_) {
        base_ += *consumed;
        return Outcome::kHeaders;
      }
      llhttp_resume(&parser_);
      p = stop;
      continue;
    }
    if (err == HPE_PAUSED && paused_at_headers_) {
      base_ += *consumed;
      return Outcome::kHeaders;
    }
    if (err == HPE_PAUSED && complete_) {
      base_ += *consumed;
      return Outcome::kRequest;
    }
    last_error_ = err;
    break;
  }
  base_ += *consumed;
  return last_error_ == HPE_OK ? Outcome::kNeedMore : Outcome::kError;
}

void RequestParser::ContinueBody() {
  if (!paused_at_headers_) return;
  paused_at_headers_ = false;
  llhttp_resume(&parser_);
  if (expects_continue_ && on_expect_continue) on_expect_continue();
}

void RequestParser::Next() {
  req_ = Request{};
  field_.clear();
  value_.clear();
  in_value_ = in_body_ = complete_ = paused_at_headers_ = expects_continue_ = false;
  header_bytes_ = 0;
  mark_ = Mark::kNone;
  llhttp_resume(&parser_);
}

Refusal RequestParser::Refused() const {
  const auto net_http = [](std::string s) { return Refusal{Refusal::Form::kNetHttp, s, s}; };
  if (header_too_large_) return net_http("431 Request Header Fields Too Large");
  if (body_too_large_) return net_http("413 Request Entity Too Large");
  if (!chunk_error_.empty()) return Refusal{Refusal::Form::kBodyError, "400 Bad Request", chunk_error_};
  if (last_error_ == HPE_INVALID_VERSION || version_unsupported_) return net_http("505 HTTP Version Not Supported: unsupported protocol version");
  if (refused_head_) return head_refusal_;
  // llhttp refuses some codings before the head is complete ("chunked, chunked").
  if (last_error_ == HPE_INVALID_TRANSFER_ENCODING && parser_.http_minor >= 1)
    return Refusal{Refusal::Form::kNetHttp, "501 Not Implemented", "Unsupported transfer encoding"};
  return net_http("400 Bad Request");
}

}  // namespace kelp::http
