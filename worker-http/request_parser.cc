#include "worker-http/request_parser.h"

#include <strings.h>

#include <algorithm>

namespace kelp::http {

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_url = [](llhttp_t* p, const char* at, size_t n) { return Self(p)->Append(&Self(p)->req_.url, at, n); };
  settings_.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
    RequestParser* r = Self(p);
    if (r->in_value_) r->CommitHeader();
    return r->Append(&r->field_, at, n);
  };
  settings_.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
    RequestParser* r = Self(p);
    r->in_value_ = true;
    return r->Append(&r->value_, at, n);
  };
  settings_.on_headers_complete = [](llhttp_t* p) { return Self(p)->HeadersComplete(); };
  settings_.on_body = [](llhttp_t* p, const char* at, size_t n) { return Self(p)->Body(at, n); };
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
  if (parser_.http_minor >= 1 && !req_.Header("host")) {
    missing_host_ = true;
    return HPE_USER;
  }
  req_.method = llhttp_method_name(llhttp_method_t(parser_.method));
  req_.http_major = parser_.http_major;
  req_.http_minor = parser_.http_minor;
  const size_t q = req_.url.find('?');
  req_.path = UrlDecode(std::string_view(req_.url).substr(0, q), false);
  req_.query = q == std::string::npos ? "" : req_.url.substr(q + 1);
  const bool has_length = parser_.flags & F_CONTENT_LENGTH;
  if (has_length && parser_.content_length > limits_.max_body_bytes) {
    body_too_large_ = true;
    return HPE_USER;
  }
  const std::string* e = req_.Header("expect");
  expects_continue_ = e && strcasecmp(e->c_str(), "100-continue") == 0 && parser_.http_minor >= 1;
  if (has_length) req_.body.reserve(size_t(std::min<uint64_t>(parser_.content_length, 4 << 20)));
  in_body_ = true;
  if (pause_after_headers && pause_after_headers(req_)) {
    paused_at_headers_ = true;
    return HPE_PAUSED;
  }
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

int RequestParser::MessageComplete() {
  in_body_ = false;
  req_.keep_alive = llhttp_should_keep_alive(&parser_);
  complete_ = true;
  return HPE_PAUSED;
}

RequestParser::Outcome RequestParser::Feed(const char* data, size_t len, size_t* consumed) {
  *consumed = len;
  const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) return Outcome::kNeedMore;
  if (err == HPE_PAUSED && paused_at_headers_) {
    const char* stop = llhttp_get_error_pos(&parser_);
    *consumed = stop ? size_t(stop - data) : len;
    return Outcome::kHeaders;
  }
  if (err == HPE_PAUSED && complete_) {
    const char* stop = llhttp_get_error_pos(&parser_);
    *consumed = stop ? size_t(stop - data) : len;
    return Outcome::kRequest;
  }
  last_error_ = err;
  return Outcome::kError;
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
  llhttp_resume(&parser_);
}

std::string RequestParser::RefusalStatus() const {
  if (header_too_large_) return "431 Request Header Fields Too Large";
  if (body_too_large_) return "413 Request Entity Too Large";
  if (last_error_ == HPE_INVALID_VERSION || version_unsupported_) return "505 HTTP Version Not Supported: unsupported protocol version";
  if (missing_host_) return "400 Bad Request: missing required Host header";
  return "400 Bad Request";
}

}  // namespace kelp::http
