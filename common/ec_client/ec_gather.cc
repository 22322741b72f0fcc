#include "common/ec_client/ec_gather.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/ec_layout.h"
#include "common/file_util.h"
#include "common/go_quote.h"
#include "common/rs_codec.h"

namespace kelp {
namespace {

// A lost piece is rebuilt in steps of at most this many bytes, so a rebuild
// holds `data` such steps of other shards, whatever the piece's size.
constexpr uint64_t kRebuildStep = 256 << 10;

// The shard pieces of record bytes [offset, offset + length); empty when the
// layout does not hold all of them.
std::vector<EcInterval> RecordIntervals(const kelp_internal::EcNeedleLocated& w, uint64_t offset, uint64_t length) {
  const EcLayout layout{int(w.data_shards()), w.large_block(), w.small_block()};
  std::vector<EcInterval> intervals = LocateEcRange(layout, w.shard_dat_size(), w.offset() + offset, length);
  uint64_t covered = 0;
  for (const EcInterval& in : intervals) covered += in.size;
  if (covered != length) intervals.clear();
  return intervals;
}

struct Holders {
  EcPeers* peers;
  const EcNeedleSite& site;
  EcHolders known;
  bool looked_up = false;
  Status lookup;
  // A client read skips a holder that failed it until the next lookup; a
  // scrub asks every holder the master names, as Go's does.
  bool forget_failed = true;

  void Ensure() {
    if (looked_up) return;
    looked_up = true;
    auto h = peers->Holders(site.master, site.vid);
    if (h.ok()) known = std::move(h.value());
    else lookup = h.status();
  }
};

// [offset, offset + size) of `shard` into `out`: the local descriptor first,
// then each holder in turn. Sets `deleted` when a holder has the needle deleted.
Status ReadShardRange(Holders& holders, int shard, uint64_t offset, uint64_t size, uint8_t* out, bool* deleted) {
  const EcNeedleSite& site = holders.site;
  auto local = site.local_fd.find(shard);
  if (local != site.local_fd.end() && PreadFull(local->second, out, size_t(size), off_t(offset)).ok()) return Status::Ok();
  holders.Ensure();
  Status last = Status::NotFound("failed to find ec shard " + std::to_string(site.vid) + "." + std::to_string(shard));
  auto it = holders.known.find(shard);
  if (it == holders.known.end()) return last;
  for (const std::string& holder : it->second) {
    auto got = holders.peers->ReadShard(holder, site.vid, shard, offset, size, site.id, site.where.encode_ts_ns());
    if (!got.ok()) {
      if (holders.forget_failed) holders.peers->Forget(site.vid, shard, holder);
      last = got.status();
      continue;
    }
    if (got.value().deleted) {
      *deleted = true;
      return Status::Ok();
    }
    std::memcpy(out, got.value().data.data(), size_t(size));  // ReadShard checked the length
    return Status::Ok();
  }
  return last;
}

// Rebuilds [offset, offset + size) of `shard` into `out` from other shards.
EcGathered Rebuild(Holders& holders, const RsCodec& codec, int shard, uint64_t offset, uint64_t size, uint8_t* out, std::string* error) {
  std::vector<std::string> bufs(size_t(codec.data()), std::string(size_t(std::min(size, kRebuildStep)), '\0'));
  for (uint64_t done = 0; done < size;) {
    const uint64_t step = std::min(size - done, kRebuildStep);
    std::vector<int> have, missing;
    for (int other = 0; other < codec.total() && int(have.size()) < codec.data(); ++other) {
      if (other == shard) continue;
      bool deleted = false;
      uint8_t* into = reinterpret_cast<uint8_t*>(bufs[have.size()].data());
      if (ReadShardRange(holders, other, offset + done, step, into, &deleted).ok()) {
        if (deleted) return EcGathered::kDeleted;
        have.push_back(other);
      } else {
        missing.push_back(other);
      }
    }
    if (int(have.size()) < codec.data()) {
      *error = (holders.lookup.ok() ? "" : holders.lookup.message() + "; ") + "cannot recover shard " + std::to_string(holders.site.vid) +
               "." + std::to_string(shard) + ": only " + std::to_string(have.size()) + " shards available " + GoIntList(have) +
               ", need at least " + std::to_string(codec.data()) + " (missing: " + GoIntList(missing) + ")";
      return EcGathered::kError;
    }
    std::vector<const uint8_t*> ins;
    for (size_t i = 0; i < have.size(); ++i) ins.push_back(reinterpret_cast<const uint8_t*>(bufs[i].data()));
    uint8_t* into = out + done;
    if (Status rs = codec.Reconstruct(have, ins.data(), {shard}, &into, size_t(step)); !rs.ok()) {
      *error = rs.message();
      return EcGathered::kError;
    }
    done += step;
  }
  return EcGathered::kOk;
}

}  // namespace

OwnedShardFd::~OwnedShardFd() {
  if (fd >= 0) close(fd);
}

EcGathered GatherRecordRange(EcPeers* peers, const EcNeedleSite& site, uint64_t offset, uint64_t length, uint8_t* out,
                             std::string* error) {
  const auto& w = site.where;
  auto codec = RsCodec::Make(int(w.data_shards()), int(w.parity_shards()));
  if (!codec.ok()) {
    *error = codec.status().message();
    return EcGathered::kError;
  }
  const std::vector<EcInterval> intervals = RecordIntervals(w, offset, length);
  if (intervals.empty() && length > 0) {
    *error = "ec volume " + std::to_string(site.vid) + ": the record has no place in the shards";
    return EcGathered::kError;
  }
  Holders holders{peers, site, {}, false, Status::Ok()};
  for (const EcInterval& in : intervals) {
    bool deleted = false;
    Status s = ReadShardRange(holders, in.shard, in.shard_offset, in.size, out, &deleted);
    if (deleted) return EcGathered::kDeleted;
    if (!s.ok()) {
      const EcGathered rebuilt = Rebuild(holders, codec.value(), in.shard, in.shard_offset, in.size, out, error);
      if (rebuilt != EcGathered::kOk) return rebuilt;
    }
    out += in.size;
  }
  return EcGathered::kOk;
}

size_t GatherRecordForScrub(EcPeers* peers, const EcNeedleSite& site, uint64_t length, bool rebuild, uint8_t* out,
                            std::vector<EcMissedPiece>* missed, std::string* error) {
  const auto& w = site.where;
  auto codec = RsCodec::Make(int(w.data_shards()), int(w.parity_shards()));
  const std::vector<EcInterval> intervals = RecordIntervals(w, 0, length);
  if (!codec.ok() || (intervals.empty() && length > 0)) {
    *error = codec.ok() ? "ec volume " + std::to_string(site.vid) + ": the record has no place in the shards" : codec.status().message();
    return 0;
  }
  Holders holders{peers, site, {}, false, Status::Ok(), false};
  size_t got = 0;
  for (size_t i = 0; i < intervals.size(); ++i) {
    const EcInterval& in = intervals[i];
    bool deleted = false;
    Status s = ReadShardRange(holders, in.shard, in.shard_offset, in.size, out + got, &deleted);
    if (s.ok() && deleted) std::memset(out + got, 0, size_t(in.size));
    if (!s.ok()) {
      missed->push_back({in, i, s.message()});
      if (!rebuild || Rebuild(holders, codec.value(), in.shard, in.shard_offset, in.size, out + got, error) != EcGathered::kOk) return got;
    }
    got += size_t(in.size);
  }
  return got;
}

bool GatherLocalRange(const EcNeedleSite& site, uint64_t offset, uint64_t length, uint8_t* out) {
  const std::vector<EcInterval> intervals = RecordIntervals(site.where, offset, length);
  if (intervals.empty() && length > 0) return false;
  for (const EcInterval& in : intervals)
    if (!site.local_fd.count(in.shard)) return false;
  for (const EcInterval& in : intervals) {
    if (!PreadFull(site.local_fd.at(in.shard), out, size_t(in.size), off_t(in.shard_offset)).ok()) return false;
    out += in.size;
  }
  return true;
}

}  // namespace kelp
