// Erasure coding's repair and way back (Go 4.48's VolumeEcShardsRebuild and
// VolumeEcShardsToVolume). The supervisor picks the files and creates the
// outputs; a job process reads the shards and writes them; the supervisor
// then renames, folds the journal into the index and writes the .idx. A job
// killed midway fails its call alone: its outputs are removed, and the shards
// and their mounts stay as they were. Nothing is mounted or unmounted here.
// (upstream: weed/server/volume_grpc_erasure_coding.go, weed/storage/
// erasure_coding/ec_encoder.go, ec_decoder.go; docs/erasure-coding.md §6, §12)
#include <fcntl.h>
#include <sys/stat.h>

#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "common/bytes.h"
#include "common/collection_name.h"
#include "common/file_util.h"
#include "common/go_quote.h"
#include "common/go_error.h"
#include "common/idx_entry.h"
#include "common/log.h"
#include "common/needle.h"
#include "common/super_block.h"
#include "storage/compaction.h"
#include "storage/ec_encode.h"
#include "supervisor/admin_service.h"
#include "supervisor/ec_rebuild_sidecar.h"

namespace kelp {
namespace {

// Runs `work` on a background thread (inline without one), then `done` on the loop.
void InBackground(BackgroundJobs* jobs, std::function<void()> work, std::function<void()> done) {
  if (!jobs) {
    work();
    return done();
  }
  jobs->Start([work = std::move(work)](const BackgroundJobs::Post&) { work(); }, std::move(done));
}

}  // namespace

namespace {

// What one rebuild reads and writes. A shard is an input, or generated:
// missing (absent, or an empty file), or condemned by the sidecar. Every
// generated shard is written as "<its final name>.rebuilding" and renamed
// there once the rebuild has been checked.
struct ShardPlan {
  std::map<int, std::string> inputs;
  std::map<int, int64_t> sizes;
  std::vector<int> missing, condemned;   // ascending each
  std::map<int, std::string> outputs;   // shard -> the file the job writes
  std::map<int, std::string> replace;   // shard -> the name its output takes once checked

  void Condemn(int shard) {
    outputs[shard] = inputs[shard] + ".rebuilding";
    replace[shard] = inputs[shard];
    inputs.erase(shard);
    sizes.erase(shard);
    condemned.insert(std::upper_bound(condemned.begin(), condemned.end(), shard), shard);
  }
  // Go's answer order: the missing, then the condemned.
  std::vector<int> Generated() const {
    std::vector<int> all = missing;
    all.insert(all.end(), condemned.begin(), condemned.end());
    return all;
  }
};

// Removes every output of the plan when it goes, unless kept: a failed
// rebuild publishes nothing, and a condemned shard keeps its original.
struct OutputsGuard {
  Env* env;
  const ShardPlan* plan;
  bool keep = false;
  ~OutputsGuard() {
    if (!keep) Unlink();
  }
  void Unlink() const {
    for (const auto& [s, path] : plan->outputs) env->Unlink(path);
  }
};

// One rebuild job over the plan's inputs, writing its outputs when `write`
// (else only checksumming the inputs). Errors are Go's texts, unprefixed.
Result<EcShardChecksumLists> RunRebuildJob(Env* env, JobWorkers* job_workers, BackgroundJobs* jobs, JobWorkers::EcRebuildPlan plan,
                                           const ShardPlan& shards, bool write) {
  std::vector<std::unique_ptr<Fd>> held;
  std::map<int, int> present_fds, missing_fds;
  for (const auto& [s, path] : shards.inputs) {
    const int fd = env->Open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return Status::IOError("open " + path + ": " + GoErrno(errno));
    held.push_back(std::make_unique<Fd>(env, fd));
    present_fds[s] = fd;
  }
  if (write) {
    for (const auto& [s, path] : shards.outputs) {
      const int fd = env->Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return Status::IOError("create " + path + ": " + GoErrno(errno));
      held.push_back(std::make_unique<Fd>(env, fd));
      missing_fds[s] = fd;
    }
  }
  if (!job_workers) return Status::Unavailable("no job worker");
  auto stop = [jobs] { return jobs && jobs->stopping(); };
  auto crcs = job_workers->EcRebuild(plan, present_fds, missing_fds, stop);
  if (!crcs.ok()) return crcs;
  for (const auto& [shard, path] : missing_fds)
    if (FileSizeOf(shards.outputs.at(shard)) != int64_t(plan.shard_size))
      return Status::IOError(shards.outputs.at(shard) + " is not what the rebuild should have written");
  return crcs;
}

constexpr const char* kOverride = " (pass unsafeIgnoreSidecar to override)";

// A vacuum's copy and commit of a volume nobody has mounted from these files:
// every live needle of its .idx into .cpd/.cpx (in a job process when there
// is a job worker), checked, then swapped in behind the commit marker.
Status CompactDecodedVolume(const VolumeFileNames& names, int offset_bytes, int64_t throttle, Env* env, JobWorkers* job_workers,
                            BackgroundJobs* jobs) {
  CompactionStart plan;
  {
    const int dat = env->Open(names.Dat(), O_RDONLY | O_CLOEXEC, 0);
    if (dat < 0) return Status::IOError("open " + names.Dat() + ": " + GoErrno(errno));
    Fd closer(env, dat);
    uint8_t header[8];
    if (Status s = EnvPreadFull(env, dat, header, sizeof header, 0); !s.ok()) return s;
    auto sb = ParseSuperBlockHeader(header);
    if (!sb.ok()) return sb.status();
    plan.super_block = sb.value();
    plan.super_block.extra.resize(ExtraSizeOf(header));
    if (!plan.super_block.extra.empty())
      if (Status s = EnvPreadFull(env, dat, plan.super_block.extra.data(), plan.super_block.extra.size(), sizeof header); !s.ok()) return s;
    auto size = EnvFileSize(env, dat);
    if (!size.ok()) return size.status();
    plan.dat_end = uint64_t(size.value());
  }
  const int64_t idx_size = FileSizeOf(names.Idx());
  if (idx_size < 0) return Status::IOError("stat " + names.Idx() + ": " + GoErrno(errno));
  plan.idx_end = uint64_t(idx_size);  // content and deleted bytes unknown: no size sanity check
  CompactionOptions options;
  options.bytes_per_second = throttle;
  auto stop = [jobs] { return jobs && jobs->stopping(); };
  auto copied = job_workers ? job_workers->Compact(names, offset_bytes, plan, options, env, stop) : CopyLiveNeedles(names, offset_bytes, plan, options, env);
  if (!copied.ok()) {
    RemoveCompactionFiles(names, env);
    return copied.status();
  }
  // The copy accounts for every live row (CheckCompactedCopy); one it left
  // behind as unreadable, or as expired on a volume without a TTL, would be a
  // needle lost: the decoded files stay as they are.
  const CompactionOutcome& o = copied.value();
  if (o.dropped > 0 || (o.expired > 0 && plan.super_block.ttl.Minutes() == 0)) {
    RemoveCompactionFiles(names, env);
    return Status::Corruption("the copy left " + std::to_string(o.dropped) + " unreadable and " + std::to_string(o.expired) +
                              " expired needle(s) behind");
  }
  bool committed = false;
  Status swapped = SwapInCompacted(names, env, &committed);
  if (!swapped.ok() && !committed) RemoveCompactionFiles(names, env);
  return swapped;
}

}  // namespace

void AdminService::VolumeEcShardsRebuild(const volume_server_pb::VolumeEcShardsRebuildRequest& req,
                                         volume_server_pb::VolumeEcShardsRebuildResponse* resp, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  if (!IsSafeCollectionName(req.collection())) return finish(GoError("invalid collection " + GoQuote(req.collection())));
  const VolumeId id = req.volume_id();
  std::vector<EcBases> bases;
  for (size_t li = 0; li < store_->locations().size(); ++li) bases.push_back(store_->EcBasesIn(li, req.collection(), id));
  // A mounted instance of the volume keeps its journal open: its fold goes through it.
  std::vector<std::shared_ptr<EcVolume>> mounted(bases.size());
  for (const auto& [li, v] : store_->EcOf(id)) mounted[li] = v;
  struct Outcome {
    grpc::Status status;
    std::vector<int> rebuilt;
  };
  auto out = std::make_shared<Outcome>();
  Env* env = store_->env();
  JobWorkers* job_workers = job_workers_;
  BackgroundJobs* jobs = jobs_;
  const int64_t throttle = config_->maintenance_bytes_per_second;
  const int offset_bytes = store_->offset_bytes();
  const bool unsafe = req.unsafe_ignore_sidecar();
  auto work = [bases, mounted, out, env, job_workers, jobs, throttle, offset_bytes, id, unsafe] {
    // The rebuild disk: the one with an index and the most shards.
    size_t chosen = bases.size();
    int best = -1;
    std::vector<size_t> lenders;
    for (size_t li = 0; li < bases.size(); ++li) {
      int shards = 0;
      for (int s = 0; s < kMaxEcShards; ++s)
        if (FileSizeOf(bases[li].data + EcShardExt(s)) >= 0) ++shards;
      const bool has_ecx = FileSizeOf(bases[li].idx + ".ecx") >= 0 || FileSizeOf(bases[li].data + ".ecx") >= 0;
      if (!has_ecx && shards == 0) continue;
      lenders.push_back(li);
      if (has_ecx && shards > best) chosen = li, best = shards;
    }
    if (chosen == bases.size()) return;  // no index here: nothing to rebuild
    const EcBases& home = bases[chosen];
    const std::string prefix = "RebuildEcFiles " + home.data + ": ";
    auto fail = [&](const std::string& why) { out->status = GoError(prefix + why); };
    int data = kDefaultEcData, parity = kDefaultEcParity;
    int64_t layout_block = 0;  // the .vif's, for a sidecar written here
    bool exists = false;
    auto info = LoadVolumeInfo(home.data + ".vif", &exists);
    if (exists && !info.ok()) return fail("cannot load .vif: " + info.status().message());
    if (exists && info.value().ec_shard_config) layout_block = info.value().ec_shard_config->block_size;
    if (exists && info.value().ec_shard_config && info.value().ec_shard_config->data_shards > 0 && info.value().ec_shard_config->parity_shards > 0 &&
        info.value().ec_shard_config->data_shards + info.value().ec_shard_config->parity_shards <= uint32_t(kMaxEcShards)) {
      data = int(info.value().ec_shard_config->data_shards);
      parity = int(info.value().ec_shard_config->parity_shards);
    }
    // Inputs: each shard from the rebuild disk, else from another disk's data directory.
    std::vector<size_t> search{chosen};
    std::vector<std::string> extra_dirs;
    for (size_t li : lenders)
      if (li != chosen) search.push_back(li), extra_dirs.push_back(DirOf(bases[li].data));
    ShardPlan plan;
    for (int s = 0; s < data + parity; ++s) {
      std::string found;
      int64_t size = -1;
      for (size_t li : search) {
        if ((size = FileSizeOf(bases[li].data + EcShardExt(s))) >= 0) {
          found = bases[li].data + EcShardExt(s);
          break;
        }
      }
      if (found.empty()) {
        // Written beside its final name, renamed there only once checked:
        // a crash midway never leaves an unchecked shard under a shard's name.
        plan.missing.push_back(s);
        plan.outputs[s] = home.data + EcShardExt(s) + ".rebuilding";
        plan.replace[s] = home.data + EcShardExt(s);
      } else if (size == 0) {
        plan.missing.push_back(s);
        plan.outputs[s] = found + ".rebuilding";
        plan.replace[s] = found;
      } else {
        plan.inputs[s] = found;
        plan.sizes[s] = size;
      }
    }
    OutputsGuard guard{env, &plan};
    JobWorkers::EcRebuildPlan job;
    job.volume_id = id;
    job.data_shards = data, job.parity_shards = parity;
    job.bytes_per_second = throttle;
    // Every input one length (Go's text otherwise); it is the shards' size.
    auto equal_sizes = [&] {
      int64_t shard_size = -1;
      for (const auto& [s, size] : plan.sizes) {
        if (shard_size >= 0 && size != shard_size) {
          out->status = GoError("ec rebuild: input shard " + std::to_string(s) + " size " + std::to_string(size) + " != " + std::to_string(shard_size) +
                                " (truncated input?)");
          return false;
        }
        shard_size = size;
      }
      job.shard_size = uint64_t(std::max<int64_t>(shard_size, 0));
      return true;
    };
    auto not_enough = [&] {
      fail("not enough shards to rebuild " + home.data + ": found " + std::to_string(plan.inputs.size()) + " shards, need at least " +
           std::to_string(data) + " (data shards), missing shards: " + GoIntList(plan.Generated()));
    };

    // The sidecar, when there is a valid one: inputs that fail it are
    // condemned and regenerated, and the outputs must match it.
    const RebuildSidecar sidecar = FindRebuildSidecar(env, home.data, extra_dirs, data, parity);
    if (sidecar.state == EcsumState::kInvalid && !unsafe)
      return fail("bitrot sidecar for " + home.data + " is malformed/unverifiable; refusing to rebuild" + kOverride);
    const bool guarded = sidecar.state == EcsumState::kOn && !unsafe;
    const bool backfill = FileSizeOf(home.data + ".ecsum") < 0;  // Go blesses the bytes of a volume without one
    EcShardChecksumLists crcs;
    if (guarded) {
      const size_t present = plan.inputs.size();
      const std::vector<int> wrong_size = InputsOfWrongSize(sidecar.manifest, plan.sizes);
      for (int s : wrong_size) plan.Condemn(s);
      job.checksum_block = sidecar.manifest.block_size;
      if (!equal_sizes()) return;
      // One pass when the inputs are sound: the job checksums every input as it rebuilds.
      const bool write = int(plan.inputs.size()) >= data;
      auto first = RunRebuildJob(env, job_workers, jobs, job, plan, write);
      if (!first.ok()) return fail(first.status().message());
      const std::vector<int> failing = InputsFailingChecksums(sidecar.manifest, plan.sizes, first.value());
      const size_t condemned = wrong_size.size() + failing.size();
      if (condemned > size_t(parity))
        return fail("bitrot sidecar suspect for " + home.data + ": " + std::to_string(condemned) + "/" + std::to_string(present) +
                    " present shards mismatch (> parity " + std::to_string(parity) + "); refusing to rebuild" + kOverride);
      if (condemned > 0 && present - condemned < size_t(data))
        return fail("bitrot: only " + std::to_string(present - condemned) + " verified-good shards for " + home.data + ", need " +
                    std::to_string(data) + " data shards; sidecar may be stale" + kOverride);
      crcs = std::move(first.value());
      if (!failing.empty() || !write) {
        // Rebuilt from a condemned input: those outputs go, and the job runs again without it.
        guard.Unlink();
        for (int s : failing) plan.Condemn(s);
        if (int(plan.inputs.size()) < data) return not_enough();
        auto second = RunRebuildJob(env, job_workers, jobs, job, plan, true);
        if (!second.ok()) return fail(second.status().message());
        if (!InputsFailingChecksums(sidecar.manifest, plan.sizes, second.value()).empty())
          return fail("bitrot: an input shard for " + home.data + " changed during the rebuild");
        crcs = std::move(second.value());
      }
      for (const auto& [s, path] : plan.outputs)
        if (const size_t differ = DifferingBlocks(sidecar.manifest, s, crcs[s]); differ > 0)
          return fail("bitrot: regenerated shard " + std::to_string(s) + " for " + home.data + " does not match sidecar (" + std::to_string(differ) +
                      " blocks differ); sidecar likely stale — aborting" + kOverride);
    } else {
      if (int(plan.inputs.size()) < data) return not_enough();
      if (!equal_sizes()) return;
      job.checksum_block = backfill ? kEcChecksumBlock : 0;
      if (!plan.outputs.empty()) {
        auto done = RunRebuildJob(env, job_workers, jobs, job, plan, true);
        if (!done.ok()) return fail(done.status().message());
        crcs = std::move(done.value());
      } else if (backfill) {
        // Nothing to rebuild: the pass is only for the sidecar, and its failure is only logged.
        auto done = RunRebuildJob(env, job_workers, jobs, job, plan, false);
        if (done.ok()) crcs = std::move(done.value());
        else KLOG_WARN("ec volume %u: bitrot backfill skipped for %s: %s", id, home.data.c_str(), done.status().message().c_str());
      }
    }
    std::set<std::string> renamed_in;
    for (const auto& [shard, original] : plan.replace) {
      if (env->Rename(plan.outputs[shard], original) != 0) {
        out->status = GoError("rename " + plan.outputs[shard] + " " + original + ": " + GoErrno(errno));
        return;
      }
      renamed_in.insert(DirOf(original));
    }
    for (const std::string& dir : renamed_in) env->SyncDir(dir);
    guard.keep = true;
    // Fold the journal into the index beside which it lives.
    const std::string index_base = FileSizeOf(home.idx + ".ecx") >= 0 ? home.idx : home.data;
    Status folded = mounted[chosen] && mounted[chosen]->ecx_path() == index_base + ".ecx"
                        ? mounted[chosen]->FoldJournal()
                        : FoldEcJournalFile(env, index_base + ".ecx", index_base + ".ecj", offset_bytes);
    if (!folded.ok()) {
      out->status = GoError("RebuildEcxFile " + index_base + ": " + folded.message());
      return;
    }
    out->rebuilt = plan.Generated();
    if (!out->rebuilt.empty()) KLOG_INFO("ec volume %u: rebuilt shards %s", id, GoIntList(out->rebuilt).c_str());
    // A volume without a sidecar gets one from the bytes it has now, when
    // every shard was read or written here at the sidecar's block.
    bool whole = backfill && job.checksum_block == kEcChecksumBlock;
    std::vector<std::vector<uint32_t>> lists;
    for (int s = 0; whole && s < data + parity; ++s) {
      whole = crcs.count(s) > 0;
      if (whole) lists.push_back(crcs[s]);
    }
    if (whole) {
      std::string uuid(16, '\0');
      randombytes_buf(uuid.data(), uuid.size());
      const EcShardConfigInfo config{uint32_t(data), uint32_t(parity), 0, layout_block};
      if (Status s = EnvWriteFileAtomically(env, home.data + ".ecsum", EncodeEcsum(config, uint32_t(kEcChecksumBlock), job.shard_size, lists, uuid));
          !s.ok())
        KLOG_WARN("ec volume %u: bitrot backfill: write sidecar for %s: %s", id, home.data.c_str(), s.message().c_str());
      else
        KLOG_INFO("ec volume %u: bitrot backfill: wrote sidecar for %s after rebuild", id, home.data.c_str());
    }
  };
  InBackground(jobs_, std::move(work), [out, resp, finish = std::move(finish)] {
    if (out->status.ok())
      for (int s : out->rebuilt) resp->add_rebuilt_shard_ids(uint32_t(s));
    finish(out->status);
  });
}

void AdminService::VolumeEcShardsToVolume(const volume_server_pb::VolumeEcShardsToVolumeRequest& req,
                                          volume_server_pb::VolumeEcShardsToVolumeResponse*, Finish finish) {
  if (grpc::Status s = CheckMaintenance(); !s.ok()) return finish(s);
  const VolumeId id = req.volume_id();
  if (req.from_staged()) return AdoptStagedVolume(req, std::move(finish));
  const Store::EcByLocation all = store_->EcOf(id);
  if (all.empty()) return finish(GoError("ec volume " + std::to_string(id) + " not found"));
  std::shared_ptr<EcVolume> v = all.rbegin()->second;  // the last location's, as Go takes it
  const size_t location = all.rbegin()->first;
  if (v->collection() != req.collection())
    return finish(GoError("existing collection:" + v->collection() + " unexpected input: " + req.collection()));
  const int data = v->data_shards();
  // Every data shard mounted somewhere on this server; duplicated for the job.
  auto shard_fds = std::make_shared<std::vector<int>>();
  for (int s = 0; s < data; ++s) {
    int fd = -1;
    for (const auto& [li, holder] : all)
      if (fd < 0) fd = holder->DupShard(s, nullptr);
    if (fd < 0) {
      for (int open : *shard_fds) close(open);
      return finish(GoError("ec volume " + std::to_string(id) + " missing shard " + std::to_string(s)));
    }
    shard_fds->push_back(fd);
  }
  const VolumeFileNames names = store_->NamesIn(location, v->collection(), id);
  auto result = std::make_shared<grpc::Status>();
  Env* env = store_->env();
  JobWorkers* job_workers = job_workers_;
  BackgroundJobs* jobs = jobs_;
  const int64_t throttle = config_->maintenance_bytes_per_second;
  const int64_t compaction_throttle = config_->compaction_bytes_per_second;  // the offline compaction is a vacuum's
  auto work = [v, shard_fds, names, result, env, job_workers, jobs, throttle, compaction_throttle, id, data] {
    struct Closer {
      std::shared_ptr<std::vector<int>> fds;
      ~Closer() {
        for (int fd : *fds) close(fd);
      }
    } closer{shard_fds};
    const std::string base = names.Base(names.dir);
    if (Status s = v->FoldJournal(); !s.ok()) {
      *result = GoError("RebuildEcxFile " + v->ecx_path() + ": " + s.message());
      return;
    }
    // The version from the superblock at the start of shard 0.
    uint8_t header[8];
    auto sb = EnvPreadFull(env, (*shard_fds)[0], header, sizeof header, 0);
    auto super_block = sb.ok() ? ParseSuperBlockHeader(header) : Result<SuperBlock>(sb);
    if (!super_block.ok()) {
      *result = GoError("read ec volume " + base + " version: " + super_block.status().message());
      return;
    }
    const uint8_t version = super_block.value().version;
    // The live extent, and whether anything is live at all.
    uint64_t dat_size = 8, live = 0;
    const int fd = v->ecx_fd();
    Status walked = ForEachIdxEntry(fd, v->ecx_rows() * uint64_t(IdxEntrySize(v->offset_bytes())), v->offset_bytes(), [&](const IdxEntry& e) {
      if (e.size < 0) return;
      ++live;
      dat_size = std::max(dat_size, e.ByteOffset() + ActualSize(uint32_t(e.size), version));
    });
    if (!walked.ok()) {
      *result = GoError("FindDatFileSize " + base + ": " + walked.message());
      return;
    }
    if (live == 0) {
      *result = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "ec volume " + std::to_string(id) + " has no live entries");
      return;
    }
    // The layout comes from the encoded size, never from the live extent.
    int64_t shard_size = 0;
    for (const auto& [s, f] : v->shards()) shard_size = f.size;
    int64_t encoded = v->dat_file_size();
    if (encoded <= 0) {
      encoded = int64_t(data) * shard_size;
      if (shard_size > 0 && uint64_t(shard_size) % kEcLargeBlock == 0 &&
          dat_size > (uint64_t(shard_size) / kEcLargeBlock - 1) * kEcLargeBlock * uint64_t(data)) {
        *result = GoError("WriteDatFile " + base + ": shard size " + std::to_string(shard_size) + " of " + base +
                          " does not identify the block layout; re-encode to record the dat size in .vif");
        return;
      }
    }
    if (int64_t(dat_size) > encoded) {
      *result = GoError("WriteDatFile " + base + ": dat file size " + std::to_string(dat_size) + " exceeds encoded dat file size " + std::to_string(encoded));
      return;
    }
    const std::string tmp = base + ".dat.tmp";
    const int out = env->Open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      *result = GoError("WriteDatFile " + base + ": " + GoErrno(errno));
      return;
    }
    JobWorkers::EcDecodePlan plan;
    plan.volume_id = id;
    plan.layout = v->layout();
    plan.shard_dat_size = uint64_t(encoded) / uint64_t(data);
    plan.dat_size = dat_size;
    plan.bytes_per_second = throttle;
    auto stop = [jobs] { return jobs && jobs->stopping(); };
    Status decoded = job_workers ? job_workers->EcDecode(plan, *shard_fds, out, stop) : Status::Unavailable("no job worker");
    struct stat st;
    if (decoded.ok() && (env->Fstat(out, &st) != 0 || uint64_t(st.st_size) < dat_size))
      decoded = Status::Corruption("decoded " + tmp + " is " + std::to_string(st.st_size) + " bytes, short of the " + std::to_string(dat_size) +
                                   " its ec index references");
    env->Close(out);
    if (decoded.ok() && env->Rename(tmp, base + ".dat") != 0) decoded = Status::IOError("rename " + tmp + ": " + GoErrno(errno));
    if (!decoded.ok()) {
      env->Unlink(tmp);
      *result = GoError("WriteDatFile " + base + ": " + decoded.message());
      return;
    }
    env->SyncDir(names.dir);
    // The .idx: the index as it stands (journal folded), rows in id order.
    std::string index(size_t(v->ecx_rows()) * size_t(IdxEntrySize(v->offset_bytes())), '\0');
    Status idx = index.empty() ? Status::Ok() : EnvPreadFull(env, fd, index.data(), index.size(), 0);
    if (idx.ok()) idx = EnvWriteFileAtomically(env, names.Idx(), index);
    if (!idx.ok()) {
      *result = GoError("WriteIdxFileFromEcIndex " + names.Base(names.idx_dir) + ": " + idx.message());
      return;
    }
    EnvRemoveIfExists(env, base + ".ecsum");
    KLOG_INFO("ec volume %u decoded into %s.dat (%llu bytes, %llu live needles)", id, base.c_str(), static_cast<unsigned long long>(dat_size),
              static_cast<unsigned long long>(live));
    // Go compacts the decoded files offline: deleted needles' bytes go, the
    // revision goes up by one. Its failure leaves the decoded files as they
    // are, and is only logged, as Go's.
    if (Status c = CompactDecodedVolume(names, v->offset_bytes(), compaction_throttle, env, job_workers, jobs); !c.ok())
      KLOG_WARN("CompactVolumeFiles %s: %s", base.c_str(), c.message().c_str());
  };
  InBackground(jobs_, std::move(work), [result, finish = std::move(finish)] { finish(*result); });
}

void AdminService::AdoptStagedVolume(const volume_server_pb::VolumeEcShardsToVolumeRequest& req, Finish finish) {
  const VolumeId id = req.volume_id();
  const std::string staged = "staged volume " + std::to_string(id);
  if (!IsSafeCollectionName(req.collection())) return finish(GoError("invalid collection " + GoQuote(req.collection())));
  if (store_->Find(id)) return finish(GoError(staged + " already exists on this server"));
  // The first disk of the type with the pushed .dat (the type named as a
  // ReceiveFile names it: "" and "hdd" are the same disks).
  const std::string want = req.disk_type() == "hdd" ? "" : req.disk_type();
  const auto& locations = store_->locations();
  size_t where = locations.size();
  for (size_t i = 0; i < locations.size() && where == locations.size(); ++i)
    if (locations[i].disk_type == want && FileExists(store_->NamesIn(i, req.collection(), id).Base(locations[i].dir) + ".dat.copying")) where = i;
  if (where == locations.size()) return finish(GoError(staged + ": no .dat.copying found on a " + req.disk_type() + " disk"));
  const VolumeFileNames names = store_->NamesIn(where, req.collection(), id);
  const std::string base = names.Base(names.dir);  // ReceiveFile stages all three here
  for (const char* ext : {".idx", ".vif"})
    if (!FileExists(base + ext + ".copying")) return finish(GoError(staged + " missing " + ext + ".copying"));
  for (const char* ext : {".dat", ".idx", ".vif"})
    if (receiving_.count(base + ext + ".copying")) return finish(GoError(staged + ": its " + ext + " is still being received"));
  auto failed = std::make_shared<std::string>();
  Env* env = store_->env();
  // Until every file has its name, a .note says these are not a volume (a
  // load skips them). The index goes first: with -dir.idx on another file
  // system it is copied, which can fail while nothing else has moved. A
  // failed rename puts back what was moved; the note stays if that fails too.
  auto adopt = [env, names, base, id, failed] {
    const std::string note = base + ".note";
    if (Status s = EnvWriteFileAtomically(env, note, "adopting decoded volume " + std::to_string(id)); !s.ok()) {
      *failed = "write .note for volume " + std::to_string(id) + ": " + s.message();
      return;
    }
    std::vector<std::pair<std::string, std::string>> moved;
    auto undo = [&] {
      bool restored = true;
      for (auto it = moved.rbegin(); it != moved.rend(); ++it) restored = env->Rename(it->second, it->first) == 0 && restored;
      if (restored) env->Unlink(note);
    };
    const std::string staged_idx = base + ".idx.copying";
    if (names.Idx() != base + ".idx") {
      std::string index;
      Status read = EnvReadWholeFile(env, staged_idx, &index);
      if (read.ok()) read = EnvWriteFileAtomically(env, names.Idx(), index);
      if (!read.ok()) {
        *failed = "rename staged .idx for volume " + std::to_string(id) + ": " + read.message();
        env->Unlink(note);
        return;
      }
      env->Unlink(staged_idx);
    } else if (env->Rename(staged_idx, names.Idx()) != 0) {
      *failed = "rename staged .idx for volume " + std::to_string(id) + ": " + GoErrno(errno);
      env->Unlink(note);
      return;
    } else {
      moved.emplace_back(staged_idx, names.Idx());
    }
    for (const std::string& target : {names.Vif(), names.Dat()}) {
      const std::string ext = target.substr(target.rfind('.'));
      if (env->Rename(base + ext + ".copying", target) != 0) {
        *failed = "rename staged " + ext + " for volume " + std::to_string(id) + ": " + GoErrno(errno);
        undo();
        return;
      }
      moved.emplace_back(base + ext + ".copying", target);
    }
    env->SyncDir(names.dir);
    if (names.idx_dir != names.dir) env->SyncDir(names.idx_dir);
    if (env->Unlink(note) != 0) *failed = "remove .note for volume " + std::to_string(id) + ": " + GoErrno(errno);
    env->SyncDir(names.dir);
  };
  OnWriter(store_->LocationWriter(where), std::move(adopt), [this, id, staged, failed, finish = std::move(finish)]() mutable {
    if (!failed->empty()) return finish(GoError(*failed));
    volume_server_pb::VolumeMountRequest mount;
    mount.set_volume_id(id);
    VolumeMount(mount, nullptr, [staged, finish = std::move(finish)](const grpc::Status& s) {
      finish(s.ok() ? s : GoError("mount " + staged + ": " + s.error_message()));
    });
  });
}

}  // namespace kelp
