#include "common/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdarg>
#include <ctime>

namespace kelp {

static const char* g_role = "supervisor";

void SetLogRole(const char* role) { g_role = role; }

void LogLine(char level, const char* fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  localtime_r(&tv.tv_sec, &t);
  std::fprintf(stderr, "%c%02d%02d %02d:%02d:%02d.%06ld %d %s] %s\n", level, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
               t.tm_sec, long(tv.tv_usec), int(getpid()), g_role, msg);
}

}  // namespace kelp
