// Read-only mappings of byte ranges of a volume's .dat, so that a needle's
// bytes are checked and sent from the page cache without a copy into the
// worker: the CRC pass reads the mapping, and the socket write copies from it.
//
// Invariant relied on: while a volume is mounted, its .dat is never cut below
// an indexed record (the supervisor truncates only unacknowledged tails), so
// every byte an index entry names lies inside the file. A file cut behind the
// server's back turns a touch of a mapped page into SIGBUS; the checks made
// here run under a guard that turns that into a failed read, and a socket
// write from such a page fails with EFAULT instead.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace kelp {

class FileMapping {
 public:
  // Maps [offset, offset + length) of `fd` (length > 0); null with `*error` set when mmap fails.
  static std::shared_ptr<const FileMapping> Map(int fd, uint64_t offset, uint64_t length, std::string* error);
  ~FileMapping();
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  const char* data() const { return base_ + lead_; }  // the byte at `offset`
  uint64_t size() const { return length_; }

 private:
  FileMapping(char* base, size_t lead, uint64_t length) : base_(base), lead_(lead), length_(length) {}
  char* base_;
  size_t lead_;  // bytes mapped before `offset` to reach a page boundary
  uint64_t length_;
};

// Runs `touch(arg)`, which reads mapped memory, on this thread with SIGBUS
// turned into a false return. `touch` must not own anything that needs a
// destructor across its reads of the mapping: they are skipped on a fault.
bool TouchMappedGuarded(void (*touch)(void*), void* arg);

template <typename F>
bool TouchMapped(F&& f) {
  return TouchMappedGuarded([](void* p) { (*static_cast<F*>(p))(); }, &f);
}

}  // namespace kelp
