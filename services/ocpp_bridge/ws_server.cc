#include "services/ocpp_bridge/ws_server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <deque>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "runtime/log.h"

namespace evgate::ocpp {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr log::Logger kLog("ocpp_bridge");
constexpr char kSubprotocol[] = "ocpp1.6";

// Websocket close codes (RFC 6455 section 7.4.1).
constexpr int kCloseUnsupportedData = 1003;
constexpr int kClosePolicyViolation = 1008;

// Frames waiting to be written to one connection. A peer that sends CALLs
// without reading our answers is closed beyond this.
constexpr size_t kMaxOutbox = 256;

absl::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string Endpoint(const tcp::socket& socket) {
  boost::system::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return "?";
  return absl::StrCat(peer.address().to_string(), ":", peer.port());
}

std::string CloseText(const websocket::close_reason& reason) {
  return absl::StrCat(static_cast<int>(reason.code), reason.reason.empty() ? "" : " ",
                      View(reason.reason));
}

bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The subject CN of the peer's certificate, "" when there is none.
std::string PeerCommonName(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return "";
  char cn[256] = {};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return n > 0 ? std::string(cn, n) : "";
}

class ServerImpl;

// What the server needs of a connection, whatever its stream type.
class SessionBase : public ChargePointLink {
 public:
  virtual void Run() = 0;
  // Ends the connection at once, without a close handshake.
  virtual void Abort(std::string why) = 0;
};

// Whether the server still runs, shared with the links handed out: a link may
// outlive the server, and must then refuse calls instead of touching a
// connection whose io_context is gone.
struct Lifeline {
  absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;
};

// The ChargePointLink the observer gets: a handle, not the connection.
class LinkHandle final : public ChargePointLink {
 public:
  LinkHandle(std::shared_ptr<Lifeline> lifeline, const std::shared_ptr<SessionBase>& session)
      : lifeline_(std::move(lifeline)),
        session_(session),
        identity_(session->identity()),
        remote_(session->remote()) {}

  const std::string& identity() const override { return identity_; }
  const std::string& remote() const override { return remote_; }

  void Call(std::string action, nlohmann::json payload, RpcEndpoint::Done done) override {
    {
      absl::MutexLock lock(&lifeline_->mu);
      std::shared_ptr<SessionBase> session = session_.lock();
      if (!lifeline_->stopped && session != nullptr) {
        session->Call(std::move(action), std::move(payload), std::move(done));
        return;
      }
    }
    CallOutcome outcome;
    outcome.status = absl::UnavailableError(
        absl::StrCat(action, " to ", identity_, ": the connection has ended"));
    if (done) done(std::move(outcome));
  }

  void Close(int code, std::string reason) override {
    absl::MutexLock lock(&lifeline_->mu);
    std::shared_ptr<SessionBase> session = session_.lock();
    if (!lifeline_->stopped && session != nullptr) session->Close(code, std::move(reason));
  }

 private:
  const std::shared_ptr<Lifeline> lifeline_;
  const std::weak_ptr<SessionBase> session_;
  const std::string identity_;
  const std::string remote_;
};

class ServerImpl final : public WsServer {
 public:
  ServerImpl(WsServerOptions options, const OcppSchemas& schemas, const Clock& clock,
             ConnectionObserver* observer)
      : options_(std::move(options)),
        schemas_(schemas),
        clock_(clock),
        observer_(observer),
        ioc_(options_.threads),
        acceptor_(ioc_) {}
  ~ServerImpl() override { Stop(); }

  absl::Status Listen();

  int port() const override { return port_; }
  size_t connections() const override { return live_.load(); }
  void Stop() override;

  const WsServerOptions& options() const { return options_; }
  const OcppSchemas& schemas() const { return schemas_; }
  const Clock& clock() const { return clock_; }
  ConnectionObserver& observer() { return *observer_; }
  uint64_t NextConnectionNumber() { return ++connection_number_; }
  std::shared_ptr<ChargePointLink> MakeLink(const std::shared_ptr<SessionBase>& session) {
    return std::make_shared<LinkHandle>(lifeline_, session);
  }

  // The connection of `identity` is open: it replaces an older one.
  void Register(const std::string& identity, const std::shared_ptr<SessionBase>& session);
  // Forgets `session` if it is still the connection of `identity`.
  void Deregister(const std::string& identity, const SessionBase* session);
  // A TCP connection ended, whatever state it was in.
  void ConnectionEnded(const SessionBase* session);

 private:
  void DoAccept();
  void OnAccept(boost::system::error_code ec, tcp::socket socket);
  template <class SessionType, class... Args>
  void StartSession(std::string remote, Args&&... args);
  // Waits up to `timeout` for `done`, under mu_.
  bool AwaitLocked(bool (ServerImpl::*done)() const, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool NoneRegistered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return by_identity_.empty(); }
  bool NoneAlive() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return alive_.empty(); }

  const WsServerOptions options_;
  const OcppSchemas& schemas_;
  const Clock& clock_;
  ConnectionObserver* observer_;
  std::optional<ssl::context> tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> connection_number_{0};

  const std::shared_ptr<Lifeline> lifeline_ = std::make_shared<Lifeline>();

  mutable absl::Mutex mu_;
  // Every TCP connection not yet ended, in any state.
  absl::flat_hash_map<const SessionBase*, std::weak_ptr<SessionBase>> alive_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> live_{0};
  absl::flat_hash_map<std::string, std::weak_ptr<SessionBase>> by_identity_ ABSL_GUARDED_BY(mu_);
};

template <class NextLayer>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<NextLayer>> {
 public:
  static constexpr bool kTls = !std::is_same_v<NextLayer, beast::tcp_stream>;

  template <class... Args>
  Session(ServerImpl& server, std::string remote, Args&&... stream_args)
      : server_(server),
        remote_(std::move(remote)),
        ws_(std::forward<Args>(stream_args)...),
        timer_(ws_.get_executor()) {}

  const std::string& identity() const override { return identity_; }
  const std::string& remote() const override { return remote_; }

  void Run() override {
    beast::get_lowest_layer(ws_).expires_after(
        absl::ToChronoNanoseconds(server_.options().handshake_timeout));
    if constexpr (kTls) {
      ws_.next_layer().async_handshake(
          ssl::stream_base::server,
          beast::bind_front_handler(&Session::OnTlsHandshake, this->shared_from_this()));
    } else {
      ReadRequest();
    }
  }

  void Call(std::string action, nlohmann::json payload, RpcEndpoint::Done done) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), action = std::move(action),
                                   payload = std::move(payload), done = std::move(done)]() mutable {
      if (!self->endpoint_ || self->ended_) {
        CallOutcome outcome;
        outcome.status = absl::UnavailableError(
            absl::StrCat(action, " to ", self->identity_, ": the connection has ended"));
        if (done) done(std::move(outcome));
        return;
      }
      absl::Status sent = self->endpoint_->Call(std::move(action), std::move(payload), done);
      if (!sent.ok()) {
        CallOutcome outcome;
        outcome.status = std::move(sent);
        if (done) done(std::move(outcome));
      }
    });
  }

  void Close(int code, std::string reason) override {
    net::post(ws_.get_executor(),
              [self = this->shared_from_this(), code, reason = std::move(reason)]() mutable {
                if (self->connected_ && !self->ended_) self->CloseWith(code, std::move(reason));
              });
  }

  void Abort(std::string why) override {
    net::post(ws_.get_executor(),
              [self = this->shared_from_this(), why = std::move(why)] { self->Finish(why); });
  }

 private:
  void OnTlsHandshake(boost::system::error_code ec) {
    if (ec) {
      Refuse(0, absl::StrCat("TLS handshake failed: ", ec.message()));
      return;
    }
    if constexpr (kTls) {
      if (server_.options().security_profile == 3) {
        peer_cn_ = PeerCommonName(ws_.next_layer().native_handle());
      }
    }
    ReadRequest();
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(0);
    http::async_read(ws_.next_layer(), buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRequest, this->shared_from_this()));
  }

  void OnRequest(boost::system::error_code ec, size_t) {
    if (ec) {
      Refuse(0, ec == beast::error::timeout
                    ? absl::StrCat("no upgrade request within ",
                                   absl::FormatDuration(server_.options().handshake_timeout))
                    : absl::StrCat("no valid upgrade request: ", ec.message()));
      return;
    }
    const http::request<http::empty_body>& request = parser_->get();
    identity_ = IdentityFromTarget(View(request.target()));
    if (!websocket::is_upgrade(request)) {
      Respond(http::status::bad_request, "OCPP-J expects a websocket upgrade request");
      return;
    }
    if (identity_.empty()) {
      Respond(http::status::not_found,
              absl::StrCat("no charge point identity in the URL \"", View(request.target()), "\""));
      return;
    }
    const WsServerOptions& options = server_.options();
    auto known = options.charge_points.find(identity_);
    if (known == options.charge_points.end()) {
      Respond(http::status::not_found, "this charge point is not configured in site.yaml");
      return;
    }
    if (options.security_profile == 1 || options.security_profile == 2) {
      std::optional<BasicCredentials> credentials =
          ParseBasicAuth(View(request[http::field::authorization]));
      if (!credentials) {
        Respond(http::status::unauthorized, "basic authentication required");
        return;
      }
      if (credentials->user != identity_ || !SameSecret(credentials->password, known->second)) {
        Respond(http::status::unauthorized, "wrong user name or password");
        return;
      }
    }
    if (options.security_profile == 3 && peer_cn_ != identity_) {
      Respond(http::status::forbidden,
              absl::StrCat("the client certificate's CN \"", peer_cn_, "\" is not the identity"));
      return;
    }
    offered_ = std::string(View(request[http::field::sec_websocket_protocol]));
    for (absl::string_view token : absl::StrSplit(offered_, ',')) {
      if (absl::StripAsciiWhitespace(token) == kSubprotocol) subprotocol_ok_ = true;
    }

    ws_.set_option(websocket::stream_base::timeout{
        absl::ToChronoNanoseconds(options.handshake_timeout),
        absl::ToChronoNanoseconds(options.idle_timeout), /*keep_alive_pings=*/true});
    ws_.set_option(
        websocket::stream_base::decorator([ok = subprotocol_ok_](websocket::response_type& res) {
          res.set(http::field::server, "evgate");
          if (ok) res.set(http::field::sec_websocket_protocol, kSubprotocol);
        }));
    ws_.read_message_max(options.max_frame_bytes);
    beast::get_lowest_layer(ws_).expires_never();
    ws_.async_accept(request,
                     beast::bind_front_handler(&Session::OnAccept, this->shared_from_this()));
  }

  void OnAccept(boost::system::error_code ec) {
    if (ec) {
      Refuse(0, absl::StrCat("websocket handshake failed: ", ec.message()));
      return;
    }
    if (!subprotocol_ok_) {
      std::string why = absl::StrCat("it offered no subprotocol we speak (offered: \"", offered_,
                                     "\"; we speak ", kSubprotocol, ")");
      kLog.Warning("charge point %s from %s refused: %s", identity_, remote_, why);
      server_.observer().OnRefused(identity_, remote_, 0, why);
      closing_ = true;
      ws_.async_close(
          websocket::close_reason(websocket::close_code::protocol_error,
                                  absl::StrCat("subprotocol ", kSubprotocol, " required")),
          [self = this->shared_from_this()](boost::system::error_code) {
            self->Finish("refused: no subprotocol");
          });
      return;
    }
    connected_ = true;
    ws_.text(true);
    server_.Register(identity_, this->shared_from_this());
    RpcEndpoint::CallHandler handler =
        server_.observer().OnConnected(server_.MakeLink(this->shared_from_this()));
    RpcEndpointOptions rpc = server_.options().rpc;
    rpc.id_prefix = absl::StrCat(server_.NextConnectionNumber(), ".");
    endpoint_.emplace(
        server_.schemas(), server_.clock(), std::move(rpc),
        [this](std::string frame) { Send(std::move(frame)); },
        [this](int code, std::string reason) { CloseWith(code, std::move(reason)); },
        std::move(handler));
    kLog.Info("charge point %s connected from %s%s", identity_, remote_, kTls ? " (TLS)" : "");
    DoRead();
    StartTick();
  }

  void DoRead() {
    ws_.async_read(read_buffer_,
                   beast::bind_front_handler(&Session::OnRead, this->shared_from_this()));
  }

  void OnRead(boost::system::error_code ec, size_t) {
    if (ec) {
      if (ec == websocket::error::closed) {
        Finish(closing_
                   ? ClosedByUs()
                   : absl::StrCat("closed by the charge point (", CloseText(ws_.reason()), ")"));
      } else if (ec == websocket::error::message_too_big) {
        Finish(absl::StrCat("a frame exceeded ", server_.options().max_frame_bytes,
                            " bytes (closed 1009)"));
      } else if (ec == beast::error::timeout) {
        Finish(absl::StrCat("silent for ", absl::FormatDuration(server_.options().idle_timeout),
                            " (no answer to ping)"));
      } else {
        Finish(ec.message());
      }
      return;
    }
    if (!ws_.got_text()) {
      read_buffer_.consume(read_buffer_.size());
      CloseWith(kCloseUnsupportedData, "OCPP-J frames are text frames");
    } else {
      std::string text = beast::buffers_to_string(read_buffer_.data());
      read_buffer_.consume(read_buffer_.size());
      endpoint_->OnFrame(text);
    }
    DoRead();
  }

  void Send(std::string frame) {
    if (closing_ || ended_) return;
    if (outbox_.size() >= kMaxOutbox) {
      CloseWith(kClosePolicyViolation, "the charge point does not read its answers");
      return;
    }
    outbox_.push_back(std::move(frame));
    if (!writing_) DoWrite();
  }

  void DoWrite() {
    writing_ = true;
    ws_.async_write(net::buffer(outbox_.front()),
                    beast::bind_front_handler(&Session::OnWrite, this->shared_from_this()));
  }

  void OnWrite(boost::system::error_code ec, size_t) {
    writing_ = false;
    if (ec) return;  // the read fails too, and ends the connection
    outbox_.pop_front();
    if (pending_close_ && !closing_) {
      StartClose();
    } else if (!outbox_.empty() && !closing_) {
      DoWrite();
    }
  }

  // Closes after the frames already queued are written.
  void CloseWith(int code, std::string reason) {
    if (closing_ || ended_ || pending_close_) return;
    pending_close_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
    kLog.Info("closing the connection of %s (%d %s)", identity_, code, reason);
    if (!writing_) StartClose();
  }

  void StartClose() {
    closing_ = true;
    ws_.async_close(*pending_close_, [self = this->shared_from_this()](boost::system::error_code) {
      // Whichever comes first, this or the read in progress ending with
      // `closed`, finishes the connection.
      self->Finish(self->ClosedByUs());
    });
  }

  std::string ClosedByUs() const {
    return absl::StrCat("closed (", pending_close_ ? CloseText(*pending_close_) : "", ")");
  }

  void StartTick() {
    timer_.expires_after(absl::ToChronoNanoseconds(server_.options().tick));
    timer_.async_wait([self = this->shared_from_this()](boost::system::error_code ec) {
      if (ec || self->ended_) return;
      self->endpoint_->Tick();
      self->StartTick();
    });
  }

  // Answers the upgrade request with an HTTP error and closes.
  void Respond(http::status status, std::string why) {
    auto response = std::make_shared<http::response<http::string_body>>(status, 11);
    response->set(http::field::server, "evgate");
    response->set(http::field::content_type, "text/plain");
    if (status == http::status::unauthorized) {
      response->set(http::field::www_authenticate, "Basic realm=\"evgate\"");
    }
    response->body() = why + "\n";
    response->keep_alive(false);
    response->prepare_payload();
    int code = static_cast<int>(status);
    Refuse(code, std::move(why), /*finish=*/false);
    http::async_write(ws_.next_layer(), *response,
                      [self = this->shared_from_this(), response](
                          boost::system::error_code, size_t) { self->Finish("refused"); });
  }

  void Refuse(int http_status, std::string why, bool finish = true) {
    kLog.Warning("connection of %s from %s refused%s: %s",
                 identity_.empty() ? std::string("an unidentified charge point") : identity_,
                 remote_, http_status ? absl::StrCat(" (HTTP ", http_status, ")") : "", why);
    server_.observer().OnRefused(identity_, remote_, http_status, why);
    if (finish) Finish("refused");
  }

  // The connection's end; runs once, whatever path led here.
  void Finish(absl::string_view why) {
    if (ended_) return;
    ended_ = true;
    timer_.cancel();
    if (endpoint_) endpoint_->Shutdown();
    boost::system::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (connected_) {
      server_.Deregister(identity_, this);
      kLog.Info("charge point %s disconnected: %s", identity_, why);
      server_.observer().OnDisconnected(*this, why);
    }
    server_.ConnectionEnded(this);
  }

  ServerImpl& server_;
  const std::string remote_;
  websocket::stream<NextLayer> ws_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::string identity_;
  std::string peer_cn_;
  std::string offered_;
  bool subprotocol_ok_ = false;

  std::optional<RpcEndpoint> endpoint_;
  beast::flat_buffer read_buffer_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  std::optional<websocket::close_reason> pending_close_;
  bool closing_ = false;
  bool connected_ = false;
  bool ended_ = false;
};

absl::Status ServerImpl::Listen() {
  const int profile = options_.security_profile;
  if (profile < 0 || profile > 3) {
    return absl::InvalidArgumentError(absl::StrCat("security profile ", profile, " is not 0-3"));
  }
  if (profile >= 2) {
    tls_.emplace(ssl::context::tls_server);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                      ssl::context::single_dh_use);
    boost::system::error_code ec;
    tls_->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_cert_file ", options_.tls_cert_file, ": ", ec.message()));
    }
    tls_->use_private_key_file(options_.tls_key_file, ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_key_file ", options_.tls_key_file, ": ", ec.message()));
    }
    if (profile == 3) {
      tls_->load_verify_file(options_.ca_file, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat("ca_file ", options_.ca_file, ": ", ec.message()));
      }
      tls_->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
  }

  size_t colon = options_.listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("listen \"", options_.listen, "\": no port"));
  }
  std::string host = options_.listen.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  if (!absl::SimpleAtoi(options_.listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen \"", options_.listen, "\": bad port"));
  }
  boost::system::error_code ec;
  net::ip::address address = net::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen \"", options_.listen, "\": bad address: ", ec.message()));
  }
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("OCPP listen on ", options_.listen, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  DoAccept();
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
  // Not "listening on ... (port N": that is the gRPC server's line, which
  // scripts look for.
  kLog.Info(
      "accepting OCPP 1.6J charge points at %s://%s/<charge point id> on port %d, security "
      "profile %d",
      profile >= 2 ? "wss" : "ws", options_.listen, port_, profile);
  return absl::OkStatus();
}

void ServerImpl::DoAccept() {
  acceptor_.async_accept(net::make_strand(ioc_),
                         beast::bind_front_handler(&ServerImpl::OnAccept, this));
}

void ServerImpl::OnAccept(boost::system::error_code ec, tcp::socket socket) {
  if (stopped_) return;
  if (ec) {
    kLog.Warning("accepting an OCPP connection: %s", ec.message());
    DoAccept();
    return;
  }
  std::string remote = Endpoint(socket);
  if (live_.load() >= options_.max_connections) {
    boost::system::error_code ignored;
    socket.close(ignored);
    std::string why = absl::StrCat("connection cap of ", options_.max_connections, " reached");
    kLog.Warning("connection from %s refused: %s", remote, why);
    observer_->OnRefused("", remote, 0, why);
  } else if (tls_) {
    StartSession<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(remote),
                                                                std::move(socket), *tls_);
  } else {
    StartSession<Session<beast::tcp_stream>>(std::move(remote), std::move(socket));
  }
  DoAccept();
}

template <class SessionType, class... Args>
void ServerImpl::StartSession(std::string remote, Args&&... args) {
  auto session =
      std::make_shared<SessionType>(*this, std::move(remote), std::forward<Args>(args)...);
  {
    absl::MutexLock lock(&mu_);
    alive_[session.get()] = session;
    live_.store(alive_.size());
  }
  session->Run();
}

void ServerImpl::Register(const std::string& identity,
                          const std::shared_ptr<SessionBase>& session) {
  std::shared_ptr<SessionBase> old;
  {
    absl::MutexLock lock(&mu_);
    std::weak_ptr<SessionBase>& slot = by_identity_[identity];
    old = slot.lock();
    slot = session;
  }
  if (old) {
    kLog.Info("charge point %s reconnected from %s; closing its connection from %s", identity,
              session->remote(), old->remote());
    old->Close(static_cast<int>(websocket::close_code::normal), "replaced by a new connection");
  }
}

void ServerImpl::Deregister(const std::string& identity, const SessionBase* session) {
  absl::MutexLock lock(&mu_);
  auto it = by_identity_.find(identity);
  if (it == by_identity_.end()) return;
  std::shared_ptr<SessionBase> current = it->second.lock();
  if (current == nullptr || current.get() == session) by_identity_.erase(it);
}

void ServerImpl::ConnectionEnded(const SessionBase* session) {
  absl::MutexLock lock(&mu_);
  alive_.erase(session);
  live_.store(alive_.size());
}

bool ServerImpl::AwaitLocked(bool (ServerImpl::*done)() const, absl::Duration timeout) {
  return mu_.AwaitWithTimeout(absl::Condition(this, done), timeout);
}

void ServerImpl::Stop() {
  if (stopped_.exchange(true)) return;
  {
    // From here on, links refuse calls at once.
    absl::MutexLock lock(&lifeline_->mu);
    lifeline_->stopped = true;
  }
  net::post(ioc_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  std::vector<std::shared_ptr<SessionBase>> registered;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [identity, weak] : by_identity_) {
      if (auto session = weak.lock()) registered.push_back(std::move(session));
    }
  }
  for (const std::shared_ptr<SessionBase>& session : registered) {
    session->Close(static_cast<int>(websocket::close_code::going_away), "the Central System stops");
  }
  registered.clear();
  // The charge points get a moment to answer the close; then every
  // connection left (including those still in their handshake) is ended, so
  // that every CALL's callback has run before the threads stop.
  std::vector<std::shared_ptr<SessionBase>> left;
  {
    absl::MutexLock lock(&mu_);
    AwaitLocked(&ServerImpl::NoneRegistered, absl::Seconds(2));
    for (auto& [raw, weak] : alive_) {
      if (auto session = weak.lock()) left.push_back(std::move(session));
    }
  }
  for (const std::shared_ptr<SessionBase>& session : left) {
    session->Abort("the Central System stopped");
  }
  left.clear();
  {
    absl::MutexLock lock(&mu_);
    if (!AwaitLocked(&ServerImpl::NoneAlive, absl::Seconds(2))) {
      kLog.Warning("%d OCPP connections did not end within 2 s of Stop", alive_.size());
    }
  }
  ioc_.stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace

std::string IdentityFromTarget(absl::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  if (absl::EndsWith(target, "/")) target.remove_suffix(1);
  size_t slash = target.rfind('/');
  absl::string_view segment = slash == absl::string_view::npos ? target : target.substr(slash + 1);
  std::string identity;
  for (size_t i = 0; i < segment.size(); ++i) {
    char c = segment[i];
    if (c == '%') {
      if (i + 2 >= segment.size()) return "";
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        h = absl::ascii_tolower(h);
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        return -1;
      };
      int high = hex(segment[i + 1]), low = hex(segment[i + 2]);
      if (high < 0 || low < 0) return "";
      c = static_cast<char>(high * 16 + low);
      i += 2;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/') return "";
    identity.push_back(c);
  }
  return identity;
}

std::optional<BasicCredentials> ParseBasicAuth(absl::string_view header) {
  header = absl::StripAsciiWhitespace(header);
  if (header.size() < 6 || !absl::EqualsIgnoreCase(header.substr(0, 6), "basic ")) {
    return std::nullopt;
  }
  absl::string_view encoded = absl::StripAsciiWhitespace(header.substr(6));
  if (encoded.empty() || encoded.size() % 4 != 0) return std::nullopt;
  std::string decoded(encoded.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                          reinterpret_cast<const unsigned char*>(encoded.data()),
                          static_cast<int>(encoded.size()));
  if (n < 0) return std::nullopt;
  size_t padding = absl::EndsWith(encoded, "==") ? 2 : absl::EndsWith(encoded, "=") ? 1 : 0;
  decoded.resize(static_cast<size_t>(n) - padding);
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
}

absl::StatusOr<std::unique_ptr<WsServer>> WsServer::Start(WsServerOptions options,
                                                          const OcppSchemas& schemas,
                                                          const Clock& clock,
                                                          ConnectionObserver* observer) {
  auto server = std::make_unique<ServerImpl>(std::move(options), schemas, clock, observer);
  absl::Status listening = server->Listen();
  if (!listening.ok()) return listening;
  return server;
}

}  // namespace evgate::ocpp
