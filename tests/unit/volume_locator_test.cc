#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <string>
#include <thread>

#include "worker-http/volume_locator.h"

using namespace kelp;

namespace {

// A stand-in master on loopback: answers every /dir/lookup with one location
// after a short delay, closing each connection, and counts the requests.
struct FakeMaster {
  int listener = -1;
  int port = 0;
  std::atomic<int> requests{0};
  std::thread thread;

  explicit FakeMaster(int expected) {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    listen(listener, 16);
    thread = std::thread([this, expected] {
      for (int i = 0; i < expected; ++i) {
        const int c = accept(listener, nullptr, nullptr);
        if (c < 0) return;
        std::string req;
        char buf[1024];
        while (req.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = read(c, buf, sizeof buf);
          if (n <= 0) break;
          req.append(buf, size_t(n));
        }
        ++requests;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const std::string body = R"({"volumeOrFileId":"7","locations":[{"url":"127.0.0.1:8081","publicUrl":"pub:8081"}]})";
        const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body;
        (void)!write(c, resp.data(), resp.size());
        close(c);
      }
    });
  }
  ~FakeMaster() {
    shutdown(listener, SHUT_RDWR);
    close(listener);
    thread.join();
  }
};

}  // namespace

TEST_CASE("concurrent lookups of one volume share one master request, then the cache answers") {
  FakeMaster master(1);
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    http::Client client(&loop);
    VolumeLocator locator(&client, [&] { return "127.0.0.1:" + std::to_string(master.port) + ".1"; });
    int answered = 0;
    for (int i = 0; i < 5; ++i) {
      locator.Lookup(7, [&](Status s, const std::vector<VolumeLocation>& l) {
        CHECK(s.ok());
        REQUIRE(l.size() == 1);
        CHECK(l[0].url == "127.0.0.1:8081");
        CHECK(l[0].public_url == "pub:8081");
        ++answered;
      });
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(answered == 5);
    CHECK(master.requests == 1);
    locator.Lookup(7, [&](Status s, const std::vector<VolumeLocation>&) {
      CHECK(s.ok());
      ++answered;
    });
    CHECK(answered == 6);  // from the cache, without the loop
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("master lookup answers parse as Go's JSON") {
  std::vector<VolumeLocation> l;
  CHECK(VolumeLocator::ParseLookup(404, R"({"volumeOrFileId":"9","error":"volume id 9 not found"})", &l).message() ==
        "volume id 9 not found");
  CHECK_FALSE(VolumeLocator::ParseLookup(502, "<html>", &l).ok());
  CHECK(VolumeLocator::ParseLookup(200, R"({"locations":[{"url":"a:1"}]})", &l).ok());
  CHECK(l[0].public_url == "a:1");
}
