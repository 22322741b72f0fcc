// libFuzzer: the needle (whole and without its data), superblock, idx-entry and .vif parsers on arbitrary bytes.
#include <cstdint>
#include <cstring>
#include <string>

#include "common/bytes.h"
#include "common/idx_entry.h"
#include "common/needle.h"
#include "common/super_block.h"
#include "common/volume_info.h"

using namespace kelp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= kSuperBlockSize) {
    auto sb = ParseSuperBlockHeader(data);
    if (sb.ok()) (void)sb.value().Encode();
  }
  if (size >= size_t(kNeedleHeaderSize)) {
    const NeedleHeader h = ParseNeedleHeader(data);
    for (uint8_t version = 1; version <= 3; ++version) {
      ParsedNeedle n;
      // The size comes from the (untrusted) header, as when the index is corrupt.
      if (ParseNeedle(data, size, h.size, version, &n).ok()) {
        // Whatever parses must re-encode to a record that parses back the same.
        if (version == 3) {
          NeedleFields f{n.header.cookie, n.header.id, n.data, n.flags, n.name, n.mime, n.last_modified, n.ttl, n.pairs, n.append_at_ns};
          const std::string again = EncodeNeedleV3(f);
          ParsedNeedle m;
          const auto* p = reinterpret_cast<const uint8_t*>(again.data());
          if (!ParseNeedle(p, again.size(), ParseNeedleHeader(p).size, 3, &m).ok() || m.data != n.data) __builtin_trap();
        }
      }
    }
    ParsedNeedle meta;
    (void)ParseNeedleNonData(data, size, &meta);
    // A record without its data (a streamed or EC read): the data size is
    // taken from the bytes after the header, as a corrupt record would give it.
    if (size >= size_t(kNeedleHeaderSize) + 4) {
      const uint64_t data_size = GetU32(data + kNeedleHeaderSize);
      for (uint8_t version = 2; version <= 3; ++version) {
        ParsedNeedle partial;
        if (ParseNeedleWithoutData(data, size, version, data_size, &partial).ok() && !partial.data.empty()) __builtin_trap();
      }
    }
  }
  for (int width : {4, 5})
    for (size_t i = 0; i + IdxEntrySize(width) <= size; i += IdxEntrySize(width)) (void)DecodeIdxEntry(data + i, width);
  (void)DecodeVolumeInfo(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
