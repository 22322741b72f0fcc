#include "worker-http/ec/ec_stream.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/needle.h"
#include "worker-http/off_loop.h"

namespace kelp {
namespace {

// The record offset of a v2/v3 needle's data: after the header and the data size.
constexpr uint64_t kDataAt = kNeedleHeaderSize + 4;

// Shared by the stream and the gathers in flight, which may outlive it (the
// connection closed): only the loop touches it.
struct StreamState {
  uv_loop_t* loop;
  EcPeers* peers;
  std::shared_ptr<const EcNeedleSite> site;
  uint64_t next_at = 0;     // record offset of the next window to gather
  uint64_t to_gather = 0;   // bytes not yet asked for
  uint64_t to_hand = 0;     // bytes not yet handed to the server
  bool verify = false;
  uint32_t expected = 0, crc = 0;
  bool in_flight = false, failed = false, closed = false;
  std::deque<std::pair<http::ByteBuffer, size_t>> ready;  // at most one window waits
  std::function<void()> wake;

  void Wake() {
    if (!wake) return;
    auto w = std::move(wake);
    wake = nullptr;
    w();
  }
};

// A gather that did not succeed: "already deleted" as NotFound, anything else as IOError.
Status EcGatherStatus(EcGathered got, std::string error) {
  if (got == EcGathered::kDeleted) return Status::NotFound("already deleted");
  return Status::IOError(std::move(error));
}

void GatherNext(const std::shared_ptr<StreamState>& st) {
  if (st->closed || st->in_flight || st->failed || st->to_gather == 0 || !st->ready.empty()) return;
  const uint64_t n = std::min(st->to_gather, kEcStreamWindow);
  const uint64_t at = st->next_at;
  st->next_at += n;
  st->to_gather -= n;
  st->in_flight = true;
  struct Job {
    http::ByteBuffer buf;
    EcGathered got = EcGathered::kError;
    std::string error;
  };
  auto job = std::make_shared<Job>();
  job->buf = http::ByteBuffer::Uninitialized(size_t(n));
  RunOffLoop(
      st->loop,
      [st, job, at, n] { job->got = GatherRecordRange(st->peers, *st->site, at, n, reinterpret_cast<uint8_t*>(job->buf.data()), &job->error); },
      [st, job, n] {
        st->in_flight = false;
        if (st->closed) return;
        if (job->got != EcGathered::kOk) {
          KLOG_WARN("ec read %u,%llx: %s", unsigned(st->site->vid), static_cast<unsigned long long>(st->site->id),
                    job->got == EcGathered::kDeleted ? "deleted while streamed" : job->error.c_str());
          st->failed = true;
        } else {
          if (st->verify) st->crc = Crc32cUpdate(st->crc, job->buf.data(), size_t(n));
          if (st->verify && st->to_gather == 0 && st->crc != st->expected && LegacyCrcValue(st->crc) != st->expected) {
            KLOG_ERROR("invalid CRC while streaming ec needle %u,%llx (got %08x, want %08x)", unsigned(st->site->vid),
                       static_cast<unsigned long long>(st->site->id), st->crc, st->expected);
            st->failed = true;
          } else {
            st->ready.emplace_back(std::move(job->buf), size_t(n));
          }
        }
        st->Wake();
      });
}

class EcDataStream : public http::BodySource {
 public:
  explicit EcDataStream(std::shared_ptr<StreamState> st) : st_(std::move(st)) { GatherNext(st_); }
  ~EcDataStream() override {
    st_->closed = true;
    st_->wake = nullptr;
  }
  EcDataStream(const EcDataStream&) = delete;
  EcDataStream& operator=(const EcDataStream&) = delete;

  uint64_t Length() const override { return st_->to_hand + handed_; }
  bool Next(std::string* out) override {
    http::ByteBuffer buf;
    size_t n = 0;
    if (!NextBytes(&buf, &n)) return false;
    out->assign(buf.data(), n);
    return true;
  }
  bool ProvidesBytes() const override { return true; }
  bool NextBytes(http::ByteBuffer* out, size_t* len) override {
    if (st_->failed || st_->ready.empty()) return false;
    *out = std::move(st_->ready.front().first);
    *len = st_->ready.front().second;
    st_->ready.pop_front();
    st_->to_hand -= *len;
    handed_ += *len;
    GatherNext(st_);
    return true;
  }
  bool Failed() const override { return st_->failed; }
  bool Pending() const override { return !st_->failed && st_->ready.empty() && st_->to_hand > 0; }
  void OnReady(std::function<void()> wake) override {
    st_->wake = std::move(wake);
    GatherNext(st_);
  }

 private:
  std::shared_ptr<StreamState> st_;
  uint64_t handed_ = 0;
};

}  // namespace


std::unique_ptr<http::BodySource> EcBlobData::Slice(uint64_t start, uint64_t length) {
  auto st = std::make_shared<StreamState>();
  st->loop = loop_, st->peers = peers_, st->site = site_;
  start = std::min(start, data_size_);
  length = std::min(length, data_size_ - start);
  st->next_at = kDataAt + start;
  st->to_gather = st->to_hand = length;
  st->verify = start == 0 && length == data_size_;
  st->expected = crc_;
  return std::make_unique<EcDataStream>(std::move(st));
}

void EcBlobData::Peek(uint64_t at, size_t n, std::function<void(Status, std::string)> done) {
  at = std::min(at, data_size_);
  const uint64_t len = std::min<uint64_t>(n, data_size_ - at);
  struct Job {
    std::string bytes;
    EcGathered got = EcGathered::kError;
    std::string error;
  };
  auto job = std::make_shared<Job>();
  job->bytes.resize(size_t(len));
  EcPeers* peers = peers_;
  auto site = site_;
  RunOffLoop(
      loop_,
      [peers, site, job, at, len] {
        job->got = GatherRecordRange(peers, *site, kDataAt + at, len, reinterpret_cast<uint8_t*>(job->bytes.data()), &job->error);
      },
      [job, done = std::move(done)] {
        if (job->got != EcGathered::kOk) return done(EcGatherStatus(job->got, job->error), std::string());
        done(Status::Ok(), std::move(job->bytes));
      });
}

void EcBlobData::ReadWhole(std::function<void(Status, StoredBlob)> done) {
  struct Job {
    StoredBlob blob;
    EcGathered got = EcGathered::kError;
    std::string error;
    Status parsed;
  };
  auto job = std::make_shared<Job>();
  const uint64_t total = ActualSize(size_, version_);
  EcPeers* peers = peers_;
  auto site = site_;
  const uint32_t size = size_;
  const uint8_t version = version_;
  RunOffLoop(
      loop_,
      [peers, site, job, total, size, version] {
        job->blob.record = http::ByteBuffer::Uninitialized(size_t(total));
        auto* p = reinterpret_cast<uint8_t*>(job->blob.record.data());
        job->got = GatherRecordRange(peers, *site, 0, total, p, &job->error);
        if (job->got == EcGathered::kOk) job->parsed = ParseNeedle(p, size_t(total), size, version, &job->blob.needle);
      },
      [job, done = std::move(done)] {
        if (job->got != EcGathered::kOk) return done(EcGatherStatus(job->got, job->error), StoredBlob{});
        if (!job->parsed.ok()) return done(job->parsed, StoredBlob{});
        done(Status::Ok(), std::move(job->blob));
      });
}

}  // namespace kelp
