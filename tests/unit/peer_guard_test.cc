// Which copy sources a server dials without -volume.allowUntrustedRemoteEndpoints,
// and gRPC errors in Go's words (worker-grpc/peer_guard.h).
#include <doctest/doctest.h>

#include "common/collection_name.h"
#include "common/go_error.h"
#include "worker-grpc/peer_guard.h"

using namespace kelp;

TEST_CASE("peer guard: loopback, unspecified, link-local and metadata addresses are refused with Go's texts; private ones pass") {
  CHECK(BlockedPeerAddress("127.0.0.1:8080") == "remote endpoint \"127.0.0.1:8080\" resolves to loopback address 127.0.0.1");
  CHECK(BlockedPeerAddress("127.9.9.9:8080") == "remote endpoint \"127.9.9.9:8080\" resolves to loopback address 127.9.9.9");
  CHECK(BlockedPeerAddress("[::1]:8080") == "remote endpoint \"[::1]:8080\" resolves to loopback address ::1");
  CHECK(BlockedPeerAddress("0.0.0.0:8080") == "remote endpoint \"0.0.0.0:8080\" resolves to unspecified address 0.0.0.0");
  CHECK(BlockedPeerAddress("169.254.169.254:80") == "remote endpoint \"169.254.169.254:80\" targets instance metadata service 169.254.169.254");
  CHECK(BlockedPeerAddress("169.254.3.4:80") == "remote endpoint \"169.254.3.4:80\" resolves to link-local address 169.254.3.4");
  CHECK(BlockedPeerAddress("[fe80::1]:80") == "remote endpoint \"[fe80::1]:80\" resolves to link-local address fe80::1");
  CHECK(BlockedPeerAddress("[::ffff:127.0.0.1]:80") == "remote endpoint \"[::ffff:127.0.0.1]:80\" resolves to loopback address 127.0.0.1");
  // Peers live on private networks: those pass, as public ones do.
  CHECK(BlockedPeerAddress("10.1.2.3:8080").empty());
  CHECK(BlockedPeerAddress("192.168.1.5:8080").empty());
  CHECK(BlockedPeerAddress("100.64.0.1:8080").empty());
  CHECK(BlockedPeerAddress("8.8.8.8:8080").empty());
  // A name is judged by what it resolves to.
  CHECK(BlockedPeerAddress("localhost:8080").find("resolves to loopback address") != std::string::npos);
}

TEST_CASE("gRPC errors read as Go prints them") {
  CHECK(GoRpcError(grpc::Status(grpc::StatusCode::UNKNOWN, "volume 7 is compacted")) == "rpc error: code = Unknown desc = volume 7 is compacted");
  CHECK(GoRpcError(grpc::Status(grpc::StatusCode::NOT_FOUND, "x")) == "rpc error: code = NotFound desc = x");
  CHECK(GoRpcError(grpc::Status(grpc::StatusCode::UNAVAILABLE, "")) == "rpc error: code = Unavailable desc = ");
}

TEST_CASE("a collection that names files here is one path element") {
  for (const char* ok : {"", "pics", "a.b", "x_y", "..."}) CHECK(IsSafeCollectionName(ok));
  for (const char* bad : {".", "..", "../up", "a/b", "a\\b", "/abs"}) CHECK_FALSE(IsSafeCollectionName(bad));
  CHECK_FALSE(IsSafeCollectionName(std::string_view("a\0b", 3)));
}
