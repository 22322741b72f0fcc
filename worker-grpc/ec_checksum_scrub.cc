#include "worker-grpc/ec_checksum_scrub.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "common/crc32c.h"
#include "common/file_util.h"
#include "common/rs_codec.h"

namespace kelp {
namespace {

constexpr size_t kStep = 1 << 20;

// Reads up to `len` bytes at `offset`; `*got` is what arrived. Go's ReadAt
// texts: "EOF" for a short file, the errno's text otherwise.
bool ReadAt(int fd, uint8_t* buf, size_t len, off_t offset, size_t* got, std::string* error) {
  *got = 0;
  while (*got < len) {
    const ssize_t n = pread(fd, buf + *got, len - *got, offset + off_t(*got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = GoErrno(errno);
      return false;
    }
    if (n == 0) {
      *error = "EOF";
      return false;
    }
    *got += size_t(n);
  }
  return true;
}

std::string Prefix(uint32_t vid, int shard) { return "ec volume " + std::to_string(vid) + " shard " + std::to_string(shard) + ": "; }

// One shard against its entry; false when it is broken.
bool CheckShard(uint32_t vid, const LocalEcShard& s, const EcShardChecksumEntry& entry, uint64_t block, std::vector<std::string>* errors) {
  if (s.size != entry.covered_size) {
    errors->push_back(Prefix(vid, s.shard) + "size " + std::to_string(s.size) + " != covered_size " + std::to_string(entry.covered_size) +
                      " (truncated or extended)");
    return false;
  }
  std::vector<uint8_t> buf(std::min<uint64_t>(block, kStep));
  bool clean = true;
  uint64_t offset = 0;
  for (size_t i = 0; i < entry.block_crcs.size(); ++i) {
    const uint64_t length = std::min<uint64_t>(block, uint64_t(entry.covered_size) - offset);
    uint32_t crc = 0;
    for (uint64_t done = 0; done < length;) {
      const size_t want = size_t(std::min<uint64_t>(buf.size(), length - done));
      size_t got = 0;
      std::string why;
      if (!ReadAt(s.fd, buf.data(), want, off_t(offset + done), &got, &why)) {
        errors->push_back(Prefix(vid, s.shard) + "read block " + std::to_string(i) + " at " + std::to_string(offset) + ": " + why +
                          " (got " + std::to_string(done + got) + "/" + std::to_string(length) + ")");
        return false;
      }
      crc = Crc32cUpdate(crc, buf.data(), want);
      done += want;
    }
    if (crc != entry.block_crcs[i]) {
      errors->push_back(Prefix(vid, s.shard) + "checksum mismatch at block " + std::to_string(i) + " (offset " + std::to_string(offset) + ")");
      clean = false;
    }
    offset += length;
  }
  return clean;
}

// Rebuilds `target` from `data` clean shards and compares it with its bytes:
// true when they differ (the shard is corrupt), false when they all match
// (the sidecar is stale). Offsets in errors are the checksum block's, as Go
// reads a block at a time.
Result<bool> ReedSolomonDisagrees(const LocalEcShard& target, const std::vector<const LocalEcShard*>& clean, const RsCodec& codec,
                                  uint64_t block) {
  std::vector<int> have;
  for (size_t i = 0; i < size_t(codec.data()); ++i) have.push_back(clean[i]->shard);
  std::vector<std::vector<uint8_t>> in(have.size(), std::vector<uint8_t>(kStep));
  std::vector<uint8_t> rebuilt(kStep), disk(kStep);
  std::vector<const uint8_t*> in_ptrs;
  for (auto& b : in) in_ptrs.push_back(b.data());
  uint8_t* out = rebuilt.data();
  for (uint64_t offset = 0; offset < uint64_t(target.size); offset += block) {
    const uint64_t length = std::min<uint64_t>(block, uint64_t(target.size) - offset);
    for (uint64_t done = 0; done < length; done += kStep) {
      const size_t n = size_t(std::min<uint64_t>(kStep, length - done));
      for (size_t i = 0; i < have.size(); ++i) {
        size_t got = 0;
        std::string why;
        if (!ReadAt(clean[i]->fd, in[i].data(), n, off_t(offset + done), &got, &why))
          return Status::IOError("read clean shard " + std::to_string(have[i]) + " at " + std::to_string(offset) + ": " + why + " (got " +
                                 std::to_string(done + got) + "/" + std::to_string(length) + ")");
      }
      if (Status s = codec.Reconstruct(have, in_ptrs.data(), {target.shard}, &out, n); !s.ok())
        return Status::IOError("reconstruct: " + s.message());
      size_t got = 0;
      std::string why;
      if (!ReadAt(target.fd, disk.data(), n, off_t(offset + done), &got, &why))
        return Status::IOError("read target shard " + std::to_string(target.shard) + " at " + std::to_string(offset) + ": " + why);
      if (!std::equal(disk.begin(), disk.begin() + ptrdiff_t(n), rebuilt.begin())) return true;
    }
  }
  return false;
}

}  // namespace

EcChecksumScrub ScrubEcShardChecksums(uint32_t vid, EcsumState state, const EcChecksumManifest& manifest,
                                      const std::vector<LocalEcShard>& shards, int data, int parity) {
  EcChecksumScrub out;
  if (state == EcsumState::kOff) return out;
  const std::string volume = "ec volume " + std::to_string(vid);
  if (state == EcsumState::kInvalid) {
    out.errors.push_back(volume + ": bitrot sidecar is malformed/unverifiable (sidecar integrity)");
    return out;
  }
  const uint64_t block = manifest.block_size;
  std::vector<const LocalEcShard*> broken;
  std::set<int> wrong_size;  // broken whatever Reed-Solomon says of the bytes they have
  for (const LocalEcShard& s : shards) {
    const EcShardChecksumEntry* entry = manifest.Find(uint32_t(s.shard));
    if (!entry) {
      out.errors.push_back(volume + ": no checksum entry for local shard " + std::to_string(s.shard));
      continue;
    }
    if (s.size != entry->covered_size) wrong_size.insert(s.shard);
    if (!CheckShard(vid, s, *entry, block, &out.errors)) broken.push_back(&s);
  }
  if (broken.size() > size_t(parity)) {
    out.errors = {volume + ": " + std::to_string(broken.size()) + "/" + std::to_string(shards.size()) + " local shards mismatch (> parity " +
                  std::to_string(parity) + "): suspect stale sidecar, not flagging shard corruption"};
    return out;
  }
  std::set<int> broken_ids;
  for (const LocalEcShard* s : broken) broken_ids.insert(s->shard);
  std::vector<const LocalEcShard*> clean;
  for (const LocalEcShard& s : shards)
    if (!broken_ids.count(s.shard)) clean.push_back(&s);
  auto codec = RsCodec::Make(data, parity);
  if (!broken.empty() && clean.size() >= size_t(data) && codec.ok()) {
    std::vector<const LocalEcShard*> confirmed;
    for (const LocalEcShard* s : broken) {
      if (wrong_size.count(s->shard)) {  // Go would compare the bytes it has, and clear a shard cut at a block's end
        confirmed.push_back(s);
        continue;
      }
      auto disagrees = ReedSolomonDisagrees(*s, clean, codec.value(), block);
      if (!disagrees.ok()) {
        out.errors.push_back(Prefix(vid, s->shard) + "RS arbitration failed: " + disagrees.status().message());
        confirmed.push_back(s);
      } else if (disagrees.value()) {
        confirmed.push_back(s);
      } else {
        out.errors.push_back(Prefix(vid, s->shard) +
                             "sidecar mismatch but Reed-Solomon confirms the bytes are correct: stale sidecar, not flagging shard");
      }
    }
    broken = confirmed;
  }
  for (const LocalEcShard* s : broken) out.broken.push_back(s->shard);
  std::sort(out.broken.begin(), out.broken.end());
  return out;
}

}  // namespace kelp
