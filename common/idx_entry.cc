#include "common/idx_entry.h"

#include "common/bytes.h"

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

}  // namespace kelp
