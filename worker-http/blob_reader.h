// Reads needles from a worker's VolumeView: small ones whole (CRC checked),
// large ones as metadata plus a streamed, CRC-checked data range.
#pragma once
#include <memory>
#include <string>

#include "common/needle.h"
#include "worker-http/http_types.h"
#include "worker-http/volume_table.h"

namespace kelp {

// Needles whose data is at most this size are read whole.
inline constexpr uint64_t kWholeReadLimit = 1 << 20;

struct StoredBlob {
  http::ByteBuffer record;  // the whole record, or only header+meta for streamed ones
  ParsedNeedle needle;     // views into `record` (data empty when streamed)
  bool streamed = false;
  uint64_t data_offset = 0;  // absolute .dat offset of the data when streamed
  uint64_t data_size = 0;
};

enum class ReadOutcome { kOk, kNotFound, kDeleted, kError };

// Looks the id up in the shared index and reads the record. `read_deleted`
// reads a deleted needle's last version, as Go's readDeleted=true does.
ReadOutcome ReadBlob(const VolumeView& v, NeedleId id, bool read_deleted, StoredBlob* out, std::string* error);

// The whole data of a blob as stored, copied out (read from the .dat when the
// blob was streamed); refused when more than `limit` bytes.
Status CopyBlobData(int fd, const StoredBlob& blob, uint64_t limit, std::string* out);

// Streams [offset, offset+length) of a blob's data; verifies the CRC when the
// whole data is streamed.
std::unique_ptr<http::BodySource> StreamBlobData(int fd, const StoredBlob& blob, uint64_t offset, uint64_t length, size_t chunk);

}  // namespace kelp
