#include <doctest/doctest.h>

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
  const Guard open = Guard::FromKeys("", "", "");
  CHECK(open.WhiteListed("203.0.113.9"));
  const Guard g = Guard::FromKeys("", "", "127.0.0.1, 10.0.0.0/8,192.168.1.128/25,::1,fd00::/8");
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
  const Guard g = Guard::FromKeys("w", "", "");
  http::Request r;
  CHECK(g.JwtAllows(r, "3", "01637037d6", false, 0));  // no read key: reads are open
  CHECK_FALSE(g.JwtAllows(r, "3", "01637037d6", true, 0));
  r.query = "jwt=" + SignJwtHs256(R"({"fid":"3,01637037d6"})", "w");
  CHECK(g.JwtAllows(r, "3", "01637037d6_2", true, 0));
  CHECK_FALSE(g.JwtAllows(r, "4", "01637037d6", true, 0));
}
