#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "common/crc32c.h"
#include "worker-http/file_mapping.h"

using namespace kelp;

namespace {

// A temporary file holding `bytes`, removed with the object.
struct TempFile {
  std::string path = "/tmp/kelp-mapping-XXXXXX";
  int fd = -1;
  explicit TempFile(const std::string& bytes) {
    fd = mkstemp(path.data());
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size()));
  }
  ~TempFile() {
    close(fd);
    unlink(path.c_str());
  }
};

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 131 + i / 4099) & 0xff);
  return s;
}

}  // namespace

TEST_CASE("a mapping of a range starting anywhere in a page shows that range's bytes") {
  const std::string bytes = Pattern(3 * 4096 + 777);
  TempFile f(bytes);
  for (uint64_t at : {uint64_t(0), uint64_t(1), uint64_t(4095), uint64_t(4096), uint64_t(5000)}) {
    const uint64_t len = bytes.size() - at - 3;
    std::string error;
    auto m = FileMapping::Map(f.fd, at, len, &error);
    REQUIRE_MESSAGE(m, error);
    CHECK(m->size() == len);
    CHECK(std::string(m->data(), len) == bytes.substr(at, len));
  }
}

TEST_CASE("a mapping outlives the descriptor it was made from") {
  const std::string bytes = Pattern(10000);
  std::shared_ptr<const FileMapping> m;
  {
    TempFile f(bytes);
    std::string error;
    m = FileMapping::Map(f.fd, 100, 9000, &error);
    REQUIRE(m);
  }
  CHECK(std::string(m->data(), 9000) == bytes.substr(100, 9000));
}

TEST_CASE("mapping a descriptor that is not a file fails with the errno's text") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::string error;
  CHECK_FALSE(FileMapping::Map(fds[0], 0, 4096, &error));
  CHECK(error == "mmap: No such device");
  close(fds[0]);
  close(fds[1]);
}

TEST_CASE("a touch of mapped pages beyond a file cut after the mapping is a failed read, not a signal") {
  const std::string bytes = Pattern(5 * 4096);
  TempFile f(bytes);
  std::string error;
  auto m = FileMapping::Map(f.fd, 4096, 4 * 4096, &error);
  REQUIRE(m);
  uint32_t crc = 0;
  CHECK(TouchMapped([&] { crc = Crc32cUpdate(0, m->data(), m->size()); }));
  CHECK(crc == Crc32cUpdate(0, bytes.data() + 4096, 4 * 4096));
  REQUIRE(ftruncate(f.fd, 2 * 4096) == 0);
  // The first page of the mapping is still inside the file.
  CHECK(TouchMapped([&] { crc = Crc32cUpdate(0, m->data(), 4096); }));
  CHECK(crc == Crc32cUpdate(0, bytes.data() + 4096, 4096));
  // Every time, and the guard nests.
  for (int i = 0; i < 3; ++i) {
    bool inner = true;
    CHECK(TouchMapped([&] {
      inner = TouchMapped([&] { crc = Crc32cUpdate(0, m->data(), m->size()); });
    }));
    CHECK_FALSE(inner);
    CHECK_FALSE(TouchMapped([&] { crc = Crc32cUpdate(0, m->data() + 2 * 4096, 100); }));
  }
}
