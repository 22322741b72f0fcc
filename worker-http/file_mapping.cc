#include "worker-http/file_mapping.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace kelp {

namespace {

thread_local sigjmp_buf* t_guard = nullptr;

void OnSigbus(int sig, siginfo_t*, void*) {
  if (sigjmp_buf* g = t_guard) {
    t_guard = nullptr;
    siglongjmp(*g, 1);
  }
  // Not inside a guarded read: the default action (the process ends, and the
  // supervisor starts another worker).
  signal(sig, SIG_DFL);
  raise(sig);
}

void InstallSigbusHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, nullptr);
  });
}

size_t PageSize() {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return page;
}

}  // namespace

std::shared_ptr<const FileMapping> FileMapping::Map(int fd, uint64_t offset, uint64_t length, std::string* error) {
  InstallSigbusHandler();
  const uint64_t start = offset / PageSize() * PageSize();
  const size_t lead = size_t(offset - start);
  void* p = mmap(nullptr, size_t(length) + lead, PROT_READ, MAP_SHARED, fd, off_t(start));
  if (p == MAP_FAILED) {
    *error = std::string("mmap: ") + std::strerror(errno);
    return nullptr;
  }
  return std::shared_ptr<const FileMapping>(new FileMapping(static_cast<char*>(p), lead, length));
}

FileMapping::~FileMapping() { munmap(base_, size_t(length_) + lead_); }

bool TouchMappedGuarded(void (*touch)(void*), void* arg) {
  InstallSigbusHandler();
  sigjmp_buf env;
  sigjmp_buf* const outer = t_guard;
  // No signal mask to restore: the handler runs with SA_NODEFER.
  if (sigsetjmp(env, 0) != 0) {
    t_guard = outer;
    return false;
  }
  t_guard = &env;
  touch(arg);
  t_guard = outer;
  return true;
}

}  // namespace kelp
