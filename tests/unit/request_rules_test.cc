#include <doctest/doctest.h>

#include <string>

#include "worker-http/chunk_lines.h"
#include "worker-http/request_parser.h"
#include "worker-http/request_rules.h"

using namespace kelp::http;

namespace {

// Feeds `bytes` in pieces of `step`; the outcome of the last Feed and the refusal.
std::pair<RequestParser::Outcome, Refusal> Parse(const std::string& bytes, size_t step = 1 << 20) {
  RequestParser p(ParserLimits{});
  RequestParser::Outcome o = RequestParser::Outcome::kNeedMore;
  for (size_t at = 0; at < bytes.size() && o == RequestParser::Outcome::kNeedMore; at += step) {
    size_t used = 0;
    o = p.Feed(bytes.data() + at, std::min(step, bytes.size() - at), &used);
  }
  return {o, o == RequestParser::Outcome::kError ? p.Refused() : Refusal{}};
}

std::string Chunked(const std::string& chunks, const std::string& te = "chunked") {
  return "PUT /3,01637037d6 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te + "\r\n\r\n" + chunks;
}

}  // namespace

TEST_CASE("hasToken as Go reads Expect and Connection lists") {
  CHECK(HasToken("100-continue", "100-continue"));
  CHECK(HasToken("foo, 100-Continue", "100-continue"));
  CHECK(HasToken("a\t100-continue ,b", "100-continue"));
  CHECK_FALSE(HasToken("100-continuex", "100-continue"));
  CHECK_FALSE(HasToken("x100-continue", "100-continue"));
  CHECK_FALSE(HasToken("", "100-continue"));
}

TEST_CASE("request heads are refused as Go's net/http refuses them") {
  auto refused = [](const std::string& head) { return Parse(head).second; };
  CHECK(refused(Chunked("5\r\nhello\r\n0\r\n\r\n", "gzip, chunked")).status == "501 Not Implemented");
  CHECK(refused(Chunked("", "identity")).body == "Unsupported transfer encoding");
  CHECK(refused(Chunked("", "chunked, chunked")).status == "501 Not Implemented");
  CHECK(refused("PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello").status ==
        "501 Not Implemented");
  CHECK(refused("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").status == "400 Bad Request");
  CHECK(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").body == "400 Bad Request");
  CHECK(refused("GET / HTTP/1.1\r\n\r\n").status == "400 Bad Request: missing required Host header");
  CHECK(refused("GET / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n").form == Refusal::Form::kExpectationFailed);
  CHECK(Parse("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").first == RequestParser::Outcome::kRequest);
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 499; ++i) many += "X: v\r\n";
  CHECK(Parse(many + "\r\n").first == RequestParser::Outcome::kRequest);
  CHECK(refused(many + "Y: w\r\n\r\n").status == "431 Request Header Fields Too Large");
}

TEST_CASE("chunk lines: Go's length, size and overhead limits, however the bytes arrive") {
  for (size_t step : {size_t(1), size_t(7), size_t(1 << 20)}) {
    CAPTURE(step);
    CHECK(Parse(Chunked("5;" + std::string(4092, 'a') + "\r\nhello\r\n0\r\n\r\n"), step).first == RequestParser::Outcome::kRequest);
    const auto [o, r] = Parse(Chunked("5;" + std::string(4093, 'a') + "\r\nhello\r\n0\r\n\r\n"), step);
    CHECK(o == RequestParser::Outcome::kError);
    CHECK(r.form == Refusal::Form::kBodyError);
    CHECK(r.body == "header line too long");
    CHECK(Parse(Chunked(std::string(16, '0') + "5\r\nhello\r\n0\r\n\r\n"), step).second.body == "http chunk length too large");
    std::string overhead;
    for (int i = 0; i < 6; ++i) overhead += "1;" + std::string(3000, 'a') + "\r\nx\r\n";
    CHECK(Parse(Chunked(overhead + "0\r\n\r\n"), step).second.body == "chunked encoding contains too much non-data");
  }
  ChunkLines lines;
  lines.BodyStarts(100);
  CHECK(lines.LineEnds(100 + 3, 5) == "");  // "5\r\n"
  lines.ChunkEnds(100 + 3 + 5 + 2);
  CHECK(lines.Extension(112, 112 + 4095) == "header line too long");
}
