#include "worker-http/chunked_source.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "common/file_id.h"
#include "common/go_quote.h"
#include "worker-http/peer_queue.h"

namespace kelp {
namespace {

// The request target for a chunk's file id, as Go's net/url makes it: a
// control byte refuses the URL; bytes a request line cannot carry are
// percent-encoded, so nothing in a manifest can end the request line early.
bool ChunkTarget(std::string_view fid, std::string* target) {
  static const char* kHex = "0123456789ABCDEF";
  *target = "/";
  for (const char ch : fid) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return false;
    if (c == ' ' || c >= 0x80 || std::strchr("\"<>\\^`{|}", c)) {
      target->push_back('%');
      target->push_back(kHex[c >> 4]);
      target->push_back(kHex[c & 15]);
    } else {
      target->push_back(ch);
    }
  }
  return true;
}

}  // namespace

// Shared with the callbacks of lookups and exchanges, which may outlive the source.
struct ChunkedSource::State : std::enable_shared_from_this<State> {
  ChunkFetcher fetcher;
  std::vector<ChunkInfo> chunks;
  std::vector<ChunkPiece> pieces;
  size_t piece = 0;               // the piece being fetched
  int64_t piece_left = 0;         // its bytes still to come
  std::shared_ptr<http::ClientExchange> exchange;
  PeerQueue queue;  // fetched, not yet taken by the server
  bool started = false, ended = false, failed = false, gone = false;
  std::function<void(Status)> first;
  std::function<void()> wake;

  void Wake() {
    if (auto w = std::move(wake)) {
      wake = nullptr;
      w();
    }
  }
  void Tell(Status s) {
    if (auto f = std::move(first)) {
      first = nullptr;
      f(std::move(s));
    }
  }
  void Fail(const std::string& message) {
    if (failed || gone) return;
    failed = ended = true;
    if (exchange) exchange->Cancel();
    exchange.reset();
    Tell(Status::Unavailable(message));
    Wake();
  }
  void Fetch(size_t index);
};

void ChunkedSource::State::Fetch(size_t index) {
  if (gone || failed) return;
  piece = index;
  exchange.reset();
  if (index >= pieces.size()) {
    ended = true;
    Tell(Status::Ok());
    return Wake();
  }
  const ChunkPiece& p = pieces[index];
  const ChunkInfo& c = chunks[p.chunk];
  piece_left = p.length;
  // Go's LookupFileId: exactly two comma-separated parts.
  auto split = SplitFileId(c.fid);
  auto vid = split.ok() ? ParseVolumeId(split.value().vid) : Result<VolumeId>(split.status());
  if (!vid.ok() || split.value().key.find(',') != std::string_view::npos) return Fail("Invalid fileId " + c.fid);
  auto self = shared_from_this();
  fetcher.locator->Lookup(vid.value(), [self, index](Status s, const std::vector<VolumeLocation>& found) {
    State& st = *self;
    if (st.gone || st.failed) return;
    if (!s.ok()) return st.Fail(s.message());
    if (found.empty()) return st.Fail("File Not Found");
    static thread_local std::mt19937 rng{std::random_device{}()};
    const VolumeLocation& at = found[std::uniform_int_distribution<size_t>(0, found.size() - 1)(rng)];
    const ChunkPiece& p = st.pieces[index];
    const ChunkInfo& c = st.chunks[p.chunk];
    const bool ranged = p.from > 0 || p.length < c.size;
    const std::string url = "http://" + at.url + "/" + c.fid;
    http::ClientRequest req;
    req.host_port = at.url;
    if (!ChunkTarget(c.fid, &req.target)) return st.Fail("parse " + GoQuote(url) + ": net/url: invalid control character in URL");
    if (ranged) req.headers.emplace_back("Range", "bytes=" + std::to_string(p.from) + "-" + std::to_string(p.from + p.length - 1));
    if (st.fetcher.read_jwt) {
      if (std::string token = st.fetcher.read_jwt(c.fid); !token.empty()) req.headers.emplace_back("Authorization", "BEARER " + token);
    }
    req.timeout_ms = 30ull * 60 * 1000;
    http::ClientHandlers h;
    h.on_headers = [self, url, from = p.from](http::ClientResponse& head) {
      State& st = *self;
      if (head.status == 416) return st.Fail("Invalid range");
      if (head.status == 200 && from > 0) return st.Fail("Range requests are not supported by the remote server");
      if (head.status != 200 && head.status != 206)
        return st.Fail("Read chunk needle error: [" + std::to_string(head.status) + "] " + url);
      st.Tell(Status::Ok());
    };
    h.on_body = [self, index](const char* d, size_t n) {
      State& st = *self;
      if (st.failed || st.gone || st.piece != index) return;
      const size_t take = size_t(std::min<int64_t>(int64_t(n), st.piece_left));
      st.piece_left -= int64_t(take);
      // A finished piece's exchange is not paused: it is cancelled right after.
      st.queue.Push(d, take, st.piece_left > 0 ? st.exchange.get() : nullptr);
      if (st.piece_left == 0) {
        // A whole chunk answered where a prefix was wanted: the rest is not needed.
        if (st.exchange) st.exchange->Cancel();
        st.Fetch(index + 1);
      }
      st.Wake();
    };
    h.on_done = [self, index, url](Status s) {
      State& st = *self;
      if (st.failed || st.gone || st.piece != index) return;
      if (!s.ok()) return st.Fail(s.message());
      if (st.piece_left > 0) return st.Fail("chunk " + url + " is shorter than its manifest says");
      st.Fetch(index + 1);
    };
    st.queue.ForgetPause();
    st.exchange = st.fetcher.client->Stream(std::move(req), std::move(h));
  });
}

ChunkedSource::ChunkedSource(ChunkFetcher fetcher, std::vector<ChunkInfo> chunks, int64_t start, int64_t length)
    : state_(std::make_shared<State>()), length_(0) {
  state_->fetcher = std::move(fetcher);
  state_->pieces = PiecesFor(chunks, start, length);
  state_->chunks = std::move(chunks);
  // The body is what the chunks cover of the span.
  for (const ChunkPiece& p : state_->pieces) length_ += p.length;
}

ChunkedSource::~ChunkedSource() {
  state_->gone = true;
  state_->wake = nullptr;
  state_->first = nullptr;
  if (state_->exchange) state_->exchange->Cancel();
}

void ChunkedSource::Start(std::function<void(Status)> first) {
  if (state_->started) return;
  state_->started = true;
  state_->first = std::move(first);
  state_->Fetch(0);
}

bool ChunkedSource::Next(std::string* chunk) {
  if (!state_->started) Start(nullptr);
  return state_->queue.Pop(chunk, state_->exchange.get());
}

bool ChunkedSource::Failed() const { return state_->failed; }

bool ChunkedSource::Pending() const { return !state_->ended && state_->queue.empty(); }

void ChunkedSource::OnReady(std::function<void()> wake) {
  state_->wake = std::move(wake);
  if (state_->ended || !state_->queue.empty()) state_->Wake();
}

}  // namespace kelp
