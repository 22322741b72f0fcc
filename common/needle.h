// Needles: the records appended to a .dat file
// (upstream: weed/storage/needle/needle*.go).
//
//   header (16): cookie u32 | needle id u64 | size u32          (all big-endian)
//   v1 body: data[size]
//   v2/v3 body, present when size > 0:
//     data_size u32 | data | flags u8
//     [name_size u8 | name]       if flags & kFlagHasName
//     [mime_size u8 | mime]       if flags & kFlagHasMime
//     [last_modified, 5 bytes]    if flags & kFlagHasLastModified (unix seconds)
//     [ttl, 2 bytes]              if flags & kFlagHasTtl
//     [pairs_size u16 | pairs]    if flags & kFlagHasPairs (JSON object)
//   tail: crc32c(data) u32 | v3 only: append_at_ns u64 | padding
// `size` counts the v2/v3 body fields above (0 for an empty needle).
// Padding is 1..8 bytes so that the whole record is a multiple of 8; a record
// that would already end on a boundary still gets 8 bytes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/ttl.h"
#include "common/types.h"

namespace kelp {

inline constexpr uint8_t kFlagIsCompressed = 0x01;
inline constexpr uint8_t kFlagHasName = 0x02;
inline constexpr uint8_t kFlagHasMime = 0x04;
inline constexpr uint8_t kFlagHasLastModified = 0x08;
inline constexpr uint8_t kFlagHasTtl = 0x10;
inline constexpr uint8_t kFlagHasPairs = 0x20;
inline constexpr uint8_t kFlagIsChunkManifest = 0x80;

inline constexpr size_t kMaxNameOrMimeSize = 255;

uint32_t PaddingLength(uint32_t size, uint8_t version);
// Bytes after the 16-byte header: body, checksum, timestamp, padding.
uint64_t BodyLength(uint32_t size, uint8_t version);
// The full record length on disk.
inline uint64_t ActualSize(uint32_t size, uint8_t version) { return kNeedleHeaderSize + BodyLength(size, version); }

// What an upload contributes to a needle. The views must outlive encoding.
struct NeedleFields {
  Cookie cookie = 0;
  NeedleId id = 0;
  std::string_view data;
  // Authoritative, as in Go: each kFlagHas* bit writes its field (even when
  // empty), a clear bit leaves it out. SetContentFlags() derives them.
  uint8_t flags = 0;
  std::string_view name;  // at most 255 bytes are written
  std::string_view mime;  // at most 255 bytes are written
  uint64_t last_modified = 0;  // seconds
  Ttl ttl;
  std::string_view pairs;  // at most 65535 bytes are written
  uint64_t append_at_ns = 0;
};

// Sets the has-name/mime/last-modified/ttl/pairs bits for the fields that are present.
void SetContentFlags(NeedleFields* f);

struct EncodedLayout {
  uint32_t size = 0;           // the header's size field
  uint64_t total = 0;          // bytes written
  uint32_t checksum = 0;       // crc32c of data
  uint64_t append_at_offset = 0;  // where v3's append_at_ns sits in the record
};

// Computes the layout without writing.
EncodedLayout PlanNeedleV3(const NeedleFields& f);
// Writes a version-3 record into out[0, PlanNeedleV3(f).total). `f.data` may
// already sit at out + kNeedleHeaderSize + 4; it is then not copied.
EncodedLayout EncodeNeedleV3(const NeedleFields& f, uint8_t* out);
// The same, given the CRC-32C of f.data (a caller that has it already).
EncodedLayout EncodeNeedleV3(const NeedleFields& f, uint32_t data_checksum, uint8_t* out);
std::string EncodeNeedleV3(const NeedleFields& f);

// The same record in three pieces for a gathered write, the data itself left
// where it is: head + f.data + tail are EncodeNeedleV3's bytes when
// `data_checksum` is the CRC-32C of f.data (the caller has it already).
struct NeedlePieces {
  std::string head;  // the header, then the data's size when there is data
  std::string tail;  // the fields after the data, checksum, append_at_ns, padding
  EncodedLayout layout;
};
NeedlePieces EncodeNeedleV3Pieces(const NeedleFields& f, uint32_t data_checksum);

// Go's padding after a version-3 record's append_at_ns (PaddingLength(size, 3)
// bytes at `p`): its writer pads from a scratch buffer holding the big-endian
// size then zeros, and kelp's records are byte for byte Go's.
void PutPaddingV3(uint8_t* p, uint32_t size);

// Makes a whole version-2 or version-3 record in `record` the version-3 record
// kelp appends: header and body fields kept, `checksum` as the data checksum,
// append_at_ns 0 (the writer stamps it), Go's padding.
void RecordToV3(std::string* record, uint32_t checksum);

// A needle id as Go's %x prints a NeedleId in its size-mismatch texts: the
// hex digits of its String(), hex-encoded again (id 1 prints "31").
std::string GoHexOfNeedleId(NeedleId id);

struct NeedleHeader {
  Cookie cookie = 0;
  NeedleId id = 0;
  uint32_t size = 0;  // int32 on the wire
};
NeedleHeader ParseNeedleHeader(const uint8_t* p);

// A parsed record; views point into the buffer that was parsed.
struct ParsedNeedle {
  NeedleHeader header;
  std::string_view data;
  uint8_t flags = 0;
  std::string_view name, mime, pairs;
  uint64_t last_modified = 0;
  Ttl ttl;
  uint32_t checksum = 0;
  uint64_t append_at_ns = 0;

  bool IsCompressed() const { return flags & kFlagIsCompressed; }
  bool IsChunkManifest() const { return flags & kFlagIsChunkManifest; }
};

// Parses a whole record of ActualSize(expected_size, version) bytes and verifies
// the data CRC (either encoding). A header size different from expected_size is
// a size mismatch (the index points at something else).
Status ParseNeedle(const uint8_t* p, size_t len, uint32_t expected_size, uint8_t version, ParsedNeedle* out);

// Go's Needle.String(), as error texts quote a needle: "<id and cookie> Size:..,
// DataSize:.., Name:.., Mime:.. Compressed:true|false".
std::string NeedleString(const ParsedNeedle& n, uint64_t data_size);

// Parses the v2/v3 fields that follow the data (flags .. pairs) from
// `bytes`, used when the data itself is streamed instead of read whole.
Status ParseNeedleNonData(const uint8_t* bytes, size_t len, ParsedNeedle* out);

// Parses a v2/v3 record without its data: `p[0, len)` holds the 16-byte
// header, then what follows the data (flags .. pairs, the CRC, v3's
// timestamp, the padding), for data of `data_size` bytes. The CRC is read,
// not verified (the data is not here); `out->data` stays empty.
Status ParseNeedleWithoutData(const uint8_t* p, size_t len, uint8_t version, uint64_t data_size, ParsedNeedle* out);

}  // namespace kelp
