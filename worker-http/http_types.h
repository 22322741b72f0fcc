// Requests and responses as the handlers see them.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kelp::http {

// Bytes a read or an answer holds: a heap buffer of its own that is not
// zero-filled (for bytes about to be overwritten by a read; a std::string
// would memset them first), or a read-only view of memory that `owner` keeps
// alive, such as a file mapping.
struct ByteBuffer {
  struct Release {
    std::shared_ptr<const void> owner;  // set: the bytes are a view, and not freed here
    void operator()(char* p) const {
      if (!owner) delete[] p;
    }
  };
  std::unique_ptr<char[], Release> bytes;
  size_t size = 0;

  static ByteBuffer Uninitialized(size_t n) { return ByteBuffer{std::unique_ptr<char[], Release>(new char[n]), n}; }
  // A view must not be written through: a mapping is read-only.
  static ByteBuffer View(std::shared_ptr<const void> owner, const char* p, size_t n) {
    return ByteBuffer{std::unique_ptr<char[], Release>(const_cast<char*>(p), Release{std::move(owner)}), n};
  }
  char* data() { return bytes.get(); }
  const char* data() const { return bytes.get(); }
};

struct Request {
  std::string method;
  std::string url;  // raw request target
  std::string path;  // decoded path component
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_ip;
  int http_major = 1, http_minor = 1;
  bool keep_alive = true;

  const std::string* Header(std::string_view lower_name) const;
  std::string HeaderOr(std::string_view lower_name, std::string fallback = {}) const;
  // First value of a query parameter (URL-decoded); empty when absent.
  std::string Query(std::string_view name) const;
  bool HasQuery(std::string_view name) const;
  std::vector<std::pair<std::string, std::string>> QueryPairs() const;  // decoded, in order
};

// Supplies a large body piece by piece. Next() returns false when there is no
// more; Failed() then tells an error from the end. A failed stream closes the
// connection (the status line is already out), so the client sees a short body.
class BodySource {
 public:
  virtual ~BodySource() = default;
  virtual uint64_t Length() const = 0;
  virtual bool Next(std::string* chunk) = 0;
  virtual bool Failed() const { return false; }
  // A source fed from the network may have nothing yet: Next() returned false
  // and Pending() is true. `wake` is then called (once) when it has more.
  virtual bool Pending() const { return false; }
  virtual void OnReady(std::function<void()> wake) { (void)wake; }
  // A source that reads into fresh memory can hand over an uninitialised heap
  // buffer instead (no zero-filling): when ProvidesBytes(), the server calls
  // NextBytes() in place of Next(); `*len` bytes of `*out` are the piece.
  virtual bool ProvidesBytes() const { return false; }
  virtual bool NextBytes(ByteBuffer* out, size_t* len) {
    (void)out;
    (void)len;
    return false;
  }
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // If set, replaces `body`: buffer[body_offset, body_offset + body_length), so a
  // handler can hand over a whole needle record without copying its data.
  ByteBuffer buffer;
  size_t body_offset = 0;
  size_t body_length = 0;
  std::unique_ptr<BodySource> stream;  // if set, replaces body
  bool head_only = false;              // HEAD: headers with the GET length, no body
  bool close_connection = false;
  std::shared_ptr<void> hold;          // released once the answer has been sent (in-flight accounting)

  // Go's Header().Set: replaces every earlier value of that name.
  void Set(std::string name, std::string value) {
    Erase(name);
    headers.emplace_back(std::move(name), std::move(value));
  }
  // Go's Header().Add: one more value.
  void Add(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
  bool Has(std::string_view name) const;      // case-insensitive
  void Erase(std::string_view name);          // every header of that name
  std::string_view BodyView() const {
    return buffer.bytes ? std::string_view(buffer.data() + body_offset, body_length) : std::string_view(body);
  }
};

using Respond = std::function<void(Response)>;

std::string_view StatusText(int status);
std::string UrlDecode(std::string_view s, bool plus_as_space);
// Go's html.EscapeString: < > & ' " as entities.
std::string HtmlEscape(std::string_view s);
// Go's url.QueryEscape and url.Values.Encode (keys sorted, values in order).
std::string QueryEscape(std::string_view s);
std::string EncodeQuery(std::multimap<std::string, std::string> values);

}  // namespace kelp::http
