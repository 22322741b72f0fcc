// libFuzzer: headers built from request data. An upload (its multipart file
// name, part Content-Type and a Seaweed-* pair) is parsed as the write handler
// parses it; a read of it then gets its headers from the functions the read
// handler uses (pairs, MIME type, the S3 passthrough parameters of an
// arbitrary query, Content-Disposition from the stored or the URL's file name)
// plus a redirect Location, and the head is written by ResponseHead; the pairs
// also go into a replica request written by RequestHead.
//
// Property: every head ends at its one blank line, and each line before it is
// a "Name: value" line with a token name and no CR, LF or NUL; an answer has
// one Content-Length (the server's) and no Transfer-Encoding.
#include <fuzzer/FuzzedDataProvider.h>
#include <strings.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "worker-http/header_block.h"
#include "worker-http/json_writer.h"
#include "worker-http/read_headers.h"
#include "worker-http/upload.h"

using namespace kelp;

namespace {

void Require(bool ok) {
  if (!ok) abort();
}

// Checks the lines of a head; returns how many are a Content-Length.
size_t CheckHead(const std::string& head) {
  size_t framing = 0;
  // Exactly one blank line, at the end.
  Require(head.size() >= 4 && head.find("\r\n\r\n") == head.size() - 4);
  size_t start = head.find("\r\n") + 2;  // after the first (request or status) line
  Require(head.substr(0, start - 2).find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
  while (start < head.size() - 2) {
    const size_t end = head.find("\r\n", start);
    const std::string line = head.substr(start, end - start);
    Require(line.find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
    const size_t colon = line.find(": ");
    Require(colon != std::string::npos && http::IsHeaderName(line.substr(0, colon)));
    const std::string name = line.substr(0, colon);
    if (strcasecmp(name.c_str(), "Content-Length") == 0) ++framing;
    Require(strcasecmp(name.c_str(), "Transfer-Encoding") != 0);
    start = end + 2;
  }
  return framing;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string file_name = in.ConsumeRandomLengthString(512);
  const std::string part_type = in.ConsumeRandomLengthString(256);
  const std::string pair_name = in.ConsumeRandomLengthString(64);
  const std::string pair_value = in.ConsumeRandomLengthString(256);
  const std::string url_name = in.ConsumeRandomLengthString(256);
  http::Request read;
  read.method = "GET";
  read.query = in.ConsumeRemainingBytesAsString();

  http::Request upload;
  upload.method = "POST";
  upload.headers = {{"content-type", "multipart/form-data; boundary=b"}, {"seaweed-" + pair_name, pair_value}};
  upload.body = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + file_name +
                "\"\r\nContent-Type: " + part_type + "\r\n\r\nx\r\n--b--\r\n";
  std::string stored_name = file_name, mime = part_type;
  std::map<std::string, std::string> pairs = {{pair_name, pair_value}};  // as a needle written elsewhere may hold
  if (auto u = ParseUpload(upload, 1 << 20, 1 << 22); u.ok()) {
    stored_name = u.value().file_name;
    mime = u.value().mime;
    pairs.insert(u.value().pairs.begin(), u.value().pairs.end());
  }

  // Content-Disposition itself never carries a control byte, before any cleaning.
  for (const std::string& name : {stored_name, url_name}) {
    for (const char c : ContentDisposition("inline", name)) Require((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) || c == '\t');
  }

  http::Response resp;
  SetPairHeaders(GoJsonObject(pairs), &resp);
  if (!mime.empty()) resp.Set("Content-Type", mime);
  resp.Set("Accept-Ranges", "bytes");
  SetPassthroughHeaders(read, url_name.empty() ? stored_name : url_name, &resp);
  resp.Set("Location", "http://" + url_name + "/3,01637037d6?" + http::EncodeQuery({{"collection", read.Query("collection")}}));
  const size_t set = resp.headers.size();
  const std::string head = http::ResponseHead(200, std::move(resp.headers), http::HeadFraming{false, false, 1, "Thu, 01 Jan 2026 00:00:00 GMT"});
  Require(CheckHead(head) == 1);
  size_t lines = 0;
  for (size_t at = head.find("\r\n"); at != std::string::npos; at = head.find("\r\n", at + 2)) ++lines;
  Require(lines <= set + 5);  // status line, the set headers, Connection, Date, Content-Length, blank line

  std::vector<std::pair<std::string, std::string>> replica_headers;
  for (const auto& [k, v] : pairs) replica_headers.emplace_back("Seaweed-" + k, v);
  CheckHead(http::RequestHead("POST", "/3,01637037d6?type=replicate", "127.0.0.1:8080", replica_headers, true, 1));
  return 0;
}
