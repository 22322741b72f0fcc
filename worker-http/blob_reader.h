// Reads needles from a worker's VolumeView: small ones whole (CRC checked),
// large ones as metadata plus a streamed, CRC-checked data range.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "common/needle.h"
#include "worker-http/http_types.h"
#include "worker-http/volume_table.h"

namespace kelp {

// Needles whose record body (the header's size: data and metadata) is at most
// this size are read whole; larger ones stream their data. Go's PagedReadLimit.
inline constexpr uint64_t kWholeReadLimit = 1 << 20;
// Records of at least this size are read through a mapping of the .dat (no
// copy in the worker); smaller ones are copied out with one pread, which costs
// less than setting up and tearing down a mapping.
inline constexpr uint64_t kMappedReadMin = 128 << 10;
// A streamed needle goes to the socket in pieces of this size: small enough
// that a piece is still in the CPU's cache when it is sent after its check.
inline constexpr size_t kStreamPieceBytes = 256 << 10;
// A GET of a streamed needle's whole data up to this size has its CRC checked
// before the answer starts (Go's 500 on a mismatch); a larger one is checked
// piece by piece as it streams, which bounds how long one read holds the
// worker's loop.
inline constexpr uint64_t kCheckFirstLimit = 16 << 20;

struct StoredBlob;
class FileMapping;

// The data of a streamed blob that is not on the worker's .dat (an
// erasure-coded volume's, read from shards here and on peers). Reads run off
// the loop; every `done` runs on it.
class StreamedBlobData {
 public:
  virtual ~StreamedBlobData() = default;
  // [start, start + length) of the data; its CRC is verified when that is all
  // of it, and the last piece is held back until then.
  virtual std::unique_ptr<http::BodySource> Slice(uint64_t start, uint64_t length) = 0;
  // Up to `n` bytes of the data from `at`.
  virtual void Peek(uint64_t at, size_t n, std::function<void(Status, std::string)> done) = 0;
  // The whole record, CRC checked, as a blob that is not streamed.
  virtual void ReadWhole(std::function<void(Status, StoredBlob)> done) = 0;
};

struct StoredBlob {
  http::ByteBuffer record;  // the whole record, or, streamed, all of it but the data
  ParsedNeedle needle;     // views into `record` (data empty when streamed)
  bool streamed = false;
  uint64_t data_offset = 0;  // streamed from the .dat: the data's absolute offset
  uint64_t data_size = 0;
  std::shared_ptr<StreamedBlobData> source;  // streamed, not from the .dat: where the data is
  int64_t peeked_at = -1;  // source: `peeked` holds the data's first bytes from there
  std::string peeked;
};

// A streamed blob's `record` holds the record without its data: the header,
// then flags .. pairs, the CRC, the timestamp (v3) and the padding. Parses it.
Status ParseRecordWithoutData(uint8_t version, uint64_t data_size, StoredBlob* out);

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

// A streamed blob's whole data mapped (one mapping: for data up to
// kCheckFirstLimit), and its CRC computed over the mapping.
struct CheckedData {
  std::shared_ptr<const FileMapping> mapping;
  uint32_t crc = 0;
};
Result<CheckedData> MapAndCheckData(int fd, const StoredBlob& blob);
// Streams the whole data from that mapping, not checked again.
std::unique_ptr<http::BodySource> StreamCheckedData(int fd, const StoredBlob& blob, CheckedData checked, size_t chunk);
// Whether a computed CRC matches a stored one, in either of Go's encodings.
bool CrcMatches(uint32_t crc, uint32_t expected);

}  // namespace kelp
