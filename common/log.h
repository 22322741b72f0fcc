// Minimal leveled logging to stderr (journald adds timestamps under systemd).
#pragma once
#include <cstdio>

namespace kelp {
void LogLine(char level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void SetLogRole(const char* role);
}  // namespace kelp

#define KLOG_INFO(...) ::kelp::LogLine('I', __VA_ARGS__)
#define KLOG_WARN(...) ::kelp::LogLine('W', __VA_ARGS__)
#define KLOG_ERROR(...) ::kelp::LogLine('E', __VA_ARGS__)
