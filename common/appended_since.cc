#include "common/appended_since.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/idx_entry.h"
#include "common/needle.h"
#include "common/types.h"

namespace kelp {
namespace {

constexpr uint64_t kProbeWhole = 2 << 20;

// Reads exactly len bytes at offset, or says why not ("EOF" at the end).
Status ReadExactly(int fd, void* buf, size_t len, uint64_t offset) {
  size_t got = 0;
  while (got < len) {
    const ssize_t n = pread(fd, static_cast<char*>(buf) + got, len - got, off_t(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IOError(std::strerror(errno));
    if (n == 0) return Status::IOError(got == 0 ? "EOF" : "unexpected EOF");
    got += size_t(n);
  }
  return Status::Ok();
}

class Search {
 public:
  explicit Search(const VolumeFilesView& f) : f_(f), row_(IdxEntrySize(f.offset_bytes)) {}

  int64_t rows() const { return int64_t(f_.idx_size / uint64_t(row_)); }

  Result<uint64_t> OffsetOfRow(int64_t m) const {
    uint8_t buf[32];
    if (Status s = ReadExactly(f_.idx_fd, buf, size_t(row_), uint64_t(m) * uint64_t(row_)); !s.ok()) return s;
    return DecodeIdxEntry(buf, f_.offset_bytes).ByteOffset();
  }

  // The record's append_at_ns, after reading and checking it whole (Go's
  // readAppendAtNs parses the body, CRC included).
  Result<uint64_t> AppendAtNs(uint64_t offset) const {
    uint8_t head[kNeedleHeaderSize];
    if (offset + kNeedleHeaderSize > f_.dat_size)
      return Status::IOError("ReadNeedleHeader " + f_.dat_path + " [" + std::to_string(offset) + "," +
                             std::to_string(offset + kNeedleHeaderSize) + "): EOF");
    if (Status s = ReadExactly(f_.dat_fd, head, sizeof head, offset); !s.ok())
      return Status::IOError("ReadNeedleHeader " + f_.dat_path + " [" + std::to_string(offset) + "," +
                             std::to_string(offset + kNeedleHeaderSize) + "): " + s.message());
    const NeedleHeader h = ParseNeedleHeader(head);
    const uint64_t body_length = BodyLength(h.size, f_.version);
    auto body_error = [&](const std::string& why) {
      return Status::IOError("ReadNeedleBody offset " + std::to_string(offset) + ", bodyLength " + std::to_string(body_length) + ": " + why);
    };
    if (offset + kNeedleHeaderSize + body_length > f_.dat_size) return body_error("unexpected EOF");
    // Go reads and checks the whole record. A record up to one slice is read
    // so; a bigger one is checked in slices, its data CRC computed as it goes.
    if (body_length <= kProbeWhole) {
      std::string record(size_t(kNeedleHeaderSize + body_length), '\0');
      std::memcpy(record.data(), head, sizeof head);
      if (Status s = ReadExactly(f_.dat_fd, record.data() + kNeedleHeaderSize, size_t(body_length), offset + kNeedleHeaderSize); !s.ok())
        return body_error(s.message());
      ParsedNeedle n;
      if (Status s = ParseNeedle(reinterpret_cast<const uint8_t*>(record.data()), record.size(), h.size, f_.version, &n); !s.ok())
        return body_error(s.message());
      return n.append_at_ns;
    }
    const uint64_t body_at = offset + kNeedleHeaderSize;
    uint64_t data_at = body_at, data_size = h.size;
    if (f_.version != 1) {
      uint8_t len4[4];
      if (Status s = ReadExactly(f_.dat_fd, len4, sizeof len4, body_at); !s.ok()) return body_error(s.message());
      data_size = GetU32(len4);
      data_at = body_at + 4;
      if (data_size + 4 > h.size) return body_error("index out of range 1: needle data corrupted");
    }
    uint32_t crc = 0;
    std::string chunk;
    for (uint64_t at = 0; at < data_size;) {
      chunk.resize(size_t(std::min<uint64_t>(kProbeWhole, data_size - at)));
      if (Status s = ReadExactly(f_.dat_fd, chunk.data(), chunk.size(), data_at + at); !s.ok()) return body_error(s.message());
      crc = Crc32cUpdate(crc, chunk.data(), chunk.size());
      at += chunk.size();
    }
    uint8_t tail[kNeedleChecksumSize + kTimestampSize];
    const size_t tail_len = f_.version == 3 ? sizeof tail : size_t(kNeedleChecksumSize);
    if (Status s = ReadExactly(f_.dat_fd, tail, tail_len, body_at + h.size); !s.ok()) return body_error(s.message());
    const uint32_t stored = GetU32(tail);
    if (data_size > 0 && crc != stored && LegacyCrcValue(crc) != stored) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "invalid CRC for needle %llx (got %08x, want %08x), data on disk corrupted: needle data corrupted",
                    static_cast<unsigned long long>(h.id), crc, stored);
      return body_error(msg);
    }
    return f_.version == 3 ? GetU64(tail + kNeedleChecksumSize) : 0;
  }

  struct Neighbour {
    int64_t index = 0;
    uint64_t offset = 0;
    uint64_t ns = 0;
  };
  // The nearest row with a non-zero offset in direction `step` (Go's
  // readLeftNs/readRightNs: running off either end gives offset 0 and time 0).
  Result<Neighbour> NearestTimed(int64_t m, int step) const {
    Neighbour n{m, 0, 0};
    while (n.offset == 0) {
      n.index += step;
      if (n.index < 0 || n.index >= rows()) return n;
      auto off = OffsetOfRow(n.index);
      // Go's texts name the sides the other way round.
      if (!off.ok()) return Status::IOError(std::string(step > 0 ? "read left entry at " : "read right entry at ") +
                                            std::to_string(n.index) + ": " + off.status().message());
      n.offset = off.value();
    }
    auto ns = AppendAtNs(n.offset);
    if (!ns.ok()) return ns.status();
    n.ns = ns.value();
    return n;
  }

 private:
  const VolumeFilesView& f_;
  const int row_;
};

}  // namespace

namespace {

Result<AppendedAfter> SearchRows(const VolumeFilesView& files, uint64_t since_ns) {
  const int row = IdxEntrySize(files.offset_bytes);
  if (files.idx_size % uint64_t(row) != 0)
    return Status::Corruption("unexpected file " + files.idx_path + " size: " + std::to_string(files.idx_size));
  Search search(files);
  const int64_t count = search.rows();
  const AppendedAfter none{true, 0};
  int64_t lo = 0, hi = count;
  while (lo < hi) {
    const int64_t m = (lo + hi) / 2;
    auto offset = search.OffsetOfRow(m);
    if (!offset.ok()) return Status::IOError("read entry " + std::to_string(m) + ": " + offset.status().message());
    if (offset.value() == 0) {
      auto left = search.NearestTimed(m, -1);
      if (!left.ok()) return left.status();
      auto right = search.NearestTimed(m, +1);
      if (!right.ok()) return right.status();
      if (right.value().ns <= since_ns) {
        lo = right.value().index;
        if (lo == count) return none;
        continue;
      }
      if (since_ns < left.value().ns) {
        hi = left.value().index + 1;
        continue;
      }
      return AppendedAfter{false, right.value().offset};
    }
    auto ns = search.AppendAtNs(offset.value());
    if (!ns.ok())
      return Status::IOError("read entry " + std::to_string(m) + " offset " + std::to_string(offset.value()) + ": " + ns.status().message());
    if (ns.value() <= since_ns) lo = m + 1;
    else hi = m;
  }
  if (lo == count) return none;
  auto offset = search.OffsetOfRow(lo);
  if (!offset.ok()) return offset.status();
  return AppendedAfter{false, offset.value()};
}

}  // namespace

Result<AppendedAfter> FindFirstAppendedAfter(const VolumeFilesView& files, uint64_t since_ns) {
  const uint64_t first_record = files.first_record;
  auto found = SearchRows(files, since_ns);
  // Go can end on a row with offset 0 and then reads from the superblock;
  // kelp starts at the first record instead.
  if (found.ok() && !found.value().nothing_newer && found.value().offset < first_record) return AppendedAfter{false, first_record};
  return found;
}

Status ScanRecordsFrom(const VolumeFilesView& files, uint64_t from, size_t slice_limit,
                       const std::function<Status(const RecordSlice&)>& visit, uint64_t* last_append_at_ns,
                       const std::function<bool(uint64_t offset, std::string_view header)>& wanted) {
  if (slice_limit == 0) return Status::Invalid("slice limit 0");
  uint64_t offset = from;
  std::string head(kNeedleHeaderSize, '\0');
  std::string slice;
  while (offset + kNeedleHeaderSize <= files.dat_size) {
    if (Status s = ReadExactly(files.dat_fd, head.data(), head.size(), offset); !s.ok())
      return Status::IOError((offset == from ? "cannot read " + files.dat_path + " at offset " : std::string("cannot read needle header at offset ")) +
                             std::to_string(offset) + ": " + s.message());
    const NeedleHeader h = ParseNeedleHeader(reinterpret_cast<const uint8_t*>(head.data()));
    const uint64_t body_length = BodyLength(h.size, files.version);
    const uint64_t end = offset + kNeedleHeaderSize + body_length;
    if (end > files.dat_size || end < offset)
      return Status::Corruption("cannot read needle header at offset " + std::to_string(offset) + ": record of " +
                                std::to_string(end - offset) + " bytes runs past the end of the data at " + std::to_string(files.dat_size));
    if (wanted && !wanted(offset, head)) {
      offset = end;
      continue;
    }
    RecordSlice r;
    r.offset = offset;
    r.header = head;
    r.body_length = body_length;
    // v3's append time sits 4 bytes after the size field's bytes; its bytes
    // are gathered from whichever slices hold them.
    const uint64_t ts_at = uint64_t(h.size) + kNeedleChecksumSize;
    uint8_t ts[kTimestampSize] = {0};
    uint64_t at = 0;
    do {
      const size_t take = size_t(std::min<uint64_t>(slice_limit, body_length - at));
      slice.resize(take);
      if (Status s = ReadExactly(files.dat_fd, slice.data(), take, offset + kNeedleHeaderSize + at); !s.ok() && take > 0)
        return Status::IOError("cannot read needle body at offset " + std::to_string(offset) + ": " + s.message());
      const uint64_t lo = std::max(ts_at, at), hi = std::min(ts_at + kTimestampSize, at + take);
      if (files.version == 3 && lo < hi) std::memcpy(ts + (lo - ts_at), slice.data() + (lo - at), size_t(hi - lo));
      r.body = slice;
      r.body_at = at;
      at += take;
      r.last = at >= body_length;
      if (Status s = visit(r); !s.ok()) return s;
    } while (at < body_length);
    *last_append_at_ns = files.version == 3 ? GetU64(ts) : 0;
    offset = end;
  }
  return Status::Ok();
}

}  // namespace kelp
