#include "worker-http/http_client.h"

#include "worker-http/header_block.h"

#include <llhttp.h>
#include <strings.h>

#include <algorithm>
#include <cstring>

namespace kelp::http {

std::string ClientResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
  return "";
}

namespace {

// Idle pooled sockets read only to notice the peer closing them.
void CloseTcp(uv_tcp_t* tcp) {
  uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}

}  // namespace

struct ClientExchange::Impl {
  Client* client = nullptr;
  uv_loop_t* loop = nullptr;
  ClientRequest req;
  ClientHandlers handlers;
  // Handlers dropped while one of them runs (a callback may cancel its own
  // exchange): kept alive until the dispatch that called it returns.
  std::vector<ClientHandlers> retired;
  int dispatching = 0;
  std::shared_ptr<ClientExchange> self;  // set while in flight
  uv_tcp_t* tcp = nullptr;
  uv_timer_t* timer = nullptr;
  uv_getaddrinfo_t resolve{};
  uv_connect_t connect{};
  llhttp_settings_t settings{};
  llhttp_t parser{};
  ClientResponse head;
  std::string field, value;
  bool in_value = false, complete = false, finished = false, reused = false, got_bytes = false, paused = false;
  bool resolving = false, connecting = false, keep_after = false, unsendable = false;
  int writes_pending = 0;
  char buf[64 * 1024];

  static Impl* Of(llhttp_t* p) { return static_cast<Impl*>(p->data); }

  void Start() {
    unsendable = !Sendable(req);
    timer = new uv_timer_t;
    uv_timer_init(loop, timer);
    timer->data = this;
    uv_timer_start(timer, [](uv_timer_t* t) {
      auto* me = static_cast<Impl*>(t->data);
      auto keep = me->self;
      me->Finish(me->unsendable ? Status::Invalid("refusing to send a request line or Host holding a control byte or space")
                                : Status::Unavailable("timeout"));
    },
                   unsendable ? 0 : req.timeout_ms, 0);
    if (!unsendable) Connect();
  }

  // Whatever reaches the request line must not end it early; header values are
  // made safe where they are written (AppendHeaderLine).
  static bool Sendable(const ClientRequest& r) {
    const auto clean = [](std::string_view s) {
      return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
    };
    return clean(r.method) && clean(r.target) && clean(r.host_port);
  }

  void Connect() {
    if (uv_tcp_t* idle = client->TakeIdle(req.host_port)) {
      tcp = idle;
      tcp->data = this;
      reused = true;
      return Send();
    }
    reused = false;
    const size_t colon = req.host_port.rfind(':');
    if (colon == std::string::npos) return Finish(Status::Invalid("bad address " + req.host_port));
    std::string host = req.host_port.substr(0, colon), port = req.host_port.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    resolve.data = this;
    resolving = true;
    const int rc = uv_getaddrinfo(loop, &resolve, [](uv_getaddrinfo_t* g, int status, addrinfo* res) {
      auto* self = static_cast<Impl*>(g->data);
      self->resolving = false;
      if (self->finished) {
        uv_freeaddrinfo(res);
        self->Release();
        return;
      }
      if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        return self->Finish(Status::Unavailable(std::string("resolve ") + self->req.host_port + ": " + uv_strerror(status)));
      }
      self->tcp = new uv_tcp_t;
      uv_tcp_init(self->loop, self->tcp);
      self->tcp->data = self;
      uv_tcp_nodelay(self->tcp, 1);
      self->connect.data = self;
      self->connecting = true;
      const int crc = uv_tcp_connect(&self->connect, self->tcp, res->ai_addr, [](uv_connect_t* c, int st) {
        auto* me = static_cast<Impl*>(c->data);
        me->connecting = false;
        if (me->finished) return me->Release();
        if (st < 0) return me->Finish(Status::Unavailable("dial " + me->req.host_port + ": " + uv_strerror(st)));
        me->Send();
      });
      uv_freeaddrinfo(res);
      if (crc < 0) {
        self->connecting = false;
        self->Finish(Status::Unavailable("dial " + self->req.host_port + ": " + uv_strerror(crc)));
      }
    }, host.c_str(), port.c_str(), &hints);
    if (rc < 0) {
      resolving = false;
      Finish(Status::Unavailable(std::string("resolve ") + req.host_port + ": " + uv_strerror(rc)));
    }
  }

  void Send() {
    llhttp_settings_init(&settings);
    settings.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      Impl* s = Of(p);
      if (s->in_value) s->Commit();
      s->field.append(at, n);
      return 0;
    };
    settings.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      Impl* s = Of(p);
      s->in_value = true;
      s->value.append(at, n);
      return 0;
    };
    settings.on_headers_complete = [](llhttp_t* p) {
      Impl* s = Of(p);
      if (s->in_value || !s->field.empty()) s->Commit();
      s->head.status = p->status_code;
      if (s->handlers.on_headers) s->handlers.on_headers(s->head);
      // A response to HEAD has no body whatever its headers say.
      return s->req.method == "HEAD" ? 1 : 0;
    };
    settings.on_body = [](llhttp_t* p, const char* at, size_t n) {
      Impl* s = Of(p);
      if (s->handlers.on_body && !s->finished) s->handlers.on_body(at, n);
      return s->finished ? int(HPE_USER) : 0;
    };
    settings.on_message_complete = [](llhttp_t* p) {
      Of(p)->complete = true;
      return int(HPE_PAUSED);
    };
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    parser.data = this;
    head = ClientResponse{};
    field.clear();
    value.clear();
    in_value = complete = got_bytes = false;

    size_t body_size = 0;
    for (std::string_view piece : req.body) body_size += piece.size();
    std::string out = RequestHead(req.method, req.target, req.host_port, req.headers,
                                  body_size > 0 || req.method == "POST" || req.method == "PUT", body_size);
    // The write owns the head and shares the body's owner until it completes.
    struct OutWrite {
      uv_write_t req;
      std::string head;
      std::shared_ptr<const void> keep;
    };
    auto* w = new OutWrite{{}, std::move(out), req.keep};
    w->req.data = w;
    std::vector<uv_buf_t> bufs = {uv_buf_init(w->head.data(), unsigned(w->head.size()))};
    for (std::string_view piece : req.body)
      if (!piece.empty()) bufs.push_back(uv_buf_init(const_cast<char*>(piece.data()), unsigned(piece.size())));
    const int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp), bufs.data(), unsigned(bufs.size()),
                            [](uv_write_t* wr, int status) {
                              // A socket is pooled or closed only after its writes complete.
                              auto* me = static_cast<Impl*>(wr->handle->data);
                              delete static_cast<OutWrite*>(wr->data);
                              if (!me) return;
                              auto keep = me->self;
                              --me->writes_pending;
                              if (status < 0) return me->Broken(std::string("write: ") + uv_strerror(status));
                              if (me->complete && !me->finished) me->Done(me->keep_after);
                            });
    if (rc < 0) {
      delete w;
      return Broken(std::string("write: ") + uv_strerror(rc));
    }
    ++writes_pending;
    StartReading();
  }

  void StartReading() {
    uv_read_start(reinterpret_cast<uv_stream_t*>(tcp),
                  [](uv_handle_t* h, size_t, uv_buf_t* b) {
                    auto* me = static_cast<Impl*>(h->data);
                    *b = uv_buf_init(me->buf, sizeof me->buf);
                  },
                  [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                    auto* me = static_cast<Impl*>(s->data);
                    if (!me) return;
                    auto keep = me->self;  // callbacks below may end the exchange
                    if (n > 0) {
                      ++me->dispatching;
                      me->Feed(size_t(n));
                      if (--me->dispatching == 0) me->retired.clear();
                      return;
                    }
                    if (n == UV_EOF) {
                      if (llhttp_finish(&me->parser) == HPE_OK && me->complete) return me->Done(false);
                      return me->Broken("unexpected EOF");
                    }
                    if (n < 0) me->Broken(std::string("read: ") + uv_strerror(int(n)));
                  });
  }

  void Feed(size_t n) {
    if (complete) return;
    got_bytes = true;
    const llhttp_errno_t err = llhttp_execute(&parser, buf, n);
    if (finished) return;
    if (err == HPE_PAUSED && complete) {
      // Bytes after the response on a keep-alive socket mean a confused peer: do not reuse it.
      const bool extra = llhttp_get_error_pos(&parser) != buf + n;
      return Done(!extra && llhttp_should_keep_alive(&parser));
    }
    if (err != HPE_OK) Finish(Status::Corruption(std::string("bad response from ") + req.host_port + ": " + llhttp_errno_name(err)));
  }

  void Commit() {
    head.headers.emplace_back(std::move(field), std::move(value));
    field.clear();
    value.clear();
    in_value = false;
  }

  // A reused idle socket the peer closed before answering: retry once on a new one.
  void Broken(const std::string& why) {
    if (finished) return;
    if (reused && !got_bytes) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp));
      tcp->data = nullptr;
      CloseTcp(tcp);
      tcp = nullptr;
      reused = false;
      // Skip the pool this time.
      return ConnectFresh();
    }
    Finish(Status::Unavailable(req.host_port + ": " + why));
  }

  void ConnectFresh() {
    // Connect() prefers idle sockets; after a stale one failed, drain that host's pool.
    while (uv_tcp_t* stale = client->TakeIdle(req.host_port)) {
      stale->data = nullptr;
      CloseTcp(stale);
    }
    Connect();
  }

  void Done(bool keep_alive) {
    if (finished) return;
    if (writes_pending > 0) {
      // The peer answered before taking the whole request; finish when the write does.
      keep_after = false;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp));
      return;
    }
    if (tcp) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp));
      if (keep_alive) {
        client->PutIdle(req.host_port, tcp);
        tcp = nullptr;
      }
    }
    Finish(Status::Ok());
  }

  void Finish(Status s) {
    if (finished) return;
    finished = true;
    if (timer) {
      uv_timer_stop(timer);
      timer->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer = nullptr;
    }
    if (resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve));
    if (tcp) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp));
      tcp->data = nullptr;
      CloseTcp(tcp);
      tcp = nullptr;
    }
    auto done = std::move(handlers.on_done);
    RetireHandlers();
    if (done) done(std::move(s));
    Release();
  }

  void RetireHandlers() {
    if (dispatching > 0) retired.push_back(std::move(handlers));
    handlers = {};
  }

  // Drops the self-reference once no libuv request still points at this.
  void Release() {
    if (resolving || connecting) return;
    self.reset();
  }
};

Client::~Client() {
  while (!idle_.empty()) DropIdle(idle_.begin()->second);
}

// While idle, a socket's data is its IdleEntry; any byte or EOF from the peer retires it.
struct IdleEntry {
  Client* client;
  std::string host_port;
};

uv_tcp_t* Client::TakeIdle(const std::string& host_port) {
  auto it = idle_.find(host_port);
  if (it == idle_.end()) return nullptr;
  uv_tcp_t* tcp = it->second;
  idle_.erase(it);
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp));
  delete static_cast<IdleEntry*>(tcp->data);
  tcp->data = nullptr;
  return tcp;
}

void Client::DropIdle(uv_tcp_t* tcp) {
  auto* entry = static_cast<IdleEntry*>(tcp->data);
  auto [first, last] = idle_.equal_range(entry->host_port);
  for (auto it = first; it != last; ++it) {
    if (it->second == tcp) {
      idle_.erase(it);
      break;
    }
  }
  delete entry;
  tcp->data = nullptr;
  CloseTcp(tcp);
}

void Client::PutIdle(const std::string& host_port, uv_tcp_t* tcp) {
  constexpr size_t kMaxIdlePerHost = 64;
  if (idle_.count(host_port) >= kMaxIdlePerHost) {
    tcp->data = nullptr;
    CloseTcp(tcp);
    return;
  }
  tcp->data = new IdleEntry{this, host_port};
  idle_.emplace(host_port, tcp);
  uv_read_start(reinterpret_cast<uv_stream_t*>(tcp),
                [](uv_handle_t*, size_t, uv_buf_t* b) {
                  static char sink[512];
                  *b = uv_buf_init(sink, sizeof sink);
                },
                [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                  if (n == 0) return;
                  auto* tcp = reinterpret_cast<uv_tcp_t*>(s);
                  static_cast<IdleEntry*>(tcp->data)->client->DropIdle(tcp);
                });
}

void Client::Fetch(ClientRequest req, size_t max_body, std::function<void(Status, ClientResponse)> done) {
  auto response = std::make_shared<ClientResponse>();
  auto too_big = std::make_shared<bool>(false);
  ClientHandlers h;
  h.on_headers = [response](ClientResponse& head) {
    response->status = head.status;
    response->headers = head.headers;
  };
  h.on_body = [response, too_big, max_body](const char* d, size_t n) {
    if (response->body.size() + n > max_body) *too_big = true;
    else response->body.append(d, n);
  };
  h.on_done = [response, too_big, max_body, done = std::move(done)](Status s) {
    if (s.ok() && *too_big) s = Status::TooLarge("response larger than " + std::to_string(max_body) + " bytes");
    done(std::move(s), std::move(*response));
  };
  Stream(std::move(req), std::move(h));
}

std::shared_ptr<ClientExchange> Client::Stream(ClientRequest req, ClientHandlers handlers) {
  auto ex = std::shared_ptr<ClientExchange>(new ClientExchange());
  ex->impl_ = std::make_unique<ClientExchange::Impl>();
  auto& im = *ex->impl_;
  im.client = this;
  im.loop = loop_;
  im.req = std::move(req);
  im.handlers = std::move(handlers);
  im.self = ex;
  im.Start();
  return ex;
}

void ClientExchange::Pause() {
  if (impl_->tcp && !impl_->paused && !impl_->finished) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(impl_->tcp));
    impl_->paused = true;
  }
}

void ClientExchange::Resume() {
  if (impl_->tcp && impl_->paused && !impl_->finished) {
    impl_->paused = false;
    impl_->StartReading();
  }
}

void ClientExchange::Cancel() {
  impl_->RetireHandlers();
  impl_->Finish(Status::Unavailable("cancelled"));
}

ClientExchange::~ClientExchange() = default;

}  // namespace kelp::http
