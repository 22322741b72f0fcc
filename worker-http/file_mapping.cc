#include "worker-http/file_mapping.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace kelp {

namespace {

thread_local sigjmp_buf* t_guard = nullptr;
struct sigaction g_previous {};  // the SIGBUS action before ours (a sanitizer's, or the default)

void OnSigbus(int sig, siginfo_t* info, void* context) {
  if (sigjmp_buf* g = t_guard) {
    t_guard = nullptr;
    siglongjmp(*g, 1);
  }
  // Not inside a guarded read: whatever handled it before ours does (the
  // default ends the process, and the supervisor starts another worker).
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, context);
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) return g_previous.sa_handler(sig);
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
    sigaction(SIGBUS, &sa, &g_previous);
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
  // The compiler must not move the touch's loads outside the guarded span.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  touch(arg);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_guard = outer;
  return true;
}

}  // namespace kelp
