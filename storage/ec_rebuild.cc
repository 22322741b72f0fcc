#include "storage/ec_rebuild.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/throttle.h"

namespace kelp {
namespace {

constexpr uint64_t kStep = 1ull << 20;  // Go's rebuild work unit
constexpr uint64_t kReadAhead = 8ull << 20;
constexpr uint64_t kDecodeStep = 4ull << 20;

// A page-aligned buffer (null when it cannot be had).
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t n) {
    void* p = nullptr;
    if (posix_memalign(&p, 4096, n) == 0) p_ = static_cast<uint8_t*>(p);
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(AlignedBuffer&&) = delete;
  ~AlignedBuffer() { std::free(p_); }
  uint8_t* data() const { return p_; }

 private:
  uint8_t* p_ = nullptr;
};

}  // namespace

Result<EcShardChecksumLists> RebuildShards(const RsCodec& codec, const std::map<int, int>& present, const std::map<int, int>& missing,
                                           uint64_t shard_size, uint64_t checksum_block, const EcJobOptions& options, Env* env) {
  if (!missing.empty() && int(present.size()) < codec.data())
    return Status::Invalid("not enough shards to rebuild: found " + std::to_string(present.size()) + " shards, need at least " +
                           std::to_string(codec.data()) + " (data shards)");
  if (checksum_block != 0 && (checksum_block < kStep || (checksum_block & (checksum_block - 1)) != 0))
    return Status::Invalid("checksum block " + std::to_string(checksum_block) + " is not a power of two of at least 1 MiB");
  const bool checksums = checksum_block != 0;
  if (missing.empty() && !checksums) return EcShardChecksumLists{};
  // The first data() present shards are enough for the code (it is MDS);
  // the others are read only to be checksummed.
  std::vector<int> read, wanted;
  std::vector<int> in_fds, out_fds;
  for (const auto& [shard, fd] : present) {
    if (!checksums && int(read.size()) == codec.data()) break;
    read.push_back(shard), in_fds.push_back(fd);
  }
  for (const auto& [shard, fd] : missing) wanted.push_back(shard), out_fds.push_back(fd);
  const std::vector<int> have(read.begin(), read.begin() + std::min<ptrdiff_t>(ptrdiff_t(read.size()), codec.data()));
  // Page-aligned buffers: the job may write the outputs with O_DIRECT.
  std::vector<AlignedBuffer> in, out;
  for (size_t i = 0; i < read.size(); ++i) in.emplace_back(kStep);
  for (size_t j = 0; j < wanted.size(); ++j) out.emplace_back(kStep);
  for (const AlignedBuffer& b : in)
    if (!b.data()) return Status::IOError("out of memory for the rebuild's buffers");
  for (const AlignedBuffer& b : out)
    if (!b.data()) return Status::IOError("out of memory for the rebuild's buffers");
  std::vector<const uint8_t*> in_ptrs;
  std::vector<uint8_t*> out_ptrs;
  for (auto& b : in) in_ptrs.push_back(b.data());
  for (auto& b : out) out_ptrs.push_back(b.data());
  // Running CRCs: inputs first, in `read` order, then outputs, in `wanted` order.
  std::vector<uint32_t> running(read.size() + wanted.size(), 0);
  EcShardChecksumLists lists;
  Throttle throttle(options.bytes_per_second);
  for (uint64_t at = 0; at < shard_size; at += kStep) {
    const size_t len = size_t(std::min(kStep, shard_size - at));
    // The inputs are read one after another: ask for the next window of
    // every one now, so the disk works on all of them while this step runs.
    if (at % kReadAhead == 0)
      for (int fd : in_fds) posix_fadvise(fd, off_t(at + kStep), off_t(kReadAhead), POSIX_FADV_WILLNEED);
    for (size_t i = 0; i < read.size(); ++i) {
      size_t got = 0;
      if (Status s = EnvPreadUpTo(env, in_fds[i], in[i].data(), len, off_t(at), &got); !s.ok()) return s;
      if (got != len)
        return Status::IOError("ec rebuild short read shard " + std::to_string(read[i]) + " at " + std::to_string(at) + ": got " +
                               std::to_string(got) + " want " + std::to_string(len));
    }
    throttle.Add(len * read.size());
    if (!wanted.empty()) {
      if (Status s = codec.Reconstruct(have, in_ptrs.data(), wanted, out_ptrs.data(), len); !s.ok()) return s;
      for (size_t j = 0; j < wanted.size(); ++j)
        if (Status s = EnvPwriteFull(env, out_fds[j], out[j].data(), len, off_t(at)); !s.ok()) return s;
    }
    if (checksums) {
      for (size_t i = 0; i < read.size(); ++i) running[i] = Crc32cUpdate(running[i], in[i].data(), len);
      for (size_t j = 0; j < wanted.size(); ++j) running[read.size() + j] = Crc32cUpdate(running[read.size() + j], out[j].data(), len);
      // Steps never straddle a block: both are powers of two, the block the larger.
      if ((at + len) % checksum_block == 0 || at + len == shard_size) {
        for (size_t i = 0; i < running.size(); ++i) {
          lists[i < read.size() ? read[i] : wanted[i - read.size()]].push_back(running[i]);
          running[i] = 0;
        }
      }
    }
    if (options.progress && !options.progress(at + len)) return Status::Unavailable("interrupted");
  }
  for (size_t j = 0; j < wanted.size(); ++j)
    if (env->Fdatasync(out_fds[j]) != 0) return Status::IOError("sync shard " + std::to_string(wanted[j]) + ": " + GoErrno(errno));
  return lists;
}

Status WriteDatFromShards(const EcLayout& layout, uint64_t shard_dat_size, const std::vector<int>& data_fds, uint64_t dat_size,
                          int dat_fd, const EcJobOptions& options, Env* env) {
  if (int(data_fds.size()) != layout.data_shards) return Status::Invalid("decode needs every data shard");
  std::vector<uint8_t> buf(kDecodeStep);
  Throttle throttle(options.bytes_per_second);
  for (uint64_t at = 0; at < dat_size; at += kDecodeStep) {
    const uint64_t len = std::min(kDecodeStep, dat_size - at);
    uint64_t filled = 0;
    for (const EcInterval& piece : LocateEcRange(layout, shard_dat_size, at, len)) {
      if (piece.shard < 0 || piece.shard >= layout.data_shards) return Status::Corruption("decode: a range outside the data shards");
      size_t got = 0;
      if (Status s = EnvPreadUpTo(env, data_fds[size_t(piece.shard)], buf.data() + filled, size_t(piece.size), off_t(piece.shard_offset), &got);
          !s.ok())
        return s;
      if (got != piece.size)
        return Status::IOError("copy block of shard " + std::to_string(piece.shard) + " at " + std::to_string(piece.shard_offset) +
                               ": short read (" + std::to_string(got) + " of " + std::to_string(piece.size) + " bytes)");
      filled += piece.size;
    }
    if (filled != len) return Status::Corruption("decode: the layout does not cover the range");
    if (Status s = EnvPwriteFull(env, dat_fd, buf.data(), size_t(len), off_t(at)); !s.ok()) return s;
    throttle.Add(len);
    if (options.progress && !options.progress(at + len)) return Status::Unavailable("interrupted");
  }
  if (env->Fdatasync(dat_fd) != 0) return Status::IOError("sync .dat: " + GoErrno(errno));
  return Status::Ok();
}

}  // namespace kelp
