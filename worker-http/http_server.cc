#include "worker-http/http_server.h"

#include "common/log.h"

#include "worker-http/content_sniff.h"
#include "worker-http/json_writer.h"
#include "worker-http/request_id.h"
#include "worker-http/request_parser.h"
#include "worker-http/header_block.h"

#include <strings.h>

#include <malloc.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

namespace kelp::http {

namespace {

std::string HttpDate() {
  static time_t cached_at = 0;
  static char cached[64];
  const time_t now = time(nullptr);
  if (now != cached_at) {
    tm t;
    gmtime_r(&now, &t);
    strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &t);
    cached_at = now;
  }
  return cached;
}

}  // namespace

// How long an idle connection stays open once its worker drains.
constexpr uint64_t kDrainGraceMs = 1000;
// A request's header must arrive whole within this long of its first byte (or
// within -idleTimeout when that is shorter), however steadily it trickles in:
// a slowloris client gives up its slot instead of keeping it forever.
constexpr uint64_t kHeaderDeadlineMs = 30000;

class Connection {
 public:
  // Every libuv callback finds its connection through this: a handle whose
  // owner was already freed stops the worker here with a clear message (and is
  // an ASan use-after-free report in sanitizer builds).
  static Connection* Of(const uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    if (c->magic_ != kLive) {
      KLOG_ERROR("libuv callback on a freed connection (handle %p, type %d)", static_cast<const void*>(h), int(h->type));
      abort();
    }
    return c;
  }
  template <typename H>
  static Connection* Of(const H* h) { return Of(reinterpret_cast<const uv_handle_t*>(h)); }

  explicit Connection(Server* server)
      : server_(server),
        alive_(std::make_shared<bool>(true)),
        parser_(ParserLimits{server->limits_.max_header_bytes, server->limits_.max_body_bytes}) {
    parser_.on_expect_continue = [this] {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      WriteRaw(std::string(kContinue, sizeof kContinue - 1));
    };
    if (server->admission_.wanted) parser_.pause_after_headers = server->admission_.wanted;
    uv_tcp_init(server->loop_, &tcp_);
    tcp_.data = this;
    uv_timer_init(server->loop_, &idle_);
    idle_.data = this;
    uv_timer_init(server->loop_, &write_deadline_);
    write_deadline_.data = this;
  }

  uv_tcp_t* tcp() { return &tcp_; }

  void Start() {
    sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      char ip[64] = {0};
      if (ss.ss_family == AF_INET) uv_ip4_name(reinterpret_cast<sockaddr_in*>(&ss), ip, sizeof ip);
      else uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&ss), ip, sizeof ip);
      remote_ip_ = ip;
    }
    uv_tcp_nodelay(&tcp_, 1);
    ResumeReading();
  }

  // An idle keep-alive connection gets a short grace: a request already on its
  // way is still answered (with Connection: close) instead of meeting a reset.
  void DrainRequested() {
    if (busy_ || closing_) return;
    ArmIdleTimer(kDrainGraceMs);
  }

  void Close() {
    if (closing_) return;
    closing_ = true;
    *alive_ = false;
    hold_.reset();
    response_hold_.reset();
    uv_timer_stop(&idle_);
    uv_timer_stop(&write_deadline_);
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    // The handles live inside this object, and libuv runs close callbacks in
    // an order of its own: the object goes only after the last of them.
    closes_pending_ = 3;
    uv_close(reinterpret_cast<uv_handle_t*>(&idle_), &Connection::HandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&write_deadline_), &Connection::HandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::HandleClosed);
  }

  // A volatile store, so that it is not dropped as a store to a dying object.
  ~Connection() { *static_cast<volatile uint64_t*>(&magic_) = kFreed; }

 private:
  // The body cannot be read to its end (the client closed its side mid-body, a
  // chunk line Go refuses): Go's upload handler answers 400 with the reader's
  // error as JSON, and the connection closes.
  void BodyError(const std::string& message) {
    std::string body;
    AppendGoJsonString(&body, message);
    body = "{\"error\":" + body + "}";
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "application/json"}, {"Server", "SeaweedFS Volume " + server_->server_name_},
        {"X-Amz-Request-Id", NewRequestId()}, {"X-Content-Type-Options", "nosniff"}};
    Refuse(ResponseHead(400, std::move(headers), HeadFraming{false, false, body.size(), HttpDate()}) + body);
  }

  // Go's net/http answers a request it will not read, then closes.
  void Refuse(const Refusal& r) {
    switch (r.form) {
      case Refusal::Form::kNetHttp:
        return Refuse("HTTP/1.1 " + r.status + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + r.body);
      case Refusal::Form::kExpectationFailed:
        return Refuse(ResponseHead(417, {}, HeadFraming{false, false, 0, HttpDate()}));
      case Refusal::Form::kBodyError:
        return BodyError(r.body);
    }
  }

  void Refuse(std::string answer) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    busy_ = true;
    WriteRaw(std::move(answer), [this] { CloseAfterAnswer(); });
  }

  // Closing a socket with unread input makes the kernel send RST, which can
  // destroy an answer the client has not read yet. So after a last answer the
  // connection sends FIN, then reads and discards until the client closes or
  // kDrainGraceMs pass.
  void CloseAfterAnswer() {
    if (closing_) return;
    busy_ = true;  // nothing more is dispatched on this connection
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    auto* req = new uv_shutdown_t;
    if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), [](uv_shutdown_t* req, int status) {
          Connection* c = Of(req->handle);
          delete req;
          if (c->closing_) return;
          if (status < 0) return c->Close();
          uv_timer_start(&c->idle_, [](uv_timer_t* t) { Of(t)->Close(); }, kDrainGraceMs, 0);
          uv_read_start(
              reinterpret_cast<uv_stream_t*>(&c->tcp_),
              &Connection::ReadBuffer,
              [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                if (n < 0) Of(s)->Close();
              });
        }) != 0) {
      delete req;
      Close();
    }
  }

  // Every read of a connection goes into its one buffer.
  static void ReadBuffer(uv_handle_t* h, size_t, uv_buf_t* buf) {
    Connection* c = Of(h);
    buf->base = c->read_buf_;
    buf->len = sizeof c->read_buf_;
  }

  // Bytes the kernel holds for this connection that the loop has not read.
  bool InputWaiting() {
    uv_os_fd_t fd;
    int n = 0;
    return uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
  }

  static void HandleClosed(uv_handle_t* h) {
    Connection* c = Of(h);
    if (--c->closes_pending_ > 0) return;
    c->server_->Closed(c);
    delete c;
  }

  // Closes the connection after `ms` without input while no request is being
  // answered, and once a header has taken kHeaderDeadlineMs. 0: no limit
  // (-idleTimeout=0, as in Go), the header deadline still holds.
  void ArmIdleTimer(uint64_t ms) {
    if (header_started_ms_ != 0) {
      const uint64_t limit = ms ? std::min(ms, kHeaderDeadlineMs) : kHeaderDeadlineMs;
      const uint64_t spent = uv_now(server_->loop_) - header_started_ms_;
      ms = spent >= limit ? 1 : std::min(ms ? ms : limit, limit - spent);
    }
    if (ms == 0) return (void)uv_timer_stop(&idle_);
    uv_timer_start(&idle_, [](uv_timer_t* t) {
      Connection* c = Of(t);
      if (c->busy_) return;
      // A request that reached the socket as the timer fired is read and
      // answered rather than cut (a partial header past its deadline is not).
      if (c->header_started_ms_ == 0 && c->InputWaiting()) return c->ArmIdleTimer(kDrainGraceMs);
      c->Close();
    }, ms, 0);
  }

  uint64_t ReadTimeoutMs() const { return server_->draining_ ? kDrainGraceMs : server_->limits_.idle_timeout_ms; }

  void ResumeReading() {
    if (closing_) return;
    ArmIdleTimer(ReadTimeoutMs());
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&tcp_),
        &Connection::ReadBuffer,
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          Connection* c = Of(s);
          if (n == UV_EOF && c->parser_.in_body()) return c->BodyError("unexpected EOF");
          if (n < 0) return c->Close();
          if (n == 0) return;
          c->Feed(buf->base, size_t(n));
        });
  }

  void Feed(const char* data, size_t len) {
    if (!parser_.in_body() && header_started_ms_ == 0) header_started_ms_ = uv_now(server_->loop_);
    size_t used = 0;
    const RequestParser::Outcome outcome = parser_.Feed(data, len, &used);
    if (parser_.in_body() || outcome == RequestParser::Outcome::kHeaders || outcome == RequestParser::Outcome::kRequest)
      header_started_ms_ = 0;
    ArmIdleTimer(ReadTimeoutMs());
    switch (outcome) {
      case RequestParser::Outcome::kNeedMore:
        return;
      case RequestParser::Outcome::kHeaders:
        return Admit(std::string(data + used, len - used));
      case RequestParser::Outcome::kRequest:
        unparsed_.assign(data + used, len - used);
        return Dispatch();
      case RequestParser::Outcome::kError:
        return Refuse(parser_.Refused());
    }
  }

  // The body waits (unread, the socket not read) until admission decides.
  void Admit(std::string rest) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    uv_timer_stop(&idle_);
    busy_ = true;
    std::weak_ptr<bool> alive = alive_;
    Request& head = parser_.request();
    head.remote_ip = remote_ip_;
    server_->admission_.decide(head, [this, alive, rest = std::move(rest)](std::shared_ptr<void> hold,
                                                                         std::unique_ptr<Response> refusal) {
      if (alive.expired() || !*alive.lock()) return;
      if (refusal) {
        keep_alive_ = false;
        refusal->close_connection = true;
        return Send(std::move(*refusal));
      }
      hold_ = std::move(hold);
      busy_ = false;
      parser_.ContinueBody();
      held_ = rest;
      if (!held_.empty()) Feed(held_.data(), held_.size());
      if (!busy_ && !closing_) ResumeReading();
    });
  }

  void Dispatch() {
    Request& req = parser_.request();
    req.remote_ip = remote_ip_;
    req.keep_alive = req.keep_alive && !server_->draining_;
    keep_alive_ = req.keep_alive;
    busy_ = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    uv_timer_stop(&idle_);
    std::weak_ptr<bool> alive = alive_;
    const bool head = req.method == "HEAD";
    server_->handler_(req, [this, alive, head](Response r) {
      if (alive.expired() || !*alive.lock()) return;
      r.head_only = r.head_only || head;
      Send(std::move(r));
    });
  }

  void Send(Response r) {
    response_hold_ = std::move(r.hold);
    const bool keep = keep_alive_ && !r.close_connection && !server_->draining_;
    const uint64_t length = r.stream ? r.stream->Length() : r.BodyView().size();
    // Go sniffs a Content-Type from the first body bytes when the handler set
    // neither Content-Type nor Content-Encoding.
    const bool bodiless = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    if (!bodiless && !r.head_only && !r.stream && !r.BodyView().empty() && !r.Has("Content-Type") && !r.Has("Content-Encoding"))
      r.headers.emplace_back("Content-Type", DetectContentType(r.BodyView()));
    std::string head = ResponseHead(r.status, std::move(r.headers), HeadFraming{keep, bodiless, length, HttpDate()});
    keep_after_ = keep;
    if (r.head_only || bodiless) {
      WriteRaw(std::move(head), [this] { Finished(); });
      return;
    }
    if (!r.stream) {
      if (!r.buffer.bytes || r.body_length <= 16 * 1024) {
        head += r.BodyView();
        WriteRaw(std::move(head), [this] { Finished(); });
      } else {
        // Large bodies go out with the header in one vectored write, uncopied.
        WriteRaw(std::move(head), std::move(r.buffer), r.body_offset, r.body_length, [this] { Finished(); });
      }
      return;
    }
    stream_ = std::move(r.stream);
    streamed_ = 0;
    WriteRaw(std::move(head), [this] { PumpStream(); });
  }

  void PumpStream() {
    if (stream_->ProvidesBytes()) {
      ByteBuffer bytes;
      size_t n = 0;
      if (stream_->NextBytes(&bytes, &n)) {
        streamed_ += n;
        return WriteRaw(std::string(), std::move(bytes), 0, n, [this] { PumpStream(); });
      }
      return EndStream();
    }
    std::string chunk;
    if (!stream_->Next(&chunk)) return EndStream();
    streamed_ += chunk.size();
    WriteRaw(std::move(chunk), [this] { PumpStream(); });
  }

  void EndStream() {
    // The source outlives the callback only while this connection holds it.
    if (stream_->Pending()) return stream_->OnReady([this] { PumpStream(); });
    // A body shorter than its Content-Length must not leave the client waiting.
    const bool failed = stream_->Failed() || streamed_ != stream_->Length();
    stream_.reset();
    if (failed) return Close();
    Finished();
  }

  // A drain that began while a keep-alive answer was on its way does not close
  // the connection here: the client was promised it may send again, so the
  // next request is answered, with Connection: close, within the drain grace.
  void Finished() {
    busy_ = false;
    hold_.reset();
    response_hold_.reset();
    if (!keep_after_) return CloseAfterAnswer();
    parser_.Next();
    if (!unparsed_.empty()) {
      std::string pending = std::move(unparsed_);
      unparsed_.clear();
      held_ = std::move(pending);
      Feed(held_.data(), held_.size());
      if (busy_ || closing_) return;
    }
    ResumeReading();
  }

  struct WriteReq {
    uv_write_t req;
    std::string data;
    ByteBuffer tail;
    std::function<void()> done;
  };

  void WriteRaw(std::string data, std::function<void()> done = nullptr) {
    WriteRaw(std::move(data), ByteBuffer{}, 0, 0, std::move(done));
  }

  // Writes `data` then tail[tail_offset, tail_offset + tail_len).
  void WriteRaw(std::string data, ByteBuffer tail, size_t tail_offset, size_t tail_len, std::function<void()> done) {
    if (closing_) return;
    auto* w = new WriteReq{{}, std::move(data), std::move(tail), std::move(done)};
    w->req.data = w;
    uv_buf_t bufs[2] = {uv_buf_init(w->data.data(), unsigned(w->data.size())),
                        uv_buf_init(w->tail.data() + tail_offset, unsigned(tail_len))};
    const int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, tail_len ? 2 : 1, [](uv_write_t* req, int status) {
      auto* w = static_cast<WriteReq*>(req->data);
      Connection* c = Of(req->handle);
      --c->writes_pending_;
      ++c->writes_done_;
      if (status < 0) c->Close();
      else if (w->done && !c->closing_) w->done();
      delete w;
    });
    if (rc != 0) {
      delete w;
      return Close();
    }
    ++writes_pending_;
    if (tcp_.write_queue_size > 0 && !uv_is_active(reinterpret_cast<uv_handle_t*>(&write_deadline_))) ArmWriteDeadline();
  }

  // Go's volume server sets a write deadline of -idleTimeout before each
  // write: a client that stops reading is dropped once no byte of its answer
  // has left for that long, and what its answer held (buffers, a read hold,
  // the blob's file) is freed with it. Progress is a completed write or a
  // shorter libuv write queue; 0 disables it, as in Go.
  void ArmWriteDeadline() {
    const uint64_t ms = server_->limits_.idle_timeout_ms;
    if (ms == 0) return;
    deadline_queue_ = tcp_.write_queue_size;
    deadline_done_ = writes_done_;
    uv_timer_start(&write_deadline_, [](uv_timer_t* t) {
      Connection* c = Of(t);
      if (c->writes_pending_ == 0) return;
      if (c->writes_done_ != c->deadline_done_ || c->tcp_.write_queue_size < c->deadline_queue_) return c->ArmWriteDeadline();
      c->Close();
    }, ms, 0);
  }

  static constexpr uint64_t kLive = 0x6b656c70636f6e6eull, kFreed = 0xdeadc0deull;
  uint64_t magic_ = kLive;
  int closes_pending_ = 0;  // handles whose close callback has not run yet
  Server* server_;
  std::shared_ptr<bool> alive_;
  RequestParser parser_;
  uv_tcp_t tcp_{};
  uv_timer_t idle_{};
  uv_timer_t write_deadline_{};
  uint64_t header_started_ms_ = 0;  // loop time of a partial header's first byte; 0: none pending
  size_t writes_pending_ = 0, writes_done_ = 0;
  size_t deadline_queue_ = 0, deadline_done_ = 0;  // write progress when the deadline was armed
  std::string unparsed_, held_, remote_ip_;
  bool busy_ = false, closing_ = false, keep_after_ = true, keep_alive_ = true;
  std::unique_ptr<BodySource> stream_;
  uint64_t streamed_ = 0;  // bytes of stream_ written so far
  std::shared_ptr<void> hold_, response_hold_;  // admission's and the handler's, until the answer is out
  char read_buf_[64 * 1024];
};

Server::Server(uv_loop_t* loop, Handler handler, ServerLimits limits, std::string server_name)
    : loop_(loop), handler_(std::move(handler)), limits_(limits), server_name_(std::move(server_name)) {}

bool Server::Listen(int fd) {
  auto* t = new uv_tcp_t;
  uv_tcp_init(loop_, t);
  t->data = this;
  int rc = uv_tcp_open(t, fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(t), 4096, &Server::OnConnection);
  if (rc != 0) {
    KLOG_ERROR("listen on inherited socket %d: %s", fd, uv_strerror(rc));
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return false;
  }
  listeners_.push_back(t);
  return true;
}

void Server::OnConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<Server*>(listener->data);
  if (status < 0 || self->draining_) return;
  auto* c = new Connection(self);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(c->tcp())) != 0) {
    // Another worker took it (all workers share the listening socket).
    c->Close();
    return;
  }
  self->connections_.insert(c);
  self->peak_connections_ = std::max(self->peak_connections_, self->connections_.size());
  c->Start();
}

void Server::Closed(Connection* c) {
  connections_.erase(c);
  // Answers in flight hold buffers of up to stream_chunk_bytes each; after a
  // crowd of connections is gone (dropped stalled readers, a burst that
  // ended), the allocator is asked to give the freed pages back. At most
  // once per halving of the connection count, so the cost stays small.
  if (connections_.size() <= peak_connections_ / 2) {
    if (peak_connections_ >= kTrimAfterConnections) malloc_trim(0);
    peak_connections_ = connections_.size();
  }
  if (draining_ && connections_.empty() && on_drained_) {
    auto f = std::move(on_drained_);
    on_drained_ = nullptr;
    f();
  }
}

void Server::Drain(std::function<void()> on_drained) {
  draining_ = true;
  on_drained_ = std::move(on_drained);
  for (uv_tcp_t* t : listeners_)
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  listeners_.clear();
  std::vector<Connection*> idle(connections_.begin(), connections_.end());
  for (Connection* c : idle) c->DrainRequested();
  if (connections_.empty() && on_drained_) {
    auto f = std::move(on_drained_);
    on_drained_ = nullptr;
    f();
  }
}

}  // namespace kelp::http
