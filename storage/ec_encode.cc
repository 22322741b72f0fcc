#include "storage/ec_encode.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "common/crc32c.h"
#include "common/idx_entry.h"
#include "common/throttle.h"

namespace kelp {
namespace {

// Work unit: every shard advances this many bytes per step. It divides the
// 1 MiB granularity of block sizes and the checksum block.
constexpr uint64_t kStep = 1ull << 20;
// Every shard's written pages go to the disk in runs of this size while the
// encode goes on, so the final sync finds little left and the page cache
// never fills with the job's output.
constexpr uint64_t kWriteBackRun = 8ull << 20;

}  // namespace

Result<uint64_t> WriteSortedIndex(int idx_fd, uint64_t idx_end, int offset_bytes, int ecx_fd, Env* env) {
  // Every row, then sorted by id keeping file order among equal ids: the
  // last row of each id decides. A flat array costs far less than a map.
  std::vector<IdxEntry> rows;
  rows.reserve(size_t(idx_end) / size_t(IdxEntrySize(offset_bytes)));
  Status walked = ForEachIdxEntry(idx_fd, idx_end, offset_bytes, [&](const IdxEntry& e) { rows.push_back(e); });
  if (!walked.ok()) return walked;
  std::stable_sort(rows.begin(), rows.end(), [](const IdxEntry& a, const IdxEntry& b) { return a.id < b.id; });
  const size_t row = size_t(IdxEntrySize(offset_bytes));
  std::string out;
  out.reserve(std::min<size_t>(rows.size(), 1 << 16) * row);
  uint64_t at = 0, written = 0;
  for (size_t i = 0; i < rows.size(); i++) {
    const IdxEntry& e = rows[i];
    if ((i + 1 < rows.size() && rows[i + 1].id == e.id) || e.IsDeleted()) continue;  // superseded, or the key's last word is a deletion
    written++;
    const size_t n = out.size();
    out.resize(n + row);
    EncodeIdxEntry(e, offset_bytes, reinterpret_cast<uint8_t*>(out.data() + n));
    if (out.size() >= (1u << 20)) {
      if (Status s = EnvPwriteFull(env, ecx_fd, out.data(), out.size(), off_t(at)); !s.ok()) return s;
      at += out.size();
      out.clear();
    }
  }
  if (!out.empty())
    if (Status s = EnvPwriteFull(env, ecx_fd, out.data(), out.size(), off_t(at)); !s.ok()) return s;
  return written;
}

Result<std::vector<std::vector<uint32_t>>> EncodeUniformShards(int dat_fd, uint64_t dat_size, uint64_t block, const RsCodec& codec,
                                                               const std::vector<int>& shard_fds, const EcEncodeOptions& options, Env* env) {
  const int data = codec.data(), total = codec.total();
  if (int(shard_fds.size()) != total) return Status::Invalid("expected " + std::to_string(total) + " shard files, got " + std::to_string(shard_fds.size()));
  if (block == 0 || block % kStep != 0) return Status::Invalid("block size " + std::to_string(block) + " is not a multiple of 1 MiB");
  if (dat_size > block * uint64_t(data)) return Status::Invalid("a .dat of " + std::to_string(dat_size) + " bytes does not fit blocks of " + std::to_string(block));

  // Page-aligned, so that shard files opened for direct I/O take them as they are.
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t, Free>> buffers;
  for (int s = 0; s < total; s++) {
    void* p = nullptr;
    if (posix_memalign(&p, 4096, kStep) != 0) return Status::IOError("out of memory for the encode's buffers");
    buffers.emplace_back(static_cast<uint8_t*>(p));
  }
  std::vector<const uint8_t*> in;
  std::vector<uint8_t*> out;
  for (int i = 0; i < data; i++) in.push_back(buffers[size_t(i)].get());
  for (int p = data; p < total; p++) out.push_back(buffers[size_t(p)].get());
  std::vector<std::vector<uint32_t>> crcs(static_cast<size_t>(total));
  std::vector<uint32_t> running(static_cast<size_t>(total), 0);
  Throttle throttle(options.bytes_per_second);
  uint64_t encoded = 0;

  for (uint64_t pos = 0; pos < block; pos += kStep) {
    const uint64_t n = std::min(kStep, block - pos);
    for (int i = 0; i < data; i++) {
      uint8_t* buf = buffers[size_t(i)].get();
      const uint64_t from = uint64_t(i) * block + pos;  // .dat offset of this piece
      const uint64_t have = from >= dat_size ? 0 : std::min(n, dat_size - from);
      if (have > 0) {
        if (Status s = EnvPreadFull(env, dat_fd, buf, size_t(have), off_t(from)); !s.ok()) return s;
        throttle.Add(have);
        encoded += have;
      }
      std::memset(buf + have, 0, size_t(n - have));
    }
    codec.Encode(in.data(), out.data(), size_t(n));
    for (int s = 0; s < total; s++) {
      const uint8_t* buf = buffers[size_t(s)].get();
      if (Status st = EnvPwriteFull(env, shard_fds[size_t(s)], buf, size_t(n), off_t(pos)); !st.ok()) return st;
      running[size_t(s)] = Crc32cUpdate(running[size_t(s)], buf, size_t(n));
      if ((pos + n) % kWriteBackRun == 0) env->StartWriteBack(shard_fds[size_t(s)], off_t(pos + n - kWriteBackRun), off_t(kWriteBackRun));
      // A checksum block ends every kEcChecksumBlock bytes and at the shard's end.
      if ((pos + n) % kEcChecksumBlock == 0 || pos + n == block) {
        crcs[size_t(s)].push_back(running[size_t(s)]);
        running[size_t(s)] = 0;
      }
    }
    if (options.progress && !options.progress(encoded)) return Status::IOError("interrupted");
  }
  return crcs;
}

}  // namespace kelp
