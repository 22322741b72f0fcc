#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <filesystem>
#include <fstream>

#include "common/grpc_peer.h"
#include "common/ip_white_list.h"
#include "common/security_config.h"
#include "common/server_config.h"
#include "tests/unit/fixtures.h"
#include "worker-http/guard.h"
#include "worker-http/jwt.h"

using namespace kelp;

TEST_CASE("file-id JWTs: signature, expiry, fid claim") {
  const std::string key = "secret";
  const std::string t = SignJwtHs256(R"({"fid":"3,01637037d6","exp":2000})", key);
  CHECK(VerifyFileIdJwt(t, key, "3,01637037d6", 1999));
  CHECK(VerifyFileIdJwt(t, key, "3,01637037d6", 2000));  // expiry is inclusive, as golang-jwt's
  CHECK_FALSE(VerifyFileIdJwt(t, key, "3,01637037d6", 2001));
  CHECK_FALSE(VerifyFileIdJwt(t, "other", "3,01637037d6", 1999));
  CHECK_FALSE(VerifyFileIdJwt(t, key, "3,01637037d7", 1999));
  std::string tampered = t;
  tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
  CHECK_FALSE(VerifyFileIdJwt(tampered, key, "3,01637037d6", 1999));
  CHECK_FALSE(VerifyFileIdJwt("", key, "3,01", 0));
  CHECK_FALSE(VerifyFileIdJwt("a.b", key, "3,01", 0));
  CHECK_FALSE(VerifyFileIdJwt("a.b.c.d", key, "3,01", 0));
  CHECK_FALSE(VerifyFileIdJwt("!!.??.**", key, "3,01", 0));
  CHECK_FALSE(VerifyFileIdJwt(SignJwtHs256(R"({"exp":2000})", key), key, "3,01", 0));  // no fid claim
  CHECK_FALSE(VerifyFileIdJwt(SignJwtHs256(R"({"fid":"3,01","nbf":100})", key), key, "3,01", 99));
  CHECK(VerifyFileIdJwt(SignJwtHs256(R"({"fid":"3,01","nbf":100})", key), key, "3,01", 100));
  CHECK_FALSE(VerifyFileIdJwt(SignJwtHs256("[1,2]", key), key, "3,01", 0));
}

TEST_CASE("file-id JWT claims are decoded as Go's encoding/json decodes them") {
  const std::string key = "k";
  auto ok = [&](const std::string& claims, int64_t now = 1000) { return VerifyFileIdJwt(SignJwtHs256(claims, key), key, "3,01", now); };
  CHECK(ok(R"({"fid":"3,01","exp":"2000"})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","exp":"500"})"));
  CHECK(ok(R"({"fid":"3,01","exp":"2e3"})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","exp":"abc"})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","exp":"02000"})"));
  CHECK(ok(R"({"fid":"3,01","exp":null})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","exp":true})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","exp":9223372036854775807})"));  // past 2^63 s Go's time wraps to the far past
  CHECK(ok(R"({"FID":"3,01"})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","Exp":500})"));
  CHECK(ok(R"({"fid":"3,01","exp":500,"EXP":2000})"));
  CHECK(ok(R"({"fid":"3,01","fid":null})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","iss":5})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","iat":"x"})"));
  CHECK(ok(R"({"fid":"3,01","iat":99999})"));
  CHECK(ok(R"({"fid":"3,01","aud":["a","b"]})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","aud":["a",1]})"));
  CHECK(ok(R"({"fid":"3,01","other":{"x":[1,{"y":null}]}})"));
  CHECK_FALSE(ok(R"({"fid":"3,01","nbf":"2000"})"));
}

TEST_CASE("only HS256 and HS512 are accepted: a correctly signed HS384 token is refused") {
  auto b64url = [](std::string_view in) {
    std::string out(sodium_base64_ENCODED_LEN(in.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out.resize(out.size() - 1);
    return out;
  };
  const std::string key = "secret";
  const std::string signed_part = b64url(R"({"alg":"HS384","typ":"JWT"})") + "." + b64url(R"({"fid":"3,01"})");
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha384(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(),
       mac, &mac_len);
  const std::string token = signed_part + "." + b64url(std::string_view(reinterpret_cast<char*>(mac), mac_len));
  CHECK_FALSE(VerifyFileIdJwt(token, key, "3,01", 0));
}

TEST_CASE("tokens come from the jwt parameter, a Bearer header, then the AT cookie") {
  http::Request r;
  r.headers = {{"authorization", "Bearer from-header"}, {"cookie", "x=1; AT=from-cookie"}};
  CHECK(JwtOf(r) == "from-header");
  r.query = "jwt=from-query";
  CHECK(JwtOf(r) == "from-query");
  r.query.clear();
  r.headers[0].second = "Basic abc";
  CHECK(JwtOf(r) == "from-cookie");
}

TEST_CASE("white list: exact IPs and CIDRs; empty allows everyone") {
  const Guard open{SecurityConfig{}};
  CHECK(open.WhiteListed("203.0.113.9"));
  SecurityConfig c;
  c.white_list = SplitComma("127.0.0.1, 10.0.0.0/8,192.168.1.128/25,::1,fd00::/8");
  const Guard g{c};
  CHECK(g.WhiteListed("127.0.0.1"));
  CHECK_FALSE(g.WhiteListed("127.0.0.2"));
  CHECK(g.WhiteListed("10.200.3.4"));
  CHECK(g.WhiteListed("192.168.1.200"));
  CHECK_FALSE(g.WhiteListed("192.168.1.100"));
  CHECK(g.WhiteListed("::1"));
  CHECK(g.WhiteListed("fd12::5"));
  CHECK_FALSE(g.WhiteListed("fe80::1"));
  CHECK_FALSE(g.WhiteListed("not an ip"));
}

TEST_CASE("JWT checks use the write or the read key and ignore a fid's delta") {
  SecurityConfig c;
  c.jwt_write_key = "w";
  const Guard g{c};
  http::Request r;
  CHECK(g.JwtAllows(r, "3", "01637037d6", false, 0));  // no read key: reads are open
  CHECK_FALSE(g.JwtAllows(r, "3", "01637037d6", true, 0));
  r.query = "jwt=" + SignJwtHs256(R"({"fid":"3,01637037d6"})", "w");
  CHECK(g.JwtAllows(r, "3", "01637037d6_2", true, 0));
  CHECK_FALSE(g.JwtAllows(r, "4", "01637037d6", true, 0));
}

TEST_CASE("security.toml: keys and white list; a malformed file is an error") {
  testing::TempDir d;
  const std::string path = (d.path / "security.toml").string();
  std::ofstream(path) << "[jwt.signing]\nkey = \"w\"\n[jwt.signing.read]\nkey = \"r\"\n[guard]\nwhite_list = \"10.0.0.1, 10.1.0.0/16\"\n";
  auto c = LoadSecurityConfig(path);
  REQUIRE(c.ok());
  CHECK(c.value().jwt_write_key == "w");
  CHECK(c.value().jwt_read_key == "r");
  CHECK(c.value().white_list == std::vector<std::string>{"10.0.0.1", "10.1.0.0/16"});
  CHECK(c.value().source == path);
  std::ofstream(path) << "[jwt.signing\nkey = ";
  CHECK_FALSE(LoadSecurityConfig(path).ok());
}

TEST_CASE("security.toml is searched in -config_dir first, then Go's other places") {
  testing::TempDir d;
  std::filesystem::create_directories(d.path / "conf");
  std::filesystem::create_directories(d.path / "home/.seaweedfs");
  std::filesystem::create_directories(d.path / "cwd");
  std::ofstream(d.path / "conf/security.toml") << "[guard]\nwhite_list = \"10.0.0.1\"\n";
  std::ofstream(d.path / "home/.seaweedfs/security.toml") << "[guard]\nwhite_list = \"10.0.0.2\"\n";
  std::ofstream(d.path / "cwd/security.toml") << "[guard]\nwhite_list = \"10.0.0.3\"\n";
  const std::string old_home = getenv("HOME") ? getenv("HOME") : "";
  const auto old_cwd = std::filesystem::current_path();
  setenv("HOME", (d.path / "home").c_str(), 1);
  std::filesystem::current_path(d.path / "cwd");
  auto from_dir = LoadSecurityConfig("", (d.path / "conf").string());
  auto from_tilde = LoadSecurityConfig("", "~/.seaweedfs");
  auto from_cwd = LoadSecurityConfig("", (d.path / "empty").string());
  std::filesystem::remove(d.path / "cwd/security.toml");
  auto from_home = LoadSecurityConfig("", "");
  std::filesystem::current_path(old_cwd);
  setenv("HOME", old_home.c_str(), 1);
  REQUIRE(from_dir.ok());
  CHECK(from_dir.value().white_list == std::vector<std::string>{"10.0.0.1"});
  CHECK(from_dir.value().source == (d.path / "conf/security.toml").string());
  REQUIRE(from_tilde.ok());
  CHECK(from_tilde.value().white_list == std::vector<std::string>{"10.0.0.2"});
  REQUIRE(from_cwd.ok());
  CHECK(from_cwd.value().white_list == std::vector<std::string>{"10.0.0.3"});
  REQUIRE(from_home.ok());
  CHECK(from_home.value().white_list == std::vector<std::string>{"10.0.0.2"});
}

TEST_CASE("gRPC peers name the caller's host as Go's net.IP.String does") {
  CHECK(GrpcPeerHost("ipv4:127.0.0.1:50412") == "127.0.0.1");
  CHECK(GrpcPeerHost("ipv6:[::1]:50412") == "::1");
  CHECK(GrpcPeerHost("ipv6:%5B::1%5D:50412") == "::1");
  CHECK(GrpcPeerHost("ipv6:[::ffff:10.1.2.3]:80") == "10.1.2.3");
  CHECK(GrpcPeerHost("ipv6:[FD00:0:0::7]:80") == "fd00::7");
  CHECK(GrpcPeerHost("ipv6:[fe80::1%25eth0]:80") == "fe80::1");
  CHECK(GrpcPeerHost("unix:/run/kelp.sock") == "unix:/run/kelp.sock");
  const IpWhiteList list(std::vector<std::string>{"127.0.0.2", "10.0.0.0/8"});
  CHECK_FALSE(list.Allows(GrpcPeerHost("ipv4:127.0.0.1:1")));
  CHECK(list.Allows(GrpcPeerHost("ipv4:127.0.0.2:1")));
  CHECK(list.Allows(GrpcPeerHost("ipv6:[::ffff:10.9.8.7]:1")));
  CHECK_FALSE(list.Allows(GrpcPeerHost("unix:/run/kelp.sock")));
  CHECK(IpWhiteList(std::vector<std::string>{}).Allows("unix:/run/kelp.sock"));
}
