#include <doctest/doctest.h>

#include <fstream>

#include "common/flags.h"
#include "tests/unit/fixtures.h"
#include "worker-http/content_sniff.h"
#include "worker-http/fid_path.h"
#include "worker-http/json_writer.h"
#include "worker-http/media_params.h"
#include "worker-http/upload.h"

using namespace kelp;

namespace {

http::Request MakeRequest(std::string method, std::string path, std::string content_type, std::string body, std::string query = "") {
  http::Request r;
  r.method = std::move(method);
  r.path = path;
  r.url = path;
  r.query = std::move(query);
  if (!content_type.empty()) r.headers.emplace_back("content-type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

}  // namespace

TEST_CASE("URL paths split like Go's parseURLPath") {
  auto p = ParseUrlPath("/3,01637037d6");
  CHECK(p.vid == "3");
  CHECK(p.fid == "01637037d6");
  CHECK(p.ext.empty());
  p = ParseUrlPath("/3,01637037d6.jpg");
  CHECK(p.fid == "01637037d6");
  CHECK(p.ext == ".jpg");
  p = ParseUrlPath("/3/01637037d6.jpg");
  CHECK(p.vid == "3");
  CHECK(p.fid == "01637037d6");
  CHECK(p.ext == ".jpg");
  p = ParseUrlPath("/3/01637037d6/holiday.png");
  CHECK(p.fid == "01637037d6");
  CHECK(p.filename == "holiday.png");
  CHECK(p.ext == ".png");
  p = ParseUrlPath("/3");
  CHECK(p.volume_id_only);
  CHECK(p.vid == "3");
}

TEST_CASE("fids: cookie, delta suffix and Go's error texts") {
  auto f = ParseFidWithDelta("01637037d6_5");
  REQUIRE(f.ok());
  CHECK(f.value().id == 1 + 5);
  CHECK(f.value().cookie == 0x637037d6u);
  CHECK(ParseFidWithDelta("0123").status().message() == "Invalid fid: 0123");
  CHECK_FALSE(ParseFidWithDelta("01637037d6_x").ok());
  CHECK_FALSE(ParseFidWithDelta("ffffffffffffffff00000001_1").ok());  // delta overflows the id
  CHECK(UploadFidOf("/3,01637037d6.jpg") == "01637037d6");
  CHECK(UploadFidOf("/3,01637037d6") == "01637037d6");
}

TEST_CASE("raw uploads take the name from the path and the type from the header") {
  // The parsed upload views the request body: the request must outlive it.
  const auto r = MakeRequest("PUT", "/3,01637037d6", "text/plain", "hello", "ts=1700000000&ttl=3d&cm=true");
  auto u = ParseUpload(r, 1 << 20, 1 << 22);
  REQUIRE(u.ok());
  CHECK(u.value().file_name == "3,01637037d6");
  CHECK(u.value().data == "hello");
  CHECK(u.value().modified_time == 1700000000);
  CHECK(u.value().ttl.String() == "3d");
  CHECK(u.value().chunk_manifest);
  CHECK(ParseUpload(MakeRequest("PUT", "/3,01637037d6", "text/plain", std::string(11, 'x')), 10, 1 << 20).status().message() ==
        "file over the limited 10 bytes");
}

TEST_CASE("multipart uploads: the first part, or the first later part with a file name") {
  const std::string body =
      "--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nnot the file\r\n"
      "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"C:\\\\dir\\\\photo.JPG\"\r\nContent-Type: image/jpeg\r\n\r\nJPEGDATA\r\n"
      "--B--\r\n";
  auto r = MakeRequest("POST", "/3,01637037d6", "multipart/form-data; boundary=B", body);
  r.headers.emplace_back("seaweed-color", "blue");
  auto u = ParseUpload(r, 1 << 20, 1 << 22);
  REQUIRE(u.ok());
  CHECK(u.value().file_name == "photo.JPG");
  CHECK(u.value().data == "JPEGDATA");
  CHECK(u.value().mime == "image/jpeg");  // from the extension (Go lower-cases it), agreeing with the part
  CHECK(u.value().pairs.at("Color") == "blue");
  std::string pairs;
  const NeedleFields f = NeedleFieldsFor(u.value(), 1, 2, 1700000000, &pairs);
  CHECK(pairs == R"({"Color":"blue"})");
  CHECK((f.flags & kFlagHasName));
  CHECK((f.flags & kFlagHasMime));  // set even when empty, as Go does
  CHECK((f.flags & kFlagHasLastModified));
  CHECK((f.flags & kFlagHasPairs));
  CHECK_FALSE((f.flags & kFlagHasTtl));
  CHECK(f.last_modified == 1700000000);
}

TEST_CASE("an empty multipart file name is no name: Go stores none and looks at later parts") {
  const std::string body =
      "--B\r\nContent-Disposition: form-data; filename=\"\"; name=file\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
      "--B\r\nContent-Disposition: attachment; filename=\"later.bin\"\r\n\r\nsecond\r\n"
      "--B--\r\n";
  const auto r = MakeRequest("POST", "/3,01637037d6", "multipart/form-data; boundary=B", body);
  auto u = ParseUpload(r, 1 << 20, 1 << 22);
  REQUIRE(u.ok());
  CHECK(u.value().file_name == "later.bin");  // any disposition type names a part, as in Go
  CHECK(u.value().data == "second");
  const std::string only = "--B\r\nContent-Disposition: form-data; filename=\"\"; name=file\r\n\r\nchunk\r\n--B--\r\n";
  const auto r2 = MakeRequest("POST", "/3,01637037d6", "multipart/form-data; boundary=B", only);
  auto u2 = ParseUpload(r2, 1 << 20, 1 << 22);
  REQUIRE(u2.ok());
  CHECK(u2.value().file_name.empty());
}

TEST_CASE("media parameters are read as Go's mime.ParseMediaType reads them") {
  std::string type;
  std::map<std::string, std::string> p;
  REQUIRE(ParseMediaParams("form-data; filename*=utf-8''caf%C3%A9.bin; name=file", &type, &p));
  CHECK(type == "form-data");
  CHECK(p.at("filename") == "caf\xc3\xa9.bin");
  CHECK(p.at("name") == "file");
  // The extended form wins over the plain one; continuations are joined.
  REQUIRE(ParseMediaParams("attachment; filename=plain.txt; filename*=UTF-8'en'ext%20ended.txt", &type, &p));
  CHECK(p.at("filename") == "ext ended.txt");
  REQUIRE(ParseMediaParams("attachment; filename*0=\"a\"; filename*1*=%62; filename*2=c", &type, &p));
  CHECK(p.at("filename") == "abc");
  // An unknown charset drops the value.
  REQUIRE(ParseMediaParams("attachment; filename*=latin1''x.txt", &type, &p));
  CHECK(p.count("filename") == 0);
  // MSIE's unescaped Windows paths keep their backslashes; an escaped special is unescaped.
  REQUIRE(ParseMediaParams("form-data; filename=\"C:\\docs\\a\\\"b.txt\"", &type, &p));
  CHECK(p.at("filename") == "C:\\docs\\a\"b.txt");
  // A trailing ';' is fine, a repeated name with the same value too; a different one is not.
  CHECK(ParseMediaParams("text/plain; charset=utf-8;", &type, &p));
  CHECK(ParseMediaParams("text/plain; a=1; a=1", &type, &p));
  CHECK_FALSE(ParseMediaParams("text/plain; a=1; a=2", &type, &p));
  CHECK_FALSE(ParseMediaParams("text/plain; a", &type, &p));
  CHECK_FALSE(ParseMediaParams("text plain; a=1", &type, &p));
  CHECK_FALSE(ParseMediaParams("text/plain; a=\"open", &type, &p));
  CHECK(ParseMediaParams("form-data; filename=\"\"", &type, &p));
  CHECK(p.at("filename").empty());
}

TEST_CASE("malformed uploads fail with Go's messages") {
  CHECK(ParseUpload(MakeRequest("POST", "/3,01", "", "x"), 100, 1 << 20).status().message() == "request Content-Type isn't multipart/form-data");
  CHECK(ParseUpload(MakeRequest("POST", "/3,01", "multipart/form-data", "x"), 100, 1 << 20).status().message() ==
        "no multipart boundary param in Content-Type");
  CHECK_FALSE(ParseUpload(MakeRequest("POST", "/3,01", "multipart/form-data; boundary=B", "--B\r\nbroken"), 100, 1 << 20).ok());
}

TEST_CASE("flags: Go's syntaxes, defaults and errors") {
  auto f = Flags::Parse({"-port=9000", "--dir", "/data", "-pprof", "--hasSlowRead=false", "-inflightUploadDataTimeout", "1m30s"});
  REQUIRE(f.ok());
  CHECK(f.value().Int("port") == 9000);
  CHECK(f.value().Str("dir") == "/data");
  CHECK(f.value().Bool("pprof"));
  CHECK_FALSE(f.value().Bool("hasSlowRead"));
  CHECK(f.value().Seconds("inflightUploadDataTimeout") == doctest::Approx(90));
  CHECK(f.value().Str("readMode") == "proxy");
  CHECK(Flags::Parse({"-nope"}).status().message() == "flag provided but not defined: -nope");
  CHECK(Flags::Parse({"-port"}).status().message() == "flag needs an argument: -port");
  CHECK_FALSE(Flags::Parse({"-port=abc"}).ok());
  // A bare word after a boolean is not its value: Go stops parsing there.
  auto stop = Flags::Parse({"-pprof", "false", "-port=1"});
  REQUIRE(stop.ok());
  CHECK(stop.value().Bool("pprof"));
  CHECK(stop.value().Int("port") == 8080);
  double d;
  CHECK(ParseGoDuration("500ms", &d));
  CHECK(d == doctest::Approx(0.5));
  CHECK_FALSE(ParseGoDuration("5 s", &d));
}

TEST_CASE("flags the command line leaves unset come from the environment, then from the -options file") {
  testing::TempDir d;
  const std::string options = (d.path / "volume.options").string();
  std::ofstream(options) << "# comment\n// comment\n-- comment\n\n  port = 7001\n-dataCenter:dc9\nrack rack3\npprof\nnotAFlag=1\n"
                            "whiteList=10.9.9.9\nidleTimeout=12\n";
  auto f = Flags::Parse({"-port=9000", "-options=" + options});
  REQUIRE(f.ok());
  std::string env_whitelist = "WHITELIST=10.0.0.7", env_grpc = "PORT_GRPC=19100", env_cfg = "WEED_CONFIG_DIR=/etc/kelp-test",
              env_plain_cfg = "CONFIG_DIR=/nowhere", env_workers = "WORKERS=9", env_port = "PORT=1";
  char* environ_list[] = {env_whitelist.data(), env_grpc.data(), env_cfg.data(), env_plain_cfg.data(), env_workers.data(), env_port.data(), nullptr};
  std::vector<std::string> sources;
  REQUIRE(f.value().FillFromEnvironment(environ_list, &sources).ok());
  REQUIRE(f.value().FillFromOptionsFile(&sources).ok());
  const Flags& v = f.value();
  CHECK(v.Int("port") == 9000);               // the command line wins over both
  CHECK(v.Str("whiteList") == "10.0.0.7");    // the environment wins over the file
  CHECK(v.Int("port.grpc") == 19100);
  CHECK(v.Str("config_dir") == "/etc/kelp-test");  // a global flag is WEED_NAME, not NAME
  CHECK(v.Int("workers") == 0);               // kelp's own flags never come from the environment
  CHECK(v.Str("dataCenter") == "dc9");
  CHECK(v.Str("rack") == "rack3");
  CHECK(v.Bool("pprof"));
  CHECK(v.Int("idleTimeout") == 12);
  // The environment in flag order, then the file in line order.
  CHECK(sources == std::vector<std::string>{"-port.grpc (from PORT_GRPC)", "-whiteList (from WHITELIST)", "-config_dir (from WEED_CONFIG_DIR)",
                                            "-dataCenter (from " + options + ")", "-rack (from " + options + ")", "-pprof (from " + options + ")",
                                            "-idleTimeout (from " + options + ")"});
  // The workers are started with exactly what was resolved.
  auto again = Flags::Parse(v.SetArgs());
  REQUIRE(again.ok());
  for (const char* name : {"port", "whiteList", "port.grpc", "config_dir", "dataCenter", "rack", "pprof", "idleTimeout", "options"})
    CHECK(again.value().Str(name) == v.Str(name));

  std::string bad = "PORT_GRPC=abc";
  char* bad_env[] = {bad.data(), nullptr};
  auto g = Flags::Parse({});
  REQUIRE(g.ok());
  CHECK(g.value().FillFromEnvironment(bad_env, &sources).message() == "invalid value \"abc\" for environment variable port.grpc: parse error");
  auto missing = Flags::Parse({"-options=" + (d.path / "absent").string()});
  REQUIRE(missing.ok());
  CHECK_FALSE(missing.value().FillFromOptionsFile(&sources).ok());
}

TEST_CASE("JSON text is escaped like Go's encoding/json") {
  std::string out;
  AppendGoJsonString(&out, "a<b>&\"c\"\n\x01");
  CHECK(out == R"("a\u003cb\u003e\u0026\"c\"\n\u0001")");
  CHECK(JsonObject().Str("name", "x").Num("size", 3).Done() == R"({"name":"x","size":3})");
}

TEST_CASE("content sniffing follows Go's DetectContentType") {
  CHECK(http::DetectContentType("hello world") == "text/plain; charset=utf-8");
  CHECK(http::DetectContentType(std::string("\x00\x01\x02", 3)) == "application/octet-stream");
  CHECK(http::DetectContentType("\x89PNG\r\n\x1a\nrest") == "image/png");
  CHECK(http::DetectContentType("  <html><body>") == "text/html; charset=utf-8");
  CHECK(http::DetectContentType("\x1f\x8b\x08\x00") == "application/x-gzip");
  CHECK(http::DetectContentType("%PDF-1.4") == "application/pdf");
}
