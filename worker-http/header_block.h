// The bytes of a header block on the wire. Every header kelp sends (an answer
// to a client, or a request to a peer) is written here, so no value that came
// from a request or from a stored needle can end a header line early.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kelp::http {

// A header value as Go's net/http writes it: CR and LF become spaces, then
// spaces and tabs at either end are dropped. kelp also turns NUL into a space
// (Go sends it as it is; RFC 9110 forbids it in a field value).
std::string WireHeaderValue(std::string_view value);

// A field name Go writes: a non-empty RFC 9110 token. Go drops a header with
// any other name, and so does kelp.
bool IsHeaderName(std::string_view name);

// Go's textproto.CanonicalMIMEHeaderKey: "content-type" -> "Content-Type";
// a name that is not a token is returned unchanged.
std::string CanonicalHeaderKey(std::string_view name);

// Appends "Name: value\r\n" for a header kelp may send; nothing for a name Go
// would drop.
void AppendHeaderLine(std::string* out, std::string_view name, std::string_view value);

struct HeadFraming {
  bool keep_alive = true;
  bool bodiless = false;  // 1xx, 204, 304: no Content-Length is added
  uint64_t length = 0;    // the body length, unless a header already says it
  std::string date;       // used unless a header already sets Date
};

// The status line and header block of an answer, in Go's order: the handler's
// headers sorted by name, then Connection, Date and Content-Length.
std::string ResponseHead(int status, std::vector<std::pair<std::string, std::string>> headers, const HeadFraming& f);

// The request line and header block of a request to a peer: Host, the
// headers in order, then Content-Length when `with_length` and no header sets
// it. The caller checks that the request line holds no control byte.
std::string RequestHead(std::string_view method, std::string_view target, std::string_view host,
                        const std::vector<std::pair<std::string, std::string>>& headers, bool with_length,
                        uint64_t length);

}  // namespace kelp::http
