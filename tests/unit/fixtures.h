// Test helpers: the Go-written golden files shipped beside the project,
// scratch directories, and needle records as a worker encodes them.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "common/needle.h"

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

// A file's whole content ("" when it cannot be read), and a file written whole.
inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline bool WriteFileBytes(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return bool(out.flush());
}

// `n` bytes from a seeded generator: the same for every run.
inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/kelp-unit-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A complete version-3 record, as an HTTP worker encodes one.
inline std::string NeedleRecord(NeedleId id, Cookie cookie, const std::string& data) {
  NeedleFields f;
  f.id = id;
  f.cookie = cookie;
  f.data = data;
  SetContentFlags(&f);
  return EncodeNeedleV3(f);
}

}  // namespace kelp::testing
