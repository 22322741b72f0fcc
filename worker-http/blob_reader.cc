#include "worker-http/blob_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/log.h"
#include "worker-http/file_mapping.h"

namespace kelp {

namespace {

// The record [at, at + total) as a view of a mapping of the .dat, parsed and
// CRC checked there: no copy of it is made in the worker. Null `mapping`:
// the caller reads it with pread instead.
ReadOutcome ReadMappedRecord(const VolumeView& v, std::shared_ptr<const FileMapping> mapping, uint64_t total, uint32_t size,
                             StoredBlob* out, std::string* error) {
  Status s;
  const bool readable = TouchMapped([&] {
    s = ParseNeedle(reinterpret_cast<const uint8_t*>(mapping->data()), total, size, v.version, &out->needle);
  });
  if (!readable) {
    out->needle = ParsedNeedle{};
    *error = "needle record beyond the end of the .dat";
    return ReadOutcome::kError;
  }
  if (!s.ok()) {
    out->needle = ParsedNeedle{};  // its views would outlive the mapping
    *error = s.message();
    return ReadOutcome::kError;
  }
  const char* data = mapping->data();
  out->record = http::ByteBuffer::View(std::move(mapping), data, total);
  return ReadOutcome::kOk;
}

// The whole record [at, at + total), parsed and CRC checked: mapped when it is
// large enough, else (or when no mapping can be made) copied out with pread.
ReadOutcome ReadWholeRecord(const VolumeView& v, uint64_t at, uint64_t total, uint32_t size, StoredBlob* out, std::string* error) {
  if (total >= kMappedReadMin) {
    std::string map_error;
    if (auto mapping = FileMapping::Map(v.dat_fd, at, total, &map_error))
      return ReadMappedRecord(v, std::move(mapping), total, size, out, error);
    KLOG_WARN("reading a record by pread instead: %s", map_error.c_str());
  }
  out->record = http::ByteBuffer::Uninitialized(total);
  if (Status s = PreadFull(v.dat_fd, out->record.data(), total, off_t(at)); !s.ok()) {
    *error = s.message();
    return ReadOutcome::kError;
  }
  Status s = ParseNeedle(reinterpret_cast<const uint8_t*>(out->record.data()), total, size, v.version, &out->needle);
  if (!s.ok()) {
    *error = s.message();
    return ReadOutcome::kError;
  }
  return ReadOutcome::kOk;
}

}  // namespace

ReadOutcome ReadBlob(const VolumeView& v, NeedleId id, bool read_deleted, StoredBlob* out, std::string* error) {
  const auto entry = v.segment.Lookup(id);
  if (!entry || entry->offset_units == 0) return ReadOutcome::kNotFound;
  if (entry->deleted && !read_deleted) return ReadOutcome::kDeleted;
  const uint64_t at = entry->offset_units * kNeedlePaddingSize;
  uint8_t head[kNeedleHeaderSize + 4];
  const size_t head_len = v.version == 1 ? kNeedleHeaderSize : sizeof head;
  if (Status s = PreadFull(v.dat_fd, head, head_len, off_t(at)); !s.ok()) {
    *error = s.message();
    return ReadOutcome::kError;
  }
  const NeedleHeader h = ParseNeedleHeader(head);
  const uint32_t size = entry->size_known ? entry->size : h.size;
  // Go checks the size only: a record filed under another key (WriteNeedleBlob) reads as itself.
  if (h.size != size) {
    *error = "size mismatch: entry not found";
    return ReadOutcome::kError;
  }
  const uint64_t total = ActualSize(size, v.version);
  const uint64_t data_size = (v.version == 1 || size == 0) ? size : GetU32(head + kNeedleHeaderSize);
  if (size <= kWholeReadLimit) return ReadWholeRecord(v, at, total, size, out, error);
  // Large: read everything but the data, stream the data later.
  const uint64_t data_at = at + kNeedleHeaderSize + (v.version == 1 ? 0 : 4);
  if (v.version == 1 || data_size + 4 > size) {
    *error = "index out of range 1: needle data corrupted";
    return ReadOutcome::kError;
  }
  const uint64_t meta_len = size - 4 - data_size;  // flags .. pairs
  const uint64_t tail_len = total - kNeedleHeaderSize - size;  // crc, timestamp, padding
  out->record = http::ByteBuffer::Uninitialized(kNeedleHeaderSize + meta_len + tail_len);
  std::memcpy(out->record.data(), head, kNeedleHeaderSize);
  auto* meta = reinterpret_cast<uint8_t*>(out->record.data()) + kNeedleHeaderSize;
  if (Status s = PreadFull(v.dat_fd, meta, meta_len + tail_len, off_t(data_at + data_size)); !s.ok()) {
    *error = s.message();
    return ReadOutcome::kError;
  }
  if (Status s = ParseRecordWithoutData(v.version, data_size, out); !s.ok()) {
    *error = s.message();
    return ReadOutcome::kError;
  }
  out->data_offset = data_at;
  // Go reads a compressed needle or a chunk manifest whole at any size; one
  // whose data fits the whole-read limit is read whole here too, so that it
  // is inflated or parsed as before rather than streamed as stored.
  if ((out->needle.IsCompressed() || out->needle.IsChunkManifest()) && data_size <= kWholeReadLimit) {
    *out = StoredBlob{};
    return ReadWholeRecord(v, at, total, size, out, error);
  }
  return ReadOutcome::kOk;
}

Status ParseRecordWithoutData(uint8_t version, uint64_t data_size, StoredBlob* out) {
  if (Status s = ParseNeedleWithoutData(reinterpret_cast<const uint8_t*>(out->record.data()), out->record.size, version, data_size, &out->needle);
      !s.ok())
    return s;
  out->streamed = true;
  out->data_size = data_size;
  return Status::Ok();
}

namespace {

// How much of a streamed needle one mapping covers.
constexpr uint64_t kStreamWindow = 16 << 20;

class DataStream : public http::BodySource {
 public:
  // Owns a duplicate of the volume's fd: the volume may be detached (deleted,
  // unmounted) while the stream is still being sent.
  // `mapped`, when given, maps [start, start + length) already.
  DataStream(int fd, uint64_t start, uint64_t length, bool verify, uint32_t expected_crc, size_t chunk,
             std::shared_ptr<const FileMapping> mapped)
      : fd_(fcntl(fd, F_DUPFD_CLOEXEC, 0)), pos_(start), left_(length), length_(length), verify_(verify), expected_(expected_crc), chunk_(chunk),
        window_(std::move(mapped)), window_at_(start) {
    if (fd_ < 0) failed_ = true;
  }
  ~DataStream() override {
    if (fd_ >= 0) close(fd_);
  }
  DataStream(const DataStream&) = delete;
  DataStream& operator=(const DataStream&) = delete;
  uint64_t Length() const override { return length_; }
  bool Next(std::string* out) override {
    size_t n = 0;
    http::ByteBuffer buf;
    if (!NextBytes(&buf, &n)) return false;
    // The piece may be a view of a mapping: copied under the guard.
    if (!TouchMapped([&] { out->assign(buf.data(), n); })) {
      KLOG_ERROR("streaming needle data: bytes at %llu are beyond the end of the .dat", static_cast<unsigned long long>(pos_ - n));
      failed_ = true;
      return false;
    }
    return true;
  }
  bool ProvidesBytes() const override { return true; }
  // The last piece is held back until the whole data's CRC is known: a
  // corrupt needle never reaches a client complete (the connection closes).
  // A long stream is sent from mappings of the .dat, one window at a time, and
  // each piece is checked right before it is handed to the socket, while it
  // is still in the CPU's cache; a short one is copied out with pread.
  bool NextBytes(http::ByteBuffer* out, size_t* len) override {
    if (left_ == 0 || fd_ < 0 || failed_) return false;
    const size_t n = size_t(std::min<uint64_t>({left_, chunk_, kStreamWindow}));
    if (length_ >= kMappedReadMin && !map_failed_) {
      if (!window_ || pos_ + n > window_at_ + window_->size()) {
        std::string error;
        window_at_ = pos_;
        window_ = FileMapping::Map(fd_, pos_, std::min<uint64_t>(left_, kStreamWindow), &error);
        if (!window_) {
          // No mapping (the process's map count, address space): by pread from here on.
          KLOG_WARN("streaming needle data by pread instead: %s", error.c_str());
          map_failed_ = true;
        }
      }
    }
    if (window_ && !map_failed_) {
      const char* piece = window_->data() + (pos_ - window_at_);
      if (verify_ && !TouchMapped([&] { crc_ = Crc32cUpdate(crc_, piece, n); })) {
        KLOG_ERROR("streaming needle data: bytes [%llu, %llu) are beyond the end of the .dat", static_cast<unsigned long long>(pos_),
                   static_cast<unsigned long long>(pos_ + n));
        failed_ = true;
        return false;
      }
      *out = http::ByteBuffer::View(window_, piece, n);
    } else {
      *out = http::ByteBuffer::Uninitialized(n);
      if (!PreadFull(fd_, out->data(), n, off_t(pos_)).ok()) {
        failed_ = true;
        return false;
      }
      if (verify_) crc_ = Crc32cUpdate(crc_, out->data(), n);
    }
    pos_ += n;
    left_ -= n;
    if (left_ == 0 && verify_ && !CrcMatches(crc_, expected_)) {
      KLOG_ERROR("invalid CRC while streaming needle data (got %08x, want %08x)", crc_, expected_);
      failed_ = true;
      return false;
    }
    *len = n;
    return true;
  }
  bool Failed() const override { return failed_; }

 private:
  int fd_;
  uint64_t pos_, left_, length_;
  bool verify_;
  uint32_t expected_, crc_ = 0;
  size_t chunk_;
  bool failed_ = false;
  bool map_failed_ = false;
  std::shared_ptr<const FileMapping> window_;  // the mapping the next piece comes from
  uint64_t window_at_ = 0;                     // the file offset window_ starts at
};

}  // namespace

Status CopyBlobData(int fd, const StoredBlob& blob, uint64_t limit, std::string* out) {
  if (!blob.streamed) {
    out->assign(blob.needle.data);
    return Status::Ok();
  }
  if (blob.data_size > limit) return Status::TooLarge("needle data of " + std::to_string(blob.data_size) + " bytes");
  out->resize(blob.data_size);
  return PreadFull(fd, out->data(), out->size(), off_t(blob.data_offset));
}

std::unique_ptr<http::BodySource> StreamBlobData(int fd, const StoredBlob& b, uint64_t offset, uint64_t length, size_t chunk) {
  const bool whole = offset == 0 && length == b.data_size;
  return std::make_unique<DataStream>(fd, b.data_offset + offset, length, whole, b.needle.checksum, chunk, nullptr);
}

Result<CheckedData> MapAndCheckData(int fd, const StoredBlob& b) {
  CheckedData out;
  std::string error;
  out.mapping = FileMapping::Map(fd, b.data_offset, b.data_size, &error);
  if (!out.mapping) return Status::IOError(error);
  if (!TouchMapped([&] { out.crc = Crc32cUpdate(0, out.mapping->data(), size_t(b.data_size)); }))
    return Status::IOError("needle data beyond the end of the .dat");
  return out;
}

std::unique_ptr<http::BodySource> StreamCheckedData(int fd, const StoredBlob& b, CheckedData checked, size_t chunk) {
  return std::make_unique<DataStream>(fd, b.data_offset, b.data_size, false, b.needle.checksum, chunk, std::move(checked.mapping));
}

bool CrcMatches(uint32_t crc, uint32_t expected) { return crc == expected || LegacyCrcValue(crc) == expected; }

}  // namespace kelp
