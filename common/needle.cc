#include "common/needle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_id.h"

namespace kelp {

uint32_t PaddingLength(uint32_t size, uint8_t version) {
  const uint64_t unpadded = uint64_t(kNeedleHeaderSize) + size + kNeedleChecksumSize + (version == 3 ? kTimestampSize : 0);
  return uint32_t(kNeedlePaddingSize - unpadded % kNeedlePaddingSize);
}

uint64_t BodyLength(uint32_t size, uint8_t version) {
  return uint64_t(size) + kNeedleChecksumSize + (version == 3 ? kTimestampSize : 0) + PaddingLength(size, version);
}

namespace {

struct Effective {
  uint8_t flags;
  size_t name_size;
  size_t mime_size;
};

Effective EffectiveFields(const NeedleFields& f) {
  return {f.flags, std::min(f.name.size(), kMaxNameOrMimeSize), std::min(f.mime.size(), kMaxNameOrMimeSize)};
}

uint32_t BodySize(const NeedleFields& f, const Effective& e) {
  if (f.data.empty()) return 0;
  uint64_t s = 4 + f.data.size() + 1;
  if (e.flags & kFlagHasName) s += 1 + e.name_size;
  if (e.flags & kFlagHasMime) s += 1 + e.mime_size;
  if (e.flags & kFlagHasLastModified) s += kLastModifiedBytes;
  if (e.flags & kFlagHasTtl) s += kTtlBytes;
  if (e.flags & kFlagHasPairs) s += 2 + std::min<size_t>(f.pairs.size(), 0xFFFF);
  return uint32_t(s);
}

}  // namespace

void SetContentFlags(NeedleFields* f) {
  if (!f->name.empty()) f->flags |= kFlagHasName;
  if (!f->mime.empty()) f->flags |= kFlagHasMime;
  if (f->last_modified != 0) f->flags |= kFlagHasLastModified;
  if (!f->ttl.empty()) f->flags |= kFlagHasTtl;
  if (!f->pairs.empty()) f->flags |= kFlagHasPairs;
}

EncodedLayout PlanNeedleV3(const NeedleFields& f) {
  EncodedLayout l;
  l.size = BodySize(f, EffectiveFields(f));
  l.total = ActualSize(l.size, 3);
  l.append_at_offset = kNeedleHeaderSize + uint64_t(l.size) + kNeedleChecksumSize;
  return l;
}

namespace {

// The header and, for a needle with data, the data's size: what precedes the data.
size_t PutHead(const NeedleFields& f, const EncodedLayout& l, uint8_t* out) {
  PutU32(out, f.cookie);
  PutU64(out + 4, f.id);
  PutU32(out + 12, l.size);
  if (f.data.empty()) return kNeedleHeaderSize;
  PutU32(out + kNeedleHeaderSize, uint32_t(f.data.size()));
  return kNeedleHeaderSize + 4;
}

// Everything after the data: the fields its flags name, the checksum,
// append_at_ns and the padding: up to the record's total length.
void PutTail(const NeedleFields& f, const EncodedLayout& l, uint8_t* p) {
  const Effective e = EffectiveFields(f);
  if (!f.data.empty()) {
    *p++ = e.flags;
    if (e.flags & kFlagHasName) { *p++ = uint8_t(e.name_size); std::memcpy(p, f.name.data(), e.name_size); p += e.name_size; }
    if (e.flags & kFlagHasMime) { *p++ = uint8_t(e.mime_size); std::memcpy(p, f.mime.data(), e.mime_size); p += e.mime_size; }
    if (e.flags & kFlagHasLastModified) {
      uint8_t lm[8];
      PutU64(lm, f.last_modified);
      std::memcpy(p, lm + 8 - kLastModifiedBytes, kLastModifiedBytes);
      p += kLastModifiedBytes;
    }
    if (e.flags & kFlagHasTtl) { f.ttl.ToBytes(p); p += kTtlBytes; }
    if (e.flags & kFlagHasPairs) {
      const size_t n = std::min<size_t>(f.pairs.size(), 0xFFFF);
      PutU16(p, uint16_t(n));
      std::memcpy(p + 2, f.pairs.data(), n);
      p += 2 + n;
    }
  }
  PutU32(p, l.checksum);
  PutU64(p + 4, f.append_at_ns);
  p += kNeedleChecksumSize + kTimestampSize;
  PutPaddingV3(p, l.size);
}

size_t HeadLength(const NeedleFields& f) { return kNeedleHeaderSize + (f.data.empty() ? 0 : 4); }

}  // namespace

EncodedLayout EncodeNeedleV3(const NeedleFields& f, uint8_t* out) {
  return EncodeNeedleV3(f, Crc32c(f.data.data(), f.data.size()), out);
}

EncodedLayout EncodeNeedleV3(const NeedleFields& f, uint32_t data_checksum, uint8_t* out) {
  EncodedLayout l = PlanNeedleV3(f);
  l.checksum = data_checksum;
  uint8_t* p = out + PutHead(f, l, out);
  if (!f.data.empty() && f.data.data() != reinterpret_cast<const char*>(p)) std::memmove(p, f.data.data(), f.data.size());
  PutTail(f, l, p + f.data.size());
  return l;
}

NeedlePieces EncodeNeedleV3Pieces(const NeedleFields& f, uint32_t data_checksum) {
  NeedlePieces pieces;
  pieces.layout = PlanNeedleV3(f);
  pieces.layout.checksum = data_checksum;
  pieces.head.resize(HeadLength(f));
  PutHead(f, pieces.layout, reinterpret_cast<uint8_t*>(pieces.head.data()));
  pieces.tail.resize(size_t(pieces.layout.total - pieces.head.size() - f.data.size()));
  PutTail(f, pieces.layout, reinterpret_cast<uint8_t*>(pieces.tail.data()));
  return pieces;
}

void PutPaddingV3(uint8_t* p, uint32_t size) {
  uint8_t pad[8] = {0};
  PutU32(pad, size);
  std::memcpy(p, pad, PaddingLength(size, 3));
}

void RecordToV3(std::string* record, uint32_t checksum) {
  const uint32_t size = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(record->data())).size;
  record->resize(size_t(ActualSize(size, 3)));
  auto* tail = reinterpret_cast<uint8_t*>(record->data()) + kNeedleHeaderSize + size;
  PutU32(tail, checksum);
  PutU64(tail + kNeedleChecksumSize, 0);
  PutPaddingV3(tail + kNeedleChecksumSize + kTimestampSize, size);
}

std::string GoHexOfNeedleId(NeedleId id) {
  char hex[24];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(id));
  std::string out;
  for (const char* c = hex; *c; ++c) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", static_cast<unsigned char>(*c));
    out += two;
  }
  return out;
}

std::string EncodeNeedleV3(const NeedleFields& f) {
  std::string out(PlanNeedleV3(f).total, '\0');
  EncodeNeedleV3(f, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

NeedleHeader ParseNeedleHeader(const uint8_t* p) { return {GetU32(p), GetU64(p + 4), GetU32(p + 12)}; }

Status ParseNeedleNonData(const uint8_t* b, size_t len, ParsedNeedle* n) {
  size_t i = 0;
  auto corrupted = [](int which) {
    return Status::Corruption("index out of range " + std::to_string(which) + ": needle data corrupted");
  };
  if (i < len) n->flags = b[i++];
  if (i < len && (n->flags & kFlagHasName)) {
    const size_t s = b[i++];
    if (i + s > len) return corrupted(2);
    n->name = {reinterpret_cast<const char*>(b + i), s};
    i += s;
  }
  if (i < len && (n->flags & kFlagHasMime)) {
    const size_t s = b[i++];
    if (i + s > len) return corrupted(3);
    n->mime = {reinterpret_cast<const char*>(b + i), s};
    i += s;
  }
  if (i < len && (n->flags & kFlagHasLastModified)) {
    if (i + kLastModifiedBytes > len) return corrupted(4);
    uint64_t v = 0;
    for (int k = 0; k < kLastModifiedBytes; ++k) v = v << 8 | b[i + k];
    n->last_modified = v;
    i += kLastModifiedBytes;
  }
  if (i < len && (n->flags & kFlagHasTtl)) {
    if (i + kTtlBytes > len) return corrupted(5);
    n->ttl = Ttl::FromBytes(b + i);
    i += kTtlBytes;
  }
  if (i < len && (n->flags & kFlagHasPairs)) {
    if (i + 2 > len) return corrupted(6);
    const size_t s = GetU16(b + i);
    i += 2;
    if (i + s > len) return corrupted(7);
    n->pairs = {reinterpret_cast<const char*>(b + i), s};
    i += s;
  }
  return Status::Ok();
}

Status ParseNeedleWithoutData(const uint8_t* p, size_t len, uint8_t version, uint64_t data_size, ParsedNeedle* out) {
  if (version == 1 || len < kNeedleHeaderSize) return Status::Corruption("index out of range 1: needle data corrupted");
  const NeedleHeader h = ParseNeedleHeader(p);
  const uint64_t tail_len = ActualSize(h.size, version) - kNeedleHeaderSize - h.size;
  if (data_size + 4 > h.size || len != kNeedleHeaderSize + (h.size - 4 - data_size) + tail_len)
    return Status::Corruption("index out of range 1: needle data corrupted");
  const uint64_t meta_len = h.size - 4 - data_size;
  const uint8_t* meta = p + kNeedleHeaderSize;
  *out = ParsedNeedle{};
  out->header = h;
  if (Status s = ParseNeedleNonData(meta, meta_len, out); !s.ok()) return s;
  out->checksum = GetU32(meta + meta_len);
  if (version == 3) out->append_at_ns = GetU64(meta + meta_len + 4);
  return Status::Ok();
}

Status ParseNeedle(const uint8_t* p, size_t len, uint32_t expected_size, uint8_t version, ParsedNeedle* n) {
  if (version < 1 || version > 3) return Status::Invalid("unsupported version " + std::to_string(version) + "!");
  if (len < ActualSize(expected_size, version)) return Status::Corruption("needle record truncated");
  *n = ParsedNeedle{};
  n->header = ParseNeedleHeader(p);
  if (n->header.size != expected_size)
    return Status::Corruption("size mismatch: entry not found: found id " + std::to_string(n->header.id) + " size " +
                              std::to_string(int32_t(n->header.size)) + ", expected size " + std::to_string(expected_size));
  const uint8_t* body = p + kNeedleHeaderSize;
  const uint32_t size = expected_size;
  if (version == 1) {
    n->data = {reinterpret_cast<const char*>(body), size};
  } else if (size > 0) {
    const uint32_t data_size = GetU32(body);
    if (uint64_t(data_size) + 4 > size) return Status::Corruption("index out of range 1: needle data corrupted");
    n->data = {reinterpret_cast<const char*>(body + 4), data_size};
    Status s = ParseNeedleNonData(body + 4 + data_size, size - 4 - data_size, n);
    if (!s.ok()) return s;
  }
  const uint8_t* tail = body + size;
  n->checksum = GetU32(tail);
  if (!n->data.empty()) {
    const uint32_t actual = Crc32c(n->data.data(), n->data.size());
    if (actual != n->checksum && LegacyCrcValue(actual) != n->checksum) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "invalid CRC for needle %llx (got %08x, want %08x), data on disk corrupted: needle data corrupted",
                    static_cast<unsigned long long>(n->header.id), actual, n->checksum);
      return Status::Corruption(msg);
    }
    n->checksum = actual;
  }
  if (version == 3) n->append_at_ns = GetU64(tail + kNeedleChecksumSize);
  return Status::Ok();
}

}  // namespace kelp

namespace kelp {

std::string NeedleString(const ParsedNeedle& n, uint64_t data_size) {
  return FormatNeedleIdCookie(n.header.id, n.header.cookie) + " Size:" + std::to_string(n.header.size) +
         ", DataSize:" + std::to_string(data_size) + ", Name:" + std::string(n.name) + ", Mime:" + std::string(n.mime) +
         " Compressed:" + (n.IsCompressed() ? "true" : "false");
}

}  // namespace kelp
