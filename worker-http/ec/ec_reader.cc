#include "worker-http/ec/ec_reader.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "common/bytes.h"
#include "common/ec_layout.h"
#include "common/file_util.h"
#include "common/go_quote.h"
#include "common/needle.h"
#include "common/rs_codec.h"
#include "proto/kelp_internal.pb.h"
#include "worker-http/off_loop.h"

namespace kelp {
namespace {

using Outcome = EcNeedleRead::Outcome;

// One read in flight: what the locate said, and the local shards opened.
struct Pending {
  EcShardFds* cache = nullptr;
  std::string master;
  VolumeId vid = 0;
  NeedleId id = 0;
  kelp_internal::EcNeedleLocated where;
  std::vector<EcInterval> intervals;
  std::vector<int> to_open;     // local shards not in the cache, opened one by one
  std::map<int, std::shared_ptr<const OwnedShardFd>> held;  // keeps local_fd's descriptors open
  std::map<int, int> local_fd;  // shard -> descriptor the supervisor handed over
  EcNeedleRead result;
  std::function<void(EcNeedleRead)> done;
};

// The bytes [offset, offset+size) of `shard` into `out`: the local descriptor
// first, then each holder in turn. Sets `deleted` when a holder has the
// needle deleted.
Status ReadShardRange(EcPeers* peers, const Pending& p, const EcHolders& holders, int shard, uint64_t offset, uint64_t size,
                      uint8_t* out, bool* deleted) {
  auto local = p.local_fd.find(shard);
  if (local != p.local_fd.end() && PreadFull(local->second, out, size_t(size), off_t(offset)).ok()) return Status::Ok();
  Status last = Status::NotFound("no holder of ec shard " + std::to_string(p.vid) + "." + std::to_string(shard));
  auto it = holders.find(shard);
  if (it == holders.end()) return last;
  for (const std::string& holder : it->second) {
    auto got = peers->ReadShard(holder, p.vid, shard, offset, size, p.id, p.where.encode_ts_ns());
    if (!got.ok()) {
      peers->Forget(p.vid, shard, holder);
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

// Runs on the thread pool: every interval of the record into p->result.record,
// sized once; local pieces are read straight into it.
void Gather(EcPeers* peers, Pending* p) {
  EcNeedleRead& r = p->result;
  auto codec = RsCodec::Make(int(p->where.data_shards()), int(p->where.parity_shards()));
  if (!codec.ok()) {
    r.outcome = Outcome::kError, r.error = codec.status().message();
    return;
  }
  EcHolders holders;
  bool looked_up = false;
  Status lookup;
  auto ensure_holders = [&] {
    if (looked_up) return;
    looked_up = true;
    auto h = peers->Holders(p->master, p->vid);
    if (h.ok()) holders = std::move(h.value());
    else lookup = h.status();
  };
  uint64_t total = 0;
  for (const EcInterval& in : p->intervals) total += in.size;
  r.record = http::ByteBuffer::Uninitialized(size_t(total));
  uint8_t* at = reinterpret_cast<uint8_t*>(r.record.data());
  for (const EcInterval& in : p->intervals) {
    uint8_t* piece = at;
    at += in.size;
    bool deleted = false;
    if (!p->local_fd.count(in.shard)) ensure_holders();
    Status s = ReadShardRange(peers, *p, holders, in.shard, in.shard_offset, in.size, piece, &deleted);
    if (!s.ok() && p->local_fd.count(in.shard)) {
      ensure_holders();
      s = ReadShardRange(peers, *p, holders, in.shard, in.shard_offset, in.size, piece, &deleted);
    }
    if (!s.ok() && !deleted) {
      // Rebuilt from `data` other shards' bytes at the same place.
      std::vector<int> have, missing;
      std::vector<std::string> bufs;
      for (int other = 0; other < codec.value().total() && int(have.size()) < codec.value().data(); ++other) {
        if (other == in.shard) continue;
        std::string b(size_t(in.size), '\0');
        bool other_deleted = false;
        if (ReadShardRange(peers, *p, holders, other, in.shard_offset, in.size, reinterpret_cast<uint8_t*>(b.data()), &other_deleted).ok() &&
            !other_deleted) {
          have.push_back(other);
          bufs.push_back(std::move(b));
        } else if (other_deleted) {
          deleted = true;
          break;
        } else {
          missing.push_back(other);
        }
      }
      if (!deleted) {
        if (int(have.size()) < codec.value().data()) {
          r.outcome = Outcome::kError;
          r.error = (lookup.ok() ? "" : lookup.message() + "; ") + "cannot recover shard " + std::to_string(p->vid) + "." + std::to_string(in.shard) +
                    ": only " + std::to_string(have.size()) + " shards available " + GoIntList(have) + ", need at least " +
                    std::to_string(codec.value().data()) + " (missing: " + GoIntList(missing) + ")";
          return;
        }
        std::vector<const uint8_t*> ins;
        for (const std::string& b : bufs) ins.push_back(reinterpret_cast<const uint8_t*>(b.data()));
        if (Status rs = codec.value().Reconstruct(have, ins.data(), {in.shard}, &piece, size_t(in.size)); !rs.ok()) {
          r.outcome = Outcome::kError, r.error = rs.message();
          return;
        }
      }
    }
    if (deleted) {
      r.outcome = Outcome::kDeleted, r.error = "already deleted";
      return;
    }
  }
  r.outcome = Outcome::kOk;
}

void OpenNext(SupervisorLink* link, uv_loop_t* loop, EcPeers* peers, std::shared_ptr<Pending> p) {
  // Every read may need any local shard (a lost piece is rebuilt from ten
  // others): all of them are opened once per encode run and kept.
  if (p->to_open.empty()) {
    return RunOffLoop(
        loop, [peers, p] { Gather(peers, p.get()); }, [p] { p->done(std::move(p->result)); });
  }
  const int shard = p->to_open.back();
  p->to_open.pop_back();
  volume_server_pb::VolumeEcShardReadRequest req;
  req.set_volume_id(p->vid);
  req.set_shard_id(uint32_t(shard));
  req.set_file_key(p->id);
  req.set_encode_ts_ns(p->where.encode_ts_ns());
  link->AdminCall("kelp.OpenEcShardRead", req.SerializeAsString(),
                  [link, loop, peers, p, shard](int code, const std::string&, const std::string& body, int fd) {
                    volume_server_pb::VolumeEcShardReadResponse resp;
                    if (code == 0 && resp.ParseFromString(body) && resp.is_deleted()) {
                      if (fd >= 0) close(fd);
                      p->result.outcome = Outcome::kDeleted, p->result.error = "already deleted";
                      return p->done(std::move(p->result));
                    }
                    if (fd >= 0) {  // else: read from holders as a remote shard
                      auto owned = std::make_shared<const OwnedShardFd>(fd);
                      (*p->cache)[{p->vid, shard}] = EcShardFd{p->where.encode_ts_ns(), owned};
                      p->held[shard] = owned;
                      p->local_fd[shard] = fd;
                    }
                    OpenNext(link, loop, peers, p);
                  });
}

}  // namespace

OwnedShardFd::~OwnedShardFd() {
  if (fd >= 0) close(fd);
}

void EcReader::Read(const std::string& master, VolumeId vid, NeedleId id, std::function<void(EcNeedleRead)> done) {
  auto p = std::make_shared<Pending>();
  p->cache = &shard_fds_;
  p->master = master, p->vid = vid, p->id = id, p->done = std::move(done);
  kelp_internal::EcNeedleLocate req;
  req.set_volume_id(vid);
  req.set_needle_id(id);
  SupervisorLink* link = link_;
  uv_loop_t* loop = loop_;
  EcPeers* peers = peers_;
  link->AdminCall("kelp.LocateEcNeedle", req.SerializeAsString(), [link, loop, peers, p](int code, const std::string& message, const std::string& body, int fd) {
    if (fd >= 0) close(fd);
    EcNeedleRead& r = p->result;
    if (code != 0) {
      r.error = message;
      if (message.rfind("not found ec volume id", 0) == 0) r.outcome = Outcome::kNoVolume;
      else if (message == "already deleted") r.outcome = Outcome::kDeleted;
      else if (message.find("needle not found") != std::string::npos) r.outcome = Outcome::kNotFound;
      else r.outcome = Outcome::kError;
      return p->done(std::move(r));
    }
    if (!p->where.ParseFromString(body) || p->where.data_shards() == 0 || p->where.data_shards() > 31 || p->where.large_block() == 0 ||
        p->where.small_block() == 0) {
      r.outcome = Outcome::kError, r.error = "malformed ec location from the supervisor";
      return p->done(std::move(r));
    }
    r.size = p->where.size();
    r.version = uint8_t(p->where.version());
    r.collection = p->where.collection();
    const EcLayout layout{int(p->where.data_shards()), p->where.large_block(), p->where.small_block()};
    p->intervals = LocateEcRange(layout, p->where.shard_dat_size(), p->where.offset(), ActualSize(r.size, r.version));
    if (p->intervals.empty()) {
      r.outcome = Outcome::kError, r.error = "ec volume " + std::to_string(p->vid) + ": the record has no place in the shards";
      return p->done(std::move(r));
    }
    r.primary_shard = p->intervals.front().shard;
    const std::set<uint32_t> local(p->where.local_shards().begin(), p->where.local_shards().end());
    // Cached descriptors of shards no longer mounted here, or of another run, go.
    EcShardFds& cache = *p->cache;
    for (auto it = cache.lower_bound({p->vid, 0}); it != cache.end() && it->first.first == p->vid;) {
      const bool stale = !local.count(uint32_t(it->first.second)) || it->second.encode_ts_ns != p->where.encode_ts_ns();
      it = stale ? cache.erase(it) : std::next(it);
    }
    for (uint32_t shard : local) {
      auto it = cache.find({p->vid, int(shard)});
      if (it != cache.end()) {
        p->held[int(shard)] = it->second.fd;
        p->local_fd[int(shard)] = it->second.fd->fd;
      } else {
        p->to_open.push_back(int(shard));
      }
    }
    OpenNext(link, loop, peers, p);
  });
}

void EcReader::Delete(const std::string& master, VolumeId vid, NeedleId id, Cookie cookie, std::function<void(EcNeedleDelete)> done) {
  EcPeers* peers = peers_;
  uv_loop_t* loop = loop_;
  Read(master, vid, id, [peers, loop, master, vid, id, cookie, done = std::move(done)](EcNeedleRead got) {
    auto out = std::make_shared<EcNeedleDelete>();
    if (got.outcome == Outcome::kNoVolume) {
      out->no_volume = true;
      return done(*out);
    }
    if (got.outcome == Outcome::kDeleted) {
      out->deleted = true;
      return done(*out);
    }
    if (got.outcome != Outcome::kOk) {
      out->error = got.error;
      return done(*out);
    }
    const Cookie stored = GetU32(reinterpret_cast<const uint8_t*>(got.record.data()));
    if (cookie != 0 && cookie != stored) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "%x", cookie);
      out->error = std::string("unexpected cookie ") + hex;
      return done(*out);
    }
    out->size = got.record.size;
    // What the holders' calls need of the read; the record itself is done with.
    const std::string collection = got.collection;
    const uint32_t version = got.version;
    const int primary = got.primary_shard;
    RunOffLoop(
        loop,
        [peers, master, vid, id, collection, version, primary, out] {
          auto holders = peers->Holders(master, vid);
          if (!holders.ok()) {
            out->error = holders.status().message();
            return;
          }
          auto try_shard = [&](int shard) -> bool {
            auto it = holders.value().find(shard);
            if (it == holders.value().end() || it->second.empty()) return false;
            for (const std::string& holder : it->second) {
              Status s = peers->DeleteBlob(holder, vid, collection, id, version);
              if (s.ok()) {
                out->error.clear();
                return true;
              }
              out->error = "failed to delete from ec shard " + std::to_string(shard) + " on " + holder + ": " + s.message();
            }
            return true;  // the shard has holders: their answer stands
          };
          if (try_shard(primary)) return;
          out->error = "no holder of ec volume " + std::to_string(vid) + " found to delete from";
          for (int shard = 0; shard < kMaxEcShards; ++shard)
            if (shard != primary && try_shard(shard) && out->error.empty()) return;
        },
        [out, done] { done(*out); });
  });
}

}  // namespace kelp
