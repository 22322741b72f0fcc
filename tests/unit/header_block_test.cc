#include <doctest/doctest.h>

#include "common/go_quote.h"
#include "worker-http/header_block.h"
#include "worker-http/mime_header.h"

using namespace kelp;

TEST_CASE("header values on the wire: CR, LF and NUL become spaces, the ends are trimmed as Go trims them") {
  CHECK(http::WireHeaderValue("text/html\r\nSet-Cookie: x=y\r\n\r\n<b>") == "text/html  Set-Cookie: x=y    <b>");
  CHECK(http::WireHeaderValue(std::string(" \ta\0b\r ", 7)) == "a b");
  CHECK(http::WireHeaderValue("\r\n") == "");
  CHECK(http::WireHeaderValue("a\tb") == "a\tb");
  CHECK(http::IsHeaderName("X-Amz-Request-Id"));
  CHECK_FALSE(http::IsHeaderName(""));
  CHECK_FALSE(http::IsHeaderName("Bad Name"));
  CHECK_FALSE(http::IsHeaderName("a\r\nb"));
  CHECK(http::CanonicalHeaderKey("content-md5") == "Content-Md5");
  CHECK(http::CanonicalHeaderKey("x y") == "x y");
  std::string head;
  http::AppendHeaderLine(&head, "Bad:Name", "v");
  CHECK(head.empty());
  const std::string out = http::ResponseHead(200, {{"X-B", "1\r\n2"}, {"A", "x"}}, http::HeadFraming{false, false, 3, "D"});
  CHECK(out == "HTTP/1.1 200 OK\r\nA: x\r\nX-B: 1  2\r\nConnection: close\r\nDate: D\r\nContent-Length: 3\r\n\r\n");
  CHECK(http::RequestHead("GET", "/x", "h:1", {{"Seaweed-K", "v\r\nX: y"}}, false, 0) ==
        "GET /x HTTP/1.1\r\nHost: h:1\r\nSeaweed-K: v  X: y\r\n\r\n");
}

TEST_CASE("GoQuote is strconv.Quote") {
  CHECK(GoQuote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(GoQuote(std::string("\r\n\t\0\x01\x7f", 6)) == "\"\\r\\n\\t\\x00\\x01\\x7f\"");
  CHECK(GoQuote("\xc3\xa9") == "\"\xc3\xa9\"");
  CHECK(GoQuote("\xff\xc3") == "\"\\xff\\xc3\"");
  CHECK(GoQuote("\xc2\x80") == "\"\\u0080\"");
}

TEST_CASE("multipart part headers are read as Go's textproto reads them") {
  auto read = [](std::string block, std::map<std::string, std::string>* h) {
    size_t pos = 0;
    return ReadMimeHeader(block, &pos, h);
  };
  std::map<std::string, std::string> h;
  REQUIRE(read("Content-Type:  a/b\r\nX: first\r\nx: second\r\nFolded: one\r\n  two\r\nK : v\r\n\r\nbody", &h).ok());
  CHECK(h["content-type"] == "a/b");
  CHECK(h["x"] == "first");
  CHECK(h["folded"] == "one two");
  CHECK(h["k "] == "v");
  CHECK(read("A: a\rb\r\n\r\n", &h).message() == "malformed MIME header line: \"A: a\\rb\"");
  CHECK(read("A: a\x01\r\n\r\n", &h).message() == "malformed MIME header line: \"A: a\\x01\"");
  CHECK(read("A\x01: a\r\n\r\n", &h).message() == "malformed MIME header line: \"A\\x01: a\"");
  CHECK(read(": a\r\n\r\n", &h).message() == "malformed MIME header line: \": a\"");
  CHECK(read("no colon\r\n\r\n", &h).message() == "malformed MIME header: missing colon: \"no colon\"");
  CHECK(read(" A: a\r\n\r\n", &h).message() == "malformed MIME header initial line: \" A: a\"");
  CHECK(read("A: a\r\n", &h).message() == "multipart: NextPart: EOF");
}
