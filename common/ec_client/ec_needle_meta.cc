#include "common/ec_client/ec_needle_meta.h"

#include <algorithm>
#include <vector>

#include "common/bytes.h"
#include "common/crc32c.h"

namespace kelp {
namespace {

constexpr uint64_t kWindow = 1 << 20;

// A gather, its failure worded as Go's ReadEcShardNeedle words it.
EcGathered Gather(EcPeers* peers, const EcNeedleSite& site, uint64_t offset, uint64_t length, uint8_t* out, std::string* error) {
  const EcGathered got = GatherRecordRange(peers, site, offset, length, out, error);
  if (got == EcGathered::kError) *error = "ReadEcShardIntervals: " + *error;
  return got;
}

std::string Corrupted(const EcNeedleSite& site, const std::string& why) {
  return "ec volume " + std::to_string(site.vid) + " needle " + std::to_string(site.id) + " offset " + std::to_string(site.where.offset()) +
         " size " + std::to_string(site.where.size()) + ": " + why;
}

}  // namespace

EcGathered ReadEcNeedleMeta(EcPeers* peers, const EcNeedleSite& site, EcNeedleMeta* out, std::string* error) {
  const uint32_t size = site.where.size();
  const auto version = uint8_t(site.where.version());
  const uint64_t total = ActualSize(size, version);
  out->record_size = total;
  auto bytes = [&] { return reinterpret_cast<uint8_t*>(out->bytes.data()); };
  uint64_t data_size = 0;
  if (version != 1 && size != 0) {
    uint8_t head[kNeedleHeaderSize + 4];
    if (EcGathered got = Gather(peers, site, 0, sizeof head, head, error); got != EcGathered::kOk) return got;
    data_size = GetU32(head + kNeedleHeaderSize);
    if (ParseNeedleHeader(head).size != size) {
      *error = Corrupted(site, "size mismatch");
      return EcGathered::kError;
    }
    if (data_size + 4 > size) {
      *error = Corrupted(site, "index out of range 1: needle data corrupted");
      return EcGathered::kError;
    }
  }
  if (version == 1 || data_size == 0) {  // nothing to walk by, or nothing to walk: the record whole
    out->bytes.resize(size_t(total));
    if (EcGathered got = Gather(peers, site, 0, total, bytes(), error); got != EcGathered::kOk) return got;
    if (Status s = ParseNeedle(bytes(), size_t(total), size, version, &out->needle); !s.ok()) {
      *error = Corrupted(site, s.message());
      return EcGathered::kError;
    }
    return EcGathered::kOk;
  }
  // The header, then what follows the data; the data itself only through its CRC.
  const uint64_t after = kNeedleHeaderSize + 4 + data_size;
  out->bytes.resize(size_t(kNeedleHeaderSize + total - after));
  if (EcGathered got = Gather(peers, site, 0, kNeedleHeaderSize, bytes(), error); got != EcGathered::kOk) return got;
  if (EcGathered got = Gather(peers, site, after, total - after, bytes() + kNeedleHeaderSize, error); got != EcGathered::kOk) return got;
  if (Status s = ParseNeedleWithoutData(bytes(), out->bytes.size(), version, data_size, &out->needle); !s.ok()) {
    *error = Corrupted(site, s.message());
    return EcGathered::kError;
  }
  uint32_t crc = 0;
  std::vector<uint8_t> window(size_t(std::min(data_size, kWindow)));
  for (uint64_t done = 0; done < data_size;) {
    const uint64_t n = std::min(data_size - done, kWindow);
    if (EcGathered got = Gather(peers, site, kNeedleHeaderSize + 4 + done, n, window.data(), error); got != EcGathered::kOk) return got;
    crc = Crc32cUpdate(crc, window.data(), size_t(n));
    done += n;
  }
  if (crc != out->needle.checksum && LegacyCrcValue(crc) != out->needle.checksum) {
    *error = Corrupted(site, "CRC error! Data On Disk Corrupted");
    return EcGathered::kError;
  }
  return EcGathered::kOk;
}

}  // namespace kelp
