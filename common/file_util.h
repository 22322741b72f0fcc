// Small POSIX helpers with Status results.
#pragma once
#include <sys/types.h>

#include <string>

#include "common/status.h"

namespace kelp {

std::string ErrnoMessage(const std::string& what);
// An errno as Go prints syscall errors: strerror in lower case ("no such file or directory").
std::string GoErrno(int e);
// Full pread/pwrite loops; a short read at EOF is an error.
Status PreadFull(int fd, void* buf, size_t len, off_t offset);
Status PwriteFull(int fd, const void* buf, size_t len, off_t offset);
bool FileExists(const std::string& path);
// A file's size, or -1 when it cannot be stat'ed (absent).
int64_t FileSizeOf(const std::string& path);
// The whole file; false (errno set) when it cannot be opened or read, a missing file included.
bool ReadWholeFile(const std::string& path, std::string* out);
// realpath(3), or `path` itself when it cannot be resolved.
std::string AbsolutePath(const std::string& path);
Result<off_t> FileSize(int fd);

}  // namespace kelp
