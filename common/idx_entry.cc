#include "common/idx_entry.h"

#include <algorithm>
#include <string>

#include "common/bytes.h"
#include "common/file_util.h"

namespace kelp {

void EncodeIdxEntry(const IdxEntry& e, int offset_bytes, uint8_t* out) {
  PutU64(out, e.id);
  PutU32(out + 8, uint32_t(e.offset_units));
  if (offset_bytes == 5) out[12] = uint8_t(e.offset_units >> 32);
  PutU32(out + 8 + offset_bytes, uint32_t(e.size));
}

IdxEntry DecodeIdxEntry(const uint8_t* in, int offset_bytes) {
  IdxEntry e;
  e.id = GetU64(in);
  e.offset_units = GetU32(in + 8);
  if (offset_bytes == 5) e.offset_units |= uint64_t(in[12]) << 32;
  e.size = int32_t(GetU32(in + 8 + offset_bytes));
  return e;
}

Status ForEachIdxEntry(int fd, uint64_t size, int offset_bytes, const std::function<void(const IdxEntry&)>& visit) {
  const uint64_t row = uint64_t(IdxEntrySize(offset_bytes));
  const uint64_t whole = size / row * row;
  std::string block(size_t(row * 4096), '\0');
  for (uint64_t at = 0; at < whole;) {
    const size_t n = size_t(std::min<uint64_t>(block.size(), whole - at));
    if (Status s = PreadFull(fd, block.data(), n, off_t(at)); !s.ok()) return s;
    for (size_t i = 0; i < n; i += size_t(row)) visit(DecodeIdxEntry(reinterpret_cast<const uint8_t*>(block.data()) + i, offset_bytes));
    at += n;
  }
  return Status::Ok();
}

}  // namespace kelp
