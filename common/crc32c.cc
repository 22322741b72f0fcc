#include "common/crc32c.h"

#include <isa-l/crc.h>

#include <climits>

namespace kelp {

uint32_t Crc32cUpdate(uint32_t crc, const void* data, size_t len) {
  // ISA-L works on the un-inverted register; Go's convention inverts on entry and exit.
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  uint32_t reg = ~crc;
  while (len > 0) {
    const size_t step = len > size_t(INT_MAX) ? size_t(1) << 30 : len;
    reg = crc32_iscsi(p, static_cast<int>(step), reg);
    p += step;
    len -= step;
  }
  return ~reg;
}

}  // namespace kelp
