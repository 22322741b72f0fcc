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
#include "common/needle.h"
#include "common/rs_codec.h"
#include "proto/kelp_internal.pb.h"
#include "common/ec_client/ec_delete.h"
#include "common/ec_client/ec_needle_meta.h"
#include "worker-http/blob_reader.h"
#include "worker-http/ec/ec_stream.h"
#include "worker-http/off_loop.h"

namespace kelp {
namespace {

using Outcome = EcNeedleRead::Outcome;

}  // namespace

// One read in flight: where the record is, and the local shards still to open.
struct EcReadPending {
  uv_loop_t* loop = nullptr;
  EcPeers* peers = nullptr;
  EcShardFds* cache = nullptr;
  std::shared_ptr<EcNeedleSite> site;
  std::vector<int> to_open;  // local shards not in the cache, opened one by one
  EcNeedleRead result;
  std::function<void(EcNeedleRead)> done;  // the outcome of the read (or of the locate, when it failed)
  std::function<void(const std::shared_ptr<EcReadPending>&)> located;  // runs once located and opened
};

namespace {

using Pending = EcReadPending;

void Finish(const std::shared_ptr<Pending>& p, EcGathered got, const std::string& error) {
  EcNeedleRead& r = p->result;
  if (got == EcGathered::kDeleted) r.outcome = Outcome::kDeleted, r.error = "already deleted";
  else if (got == EcGathered::kError) r.outcome = Outcome::kError, r.error = error;
  else r.outcome = Outcome::kOk;
  if (r.outcome != Outcome::kOk) r.record = {}, r.data = nullptr;
  p->done(std::move(r));
}

// Small records: gathered whole; on the loop when every piece is local.
void GatherWhole(const std::shared_ptr<Pending>& p) {
  struct Job {
    EcGathered got = EcGathered::kError;
    std::string error;
  };
  auto job = std::make_shared<Job>();
  const uint64_t total = ActualSize(p->result.size, p->result.version);
  p->result.record = http::ByteBuffer::Uninitialized(size_t(total));
  if (GatherLocalRange(*p->site, 0, total, reinterpret_cast<uint8_t*>(p->result.record.data())))
    return Finish(p, EcGathered::kOk, std::string());
  RunOffLoop(
      p->loop,
      [p, job, total] {
        job->got = GatherRecordRange(p->peers, *p->site, 0, total, reinterpret_cast<uint8_t*>(p->result.record.data()), &job->error);
      },
      [p, job] { Finish(p, job->got, job->error); });
}

// Large records: the header and data size, then what follows the data; the
// data is left to a stream.
void GatherAroundData(const std::shared_ptr<Pending>& p) {
  struct Job {
    EcGathered got = EcGathered::kError;
    std::string error;
    uint64_t data_size = 0;
    uint32_t crc = 0;
  };
  auto job = std::make_shared<Job>();
  RunOffLoop(
      p->loop,
      [p, job] {
        EcNeedleRead& r = p->result;
        uint8_t head[kNeedleHeaderSize + 4];
        job->got = GatherRecordRange(p->peers, *p->site, 0, sizeof head, head, &job->error);
        if (job->got != EcGathered::kOk) return;
        job->data_size = GetU32(head + kNeedleHeaderSize);
        const uint64_t total = ActualSize(r.size, r.version);
        if (ParseNeedleHeader(head).size != r.size || job->data_size + 4 > r.size) {
          job->got = EcGathered::kError, job->error = "index out of range 1: needle data corrupted";
          return;
        }
        const uint64_t after_data = sizeof head + job->data_size;  // flags .. padding
        r.record = http::ByteBuffer::Uninitialized(size_t(kNeedleHeaderSize + total - after_data));
        std::memcpy(r.record.data(), head, kNeedleHeaderSize);
        auto* rest = reinterpret_cast<uint8_t*>(r.record.data()) + kNeedleHeaderSize;
        job->got = GatherRecordRange(p->peers, *p->site, after_data, total - after_data, rest, &job->error);
        if (job->got == EcGathered::kOk) job->crc = GetU32(rest + (r.size - 4 - job->data_size));
      },
      [p, job] {
        if (job->got == EcGathered::kOk) {
          p->result.data_size = job->data_size;
          p->result.data = std::make_shared<EcBlobData>(p->loop, p->peers, p->site, p->result.size, p->result.version, job->data_size, job->crc);
        }
        Finish(p, job->got, job->error);
      });
}

void OpenNext(SupervisorLink* link, std::shared_ptr<Pending> p) {
  // Every read may need any local shard (a lost piece is rebuilt from ten
  // others): all of them are opened once per encode run and kept.
  if (p->to_open.empty()) return p->located(p);
  const int shard = p->to_open.back();
  p->to_open.pop_back();
  volume_server_pb::VolumeEcShardReadRequest req;
  req.set_volume_id(p->site->vid);
  req.set_shard_id(uint32_t(shard));
  req.set_file_key(p->site->id);
  req.set_encode_ts_ns(p->site->where.encode_ts_ns());
  link->AdminCall("kelp.OpenEcShardRead", req.SerializeAsString(), [link, p, shard](int code, const std::string&, const std::string& body, int fd) {
    volume_server_pb::VolumeEcShardReadResponse resp;
    if (code == 0 && resp.ParseFromString(body) && resp.is_deleted()) {
      if (fd >= 0) close(fd);
      p->result.outcome = Outcome::kDeleted, p->result.error = "already deleted";
      return p->done(std::move(p->result));
    }
    if (fd >= 0) {  // else: read from holders as a remote shard
      auto owned = std::make_shared<const OwnedShardFd>(fd);
      (*p->cache)[{p->site->vid, shard}] = EcShardFd{p->site->where.encode_ts_ns(), owned};
      p->site->held[shard] = owned;
      p->site->local_fd[shard] = fd;
    }
    OpenNext(link, p);
  });
}

}  // namespace

std::shared_ptr<EcReadPending> EcReader::NewPending(const std::string& master, VolumeId vid, NeedleId id) {
  auto p = std::make_shared<EcReadPending>();
  p->loop = loop_, p->peers = peers_, p->cache = &shard_fds_;
  p->site = std::make_shared<EcNeedleSite>();
  p->site->master = master, p->site->vid = vid, p->site->id = id;
  return p;
}

void EcReader::Read(const std::string& master, VolumeId vid, NeedleId id, std::function<void(EcNeedleRead)> done) {
  auto p = NewPending(master, vid, id);
  p->done = std::move(done);
  p->located = [](const std::shared_ptr<Pending>& p) {
    const bool whole = p->result.version == 1 || p->result.size <= kWholeReadLimit;
    whole ? GatherWhole(p) : GatherAroundData(p);
  };
  Locate(p);
}

void EcReader::Locate(std::shared_ptr<EcReadPending> p) {
  const VolumeId vid = p->site->vid;
  const NeedleId id = p->site->id;
  kelp_internal::EcNeedleLocate req;
  req.set_volume_id(vid);
  req.set_needle_id(id);
  SupervisorLink* link = link_;
  link->AdminCall("kelp.LocateEcNeedle", req.SerializeAsString(), [link, p, vid](int code, const std::string& message, const std::string& body, int fd) {
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
    auto& where = p->site->where;
    if (!where.ParseFromString(body) || where.data_shards() == 0 || where.data_shards() > 31 || where.large_block() == 0 ||
        where.small_block() == 0) {
      r.outcome = Outcome::kError, r.error = "malformed ec location from the supervisor";
      return p->done(std::move(r));
    }
    r.size = where.size();
    r.version = uint8_t(where.version());
    r.collection = where.collection();
    r.primary_shard = EcPrimaryShard(where);
    if (r.primary_shard < 0) {
      r.outcome = Outcome::kError, r.error = "ec volume " + std::to_string(p->site->vid) + ": the record has no place in the shards";
      return p->done(std::move(r));
    }
    const std::set<uint32_t> local(where.local_shards().begin(), where.local_shards().end());
    // Cached descriptors of shards no longer mounted here, or of another run, go.
    EcShardFds& cache = *p->cache;
    for (auto it = cache.lower_bound({vid, 0}); it != cache.end() && it->first.first == vid;) {
      const bool stale = !local.count(uint32_t(it->first.second)) || it->second.encode_ts_ns != where.encode_ts_ns();
      it = stale ? cache.erase(it) : std::next(it);
    }
    for (uint32_t shard : local) {
      auto it = cache.find({vid, int(shard)});
      if (it != cache.end()) {
        p->site->held[int(shard)] = it->second.fd;
        p->site->local_fd[int(shard)] = it->second.fd->fd;
      } else {
        p->to_open.push_back(int(shard));
      }
    }
    OpenNext(link, p);
  });
}

void EcReader::Delete(const std::string& master, VolumeId vid, NeedleId id, Cookie cookie, std::function<void(EcNeedleDelete)> done) {
  auto p = NewPending(master, vid, id);
  // The locate's failures: no EC volume here, deleted already, or Go's text.
  p->done = [done](EcNeedleRead got) {
    EcNeedleDelete out;
    out.no_volume = got.outcome == Outcome::kNoVolume;
    out.deleted = got.outcome == Outcome::kDeleted;
    if (!out.no_volume && !out.deleted) out.error = got.error;
    done(out);
  };
  // Read as Go reads before it deletes (cookie, CRC), then journaled by a holder.
  p->located = [cookie, done](const std::shared_ptr<Pending>& p) {
    auto out = std::make_shared<EcNeedleDelete>();
    RunOffLoop(
        p->loop,
        [p, cookie, out] {
          EcNeedleMeta meta;
          switch (ReadEcNeedleMeta(p->peers, *p->site, &meta, &out->error)) {
            case EcGathered::kDeleted:
              out->deleted = true, out->error.clear();
              return;
            case EcGathered::kError:
              return;
            case EcGathered::kOk:
              break;
          }
          if (cookie != 0 && cookie != meta.needle.header.cookie) {
            char hex[16];
            std::snprintf(hex, sizeof hex, "%x", cookie);
            out->error = std::string("unexpected cookie ") + hex;
            return;
          }
          const EcNeedleRead& r = p->result;
          out->size = GoEcDeletedSize(r.size, r.version);
          out->error = DeleteOnEcHolders(p->peers, p->site->master, p->site->vid, r.collection, p->site->id, r.version, r.primary_shard);
        },
        [out, done] { done(*out); });
  };
  Locate(p);
}

}  // namespace kelp
