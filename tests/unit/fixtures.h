// Access to the Go-written golden files shipped beside the project.
#pragma once
#include <fstream>
#include <iterator>
#include <string>

namespace kelp::testing {

inline std::string FixtureDir() {
  if (const char* d = std::getenv("KELP_FIXTURES")) return d;
  return "../shared/fixtures/go-written";
}

inline std::string FixturePath(const std::string& name) { return FixtureDir() + "/" + name; }

inline std::string ReadFixture(const std::string& name) {
  std::ifstream in(FixturePath(name), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace kelp::testing
