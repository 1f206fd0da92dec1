// The websocket server against a Boost.Beast client on localhost: every
// refusal of the upgrade (identity, basic auth, certificate, subprotocol), the
// frame limits, reconnection, the connection cap and the TLS profiles.
// Bad inputs tried: non-upgrade GET, empty/unknown/badly encoded identities,
// missing/garbled/wrong basic auth, a user name other than the identity, no or
// a foreign subprotocol, a frame over the limit, a binary frame, a client that
// never sends its request, a certificate of another CA, a certificate whose
// CN is another charge point, no certificate, bad listen addresses and
// missing TLS files.
#include "services/ocpp_bridge/ws_server.h"

#include <openssl/evp.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/test_certificates.h"

namespace evgate::ocpp {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using nlohmann::json;
using ::testing::HasSubstr;

std::string BasicAuth(const std::string& user, const std::string& password) {
  const std::string plain = absl::StrCat(user, ":", password);
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                          reinterpret_cast<const unsigned char*>(plain.data()),
                          static_cast<int>(plain.size()));
  encoded.resize(n);
  return absl::StrCat("Basic ", encoded);
}

// Records what the server tells the Central System; answers Heartbeat.
class RecordingObserver final : public ConnectionObserver {
 public:
  RpcEndpoint::CallHandler OnConnected(std::shared_ptr<ChargePointLink> link) override {
    absl::MutexLock lock(&mu_);
    connected_.push_back(link->identity());
    links_.push_back(std::move(link));
    return [](const Call& call) -> std::variant<json, CallError> {
      if (call.action == "Heartbeat") return json{{"currentTime", "2026-12-06T09:00:00Z"}};
      return MakeCallError(call.message_id, RpcErrorCode::kNotSupported, "not in this test");
    };
  }
  void OnDisconnected(const ChargePointLink& link, absl::string_view why) override {
    absl::MutexLock lock(&mu_);
    disconnected_.push_back(absl::StrCat(link.identity(), ": ", why));
  }
  void OnRefused(absl::string_view identity, absl::string_view remote, int http_status,
                 absl::string_view why) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(remote.empty());
    refused_.push_back(absl::StrCat(identity, " ", http_status, " ", why));
  }

  // Waits (at most 10 s, then fails the test) until `n` events of a kind.
  std::vector<std::string> Connected(size_t n) { return WaitFor(&connected_, n); }
  std::vector<std::string> Disconnected(size_t n) { return WaitFor(&disconnected_, n); }
  std::vector<std::string> Refused(size_t n) { return WaitFor(&refused_, n); }
  std::shared_ptr<ChargePointLink> Link(size_t i) {
    WaitFor(&connected_, i + 1);
    absl::MutexLock lock(&mu_);
    return links_[i];
  }

 private:
  std::vector<std::string> WaitFor(std::vector<std::string>* events, size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events->size() >= n; };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10)))
        << "waited for " << n << " events, have " << events->size();
    return *events;
  }

  absl::Mutex mu_;
  std::vector<std::string> connected_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> disconnected_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> refused_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<ChargePointLink>> links_ ABSL_GUARDED_BY(mu_);
};

struct Dial {
  std::string target = "/ocpp/CP-1";
  std::optional<std::string> subprotocols = "ocpp1.6";
  std::optional<std::string> authorization;
  bool tls = false;
  std::string ca_file;
  std::optional<evgate::testing::CertificatePair> client_certificate;
};

// A synchronous websocket client, plain or TLS.
class Client {
 public:
  using Plain = websocket::stream<beast::tcp_stream>;
  using Tls = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

  // Connects and upgrades. Fails with the handshake's error; http_status()
  // is the status of the server's answer when there was one.
  absl::Status Connect(int port, const Dial& dial) {
    tcp::endpoint server(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    boost::system::error_code ec;
    auto decorate = [dial](websocket::request_type& request) {
      if (dial.subprotocols) request.set(http::field::sec_websocket_protocol, *dial.subprotocols);
      if (dial.authorization) request.set(http::field::authorization, *dial.authorization);
    };
    if (!dial.tls) {
      plain_ = std::make_unique<Plain>(ioc_);
      beast::get_lowest_layer(*plain_).connect(server, ec);
      if (ec) return absl::UnavailableError(ec.message());
      plain_->set_option(websocket::stream_base::decorator(decorate));
      Handshake(*plain_, dial.target, ec);
    } else {
      tls_context_.emplace(ssl::context::tls_client);
      tls_context_->load_verify_file(dial.ca_file);
      tls_context_->set_verify_mode(ssl::verify_peer);
      if (dial.client_certificate) {
        tls_context_->use_certificate_chain_file(dial.client_certificate->cert_file);
        tls_context_->use_private_key_file(dial.client_certificate->key_file, ssl::context::pem);
      }
      tls_ = std::make_unique<Tls>(ioc_, *tls_context_);
      beast::get_lowest_layer(*tls_).connect(server, ec);
      if (ec) return absl::UnavailableError(ec.message());
      tls_->next_layer().handshake(ssl::stream_base::client, ec);
      // TLS 1.3: a refused client certificate shows at the first read.
      if (!ec) {
        tls_->set_option(websocket::stream_base::decorator(decorate));
        Handshake(*tls_, dial.target, ec);
      }
    }
    if (ec) return absl::UnavailableError(ec.message());
    return absl::OkStatus();
  }

  int http_status() const { return response_.result_int(); }
  std::string accepted_subprotocol() const {
    return std::string(response_[http::field::sec_websocket_protocol]);
  }

  void WriteText(const std::string& text) {
    With([&](auto& ws) {
      ws.text(true);
      ws.write(net::buffer(text));
    });
  }
  void WriteBinary(const std::string& bytes) {
    With([&](auto& ws) {
      ws.binary(true);
      ws.write(net::buffer(bytes));
    });
  }
  // The next text frame; on close, the error and close_reason() tell why.
  absl::StatusOr<std::string> Read() {
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    With([&](auto& ws) { ws.read(buffer, ec); });
    if (ec) return absl::UnavailableError(ec.message());
    return beast::buffers_to_string(buffer.data());
  }
  websocket::close_reason close_reason() {
    websocket::close_reason reason;
    With([&](auto& ws) { reason = ws.reason(); });
    return reason;
  }

 private:
  // The asynchronous handshake, run to its end: Boost 1.74's synchronous one
  // does not fill in the response of a declined upgrade.
  template <class Stream>
  void Handshake(Stream& ws, const std::string& target, boost::system::error_code& ec) {
    ws.async_handshake(response_, "127.0.0.1", target,
                       [&ec](boost::system::error_code result) { ec = result; });
    ioc_.run();
    ioc_.restart();
  }

  template <class F>
  void With(F f) {
    if (plain_) {
      f(*plain_);
    } else {
      f(*tls_);
    }
  }

  net::io_context ioc_;
  std::optional<ssl::context> tls_context_;
  std::unique_ptr<Plain> plain_;
  std::unique_ptr<Tls> tls_;
  websocket::response_type response_;
};

// Reads a raw TCP connection until the server closes it; true when it did.
bool ServerClosesRawConnection(int port, const std::string& send = "") {
  net::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  if (!send.empty()) net::write(socket, net::buffer(send));
  char byte;
  boost::system::error_code ec;
  while (!ec) socket.read_some(net::buffer(&byte, 1), ec);
  return ec == net::error::eof || ec == net::error::connection_reset;
}

class WsServerTest : public ::testing::Test {
 protected:
  WsServerOptions Options(int profile) {
    WsServerOptions options;
    options.listen = "127.0.0.1:0";
    options.security_profile = profile;
    options.charge_points = {{"CP-1", "secret-1"}, {"CP 2", "secret-2"}, {"CP-2", ""}};
    options.handshake_timeout = absl::Seconds(5);
    options.tick = absl::Milliseconds(10);
    return options;
  }

  void StartServer(WsServerOptions options) {
    absl::StatusOr<std::unique_ptr<WsServer>> started =
        WsServer::Start(std::move(options), OcppSchemas::Ocpp16(), clock_, &observer_);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
  }

  evgate::testing::TestPki& Pki() {
    if (!pki_) {
      absl::StatusOr<evgate::testing::TestPki> pki =
          evgate::testing::TestPki::Create(::testing::TempDir());
      EXPECT_TRUE(pki.ok()) << pki.status();
      pki_.emplace(*std::move(pki));
    }
    return *pki_;
  }

  WsServerOptions TlsOptions(int profile) {
    WsServerOptions options = Options(profile);
    options.tls_cert_file = Pki().server().cert_file;
    options.tls_key_file = Pki().server().key_file;
    options.ca_file = Pki().ca_file();
    return options;
  }

  int port() const { return server_->port(); }

  FakeClock clock_;
  RecordingObserver observer_;
  std::optional<evgate::testing::TestPki> pki_;
  std::unique_ptr<WsServer> server_;
};

constexpr char kHeartbeat[] = R"([2,"hb-1","Heartbeat",{}])";

TEST_F(WsServerTest, ProfileOneAcceptsTheRightPasswordAndSpeaksOcppJ) {
  StartServer(Options(1));
  Client client;
  Dial dial;
  dial.authorization = BasicAuth("CP-1", "secret-1");
  ASSERT_TRUE(client.Connect(port(), dial).ok());
  EXPECT_EQ(client.http_status(), 101);
  EXPECT_EQ(client.accepted_subprotocol(), "ocpp1.6");
  EXPECT_THAT(observer_.Connected(1), ::testing::ElementsAre("CP-1"));

  client.WriteText(kHeartbeat);
  EXPECT_EQ(client.Read().value_or(""), R"([3,"hb-1",{"currentTime":"2026-12-06T09:00:00Z"}])");

  // The Central System's own CALL, answered by the client.
  absl::Mutex mu;
  std::optional<CallOutcome> outcome;
  observer_.Link(0)->Call("Reset", json{{"type", "Soft"}}, [&](CallOutcome o) {
    absl::MutexLock lock(&mu);
    outcome = std::move(o);
  });
  absl::StatusOr<std::string> call = client.Read();
  ASSERT_TRUE(call.ok()) << call.status();
  json frame = json::parse(*call);
  EXPECT_EQ(frame[0], 2);
  EXPECT_EQ(frame[2], "Reset");
  client.WriteText(json::array({3, frame[1], {{"status", "Accepted"}}}).dump());
  {
    absl::MutexLock lock(&mu);
    auto answered = [&]() { return outcome.has_value(); };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&answered), absl::Seconds(10)));
    EXPECT_EQ(outcome->result, (json{{"status", "Accepted"}}));
  }
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(WsServerTest, IdentityIsTheLastPercentDecodedPathSegment) {
  StartServer(Options(1));
  Client client;
  Dial dial;
  dial.target = "/some/prefix/CP%202?token=x";
  dial.authorization = BasicAuth("CP 2", "secret-2");
  ASSERT_TRUE(client.Connect(port(), dial).ok());
  EXPECT_THAT(observer_.Connected(1), ::testing::ElementsAre("CP 2"));
}

TEST_F(WsServerTest, UnknownOrMissingIdentityIs404) {
  StartServer(Options(0));
  for (const char* target : {"/ocpp/CP-9", "/", "/ocpp/CP%2", "/ocpp/CP%00"}) {
    Client client;
    Dial dial;
    dial.target = target;
    EXPECT_FALSE(client.Connect(port(), dial).ok()) << target;
    EXPECT_EQ(client.http_status(), 404) << target;
  }
  std::vector<std::string> refused = observer_.Refused(4);
  EXPECT_THAT(refused[0], HasSubstr("CP-9 404 this charge point is not configured"));
  EXPECT_THAT(refused[1], HasSubstr(" 404 no charge point identity"));
  EXPECT_TRUE(observer_.Connected(0).empty());
}

TEST_F(WsServerTest, BasicAuthRefusalsAre401) {
  StartServer(Options(1));
  const std::vector<std::optional<std::string>> attempts = {
      std::nullopt,                    // none
      "Basic !!!!",                    // not base64
      "Bearer abc",                    // another scheme
      BasicAuth("CP-1", "secret-2"),   // another charger's password
      BasicAuth("CP 2", "secret-2"),   // user is not the identity
      BasicAuth("CP-1", "secret-1 "),  // almost
  };
  for (const std::optional<std::string>& authorization : attempts) {
    Client client;
    Dial dial;
    dial.authorization = authorization;
    EXPECT_FALSE(client.Connect(port(), dial).ok()) << authorization.value_or("(none)");
    EXPECT_EQ(client.http_status(), 401) << authorization.value_or("(none)");
  }
  std::vector<std::string> refused = observer_.Refused(attempts.size());
  EXPECT_THAT(refused[0], HasSubstr("CP-1 401 basic authentication required"));
  EXPECT_THAT(refused[3], HasSubstr("CP-1 401 wrong user name or password"));
}

TEST_F(WsServerTest, NotAnUpgradeIs400) {
  StartServer(Options(0));
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port())));
  http::request<http::empty_body> request(http::verb::get, "/ocpp/CP-1", 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_THAT(response.body(), HasSubstr("websocket upgrade"));
}

TEST_F(WsServerTest, GarbageInsteadOfARequestIsDropped) {
  StartServer(Options(0));
  EXPECT_TRUE(ServerClosesRawConnection(port(), "\x16\x03\x01 this is not HTTP\r\n\r\n"));
  EXPECT_THAT(observer_.Refused(1)[0], HasSubstr(" 0 no valid upgrade request"));
}

TEST_F(WsServerTest, NoSubprotocolWeSpeakIsClosedWith1002) {
  StartServer(Options(0));
  for (std::optional<std::string> offered :
       std::vector<std::optional<std::string>>{std::nullopt, "ocpp2.0.1, ocpp1.5"}) {
    Client client;
    Dial dial;
    dial.subprotocols = offered;
    ASSERT_TRUE(client.Connect(port(), dial).ok());
    EXPECT_EQ(client.accepted_subprotocol(), "");
    EXPECT_FALSE(client.Read().ok());
    EXPECT_EQ(client.close_reason().code, 1002);
    EXPECT_EQ(std::string(client.close_reason().reason.data(), client.close_reason().reason.size()),
              "subprotocol ocpp1.6 required");
  }
  std::vector<std::string> refused = observer_.Refused(2);
  EXPECT_THAT(refused[1], HasSubstr("offered: \"ocpp2.0.1, ocpp1.5\"; we speak ocpp1.6"));
  EXPECT_TRUE(observer_.Connected(0).empty());
}

TEST_F(WsServerTest, OfferingSeveralSubprotocolsPicksOcpp16) {
  StartServer(Options(0));
  Client client;
  Dial dial;
  dial.subprotocols = "ocpp2.0.1,ocpp1.6";
  ASSERT_TRUE(client.Connect(port(), dial).ok());
  EXPECT_EQ(client.accepted_subprotocol(), "ocpp1.6");
}

TEST_F(WsServerTest, OversizedFrameIsClosedWith1009) {
  WsServerOptions options = Options(0);
  options.max_frame_bytes = 1024;
  StartServer(options);
  Client client;
  ASSERT_TRUE(client.Connect(port(), Dial()).ok());
  client.WriteText(std::string(2000, ' '));
  EXPECT_FALSE(client.Read().ok());
  EXPECT_EQ(client.close_reason().code, 1009);
  EXPECT_THAT(observer_.Disconnected(1)[0], HasSubstr("CP-1: a frame exceeded 1024 bytes"));
}

TEST_F(WsServerTest, BinaryFrameIsClosedWith1003) {
  StartServer(Options(0));
  Client client;
  ASSERT_TRUE(client.Connect(port(), Dial()).ok());
  client.WriteBinary(kHeartbeat);
  EXPECT_FALSE(client.Read().ok());
  EXPECT_EQ(client.close_reason().code, 1003);
  EXPECT_THAT(observer_.Disconnected(1)[0], HasSubstr("CP-1: closed (1003"));
}

TEST_F(WsServerTest, RepeatedBadFramesCloseWith1002) {
  StartServer(Options(0));
  Client client;
  ASSERT_TRUE(client.Connect(port(), Dial()).ok());
  // Each garbage frame is dropped; the 11th in a row closes (max 10).
  for (int i = 0; i < 11; ++i) client.WriteText("not json");
  absl::StatusOr<std::string> read = client.Read();
  EXPECT_FALSE(read.ok());
  EXPECT_EQ(client.close_reason().code, 1002);
}

TEST_F(WsServerTest, ClientThatNeverSendsItsRequestIsDropped) {
  WsServerOptions options = Options(0);
  options.handshake_timeout = absl::Milliseconds(200);
  StartServer(options);
  EXPECT_TRUE(ServerClosesRawConnection(port()));
  EXPECT_THAT(observer_.Refused(1)[0], HasSubstr(" 0 no upgrade request within 200ms"));
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(WsServerTest, NewConnectionOfAnIdentityReplacesTheOldOne) {
  StartServer(Options(0));
  Client first, second;
  ASSERT_TRUE(first.Connect(port(), Dial()).ok());
  observer_.Connected(1);
  ASSERT_TRUE(second.Connect(port(), Dial()).ok());
  observer_.Connected(2);

  EXPECT_FALSE(first.Read().ok());
  EXPECT_EQ(first.close_reason().code, 1000);
  EXPECT_EQ(std::string(first.close_reason().reason.data(), first.close_reason().reason.size()),
            "replaced by a new connection");
  EXPECT_THAT(observer_.Disconnected(1), ::testing::ElementsAre(HasSubstr("CP-1: closed (1000")));

  second.WriteText(kHeartbeat);
  EXPECT_THAT(second.Read().value_or(""), HasSubstr("currentTime"));

  // A CALL through the old link fails; through the new one it is sent.
  absl::Mutex mu;
  std::optional<CallOutcome> old_outcome;
  observer_.Link(0)->Call("Reset", json{{"type", "Soft"}}, [&](CallOutcome o) {
    absl::MutexLock lock(&mu);
    old_outcome = std::move(o);
  });
  absl::MutexLock lock(&mu);
  auto answered = [&]() { return old_outcome.has_value(); };
  ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&answered), absl::Seconds(10)));
  EXPECT_EQ(old_outcome->status.code(), absl::StatusCode::kUnavailable);
}

TEST_F(WsServerTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  WsServerOptions options = Options(0);
  options.max_connections = 1;
  StartServer(options);
  {
    Client client;
    ASSERT_TRUE(client.Connect(port(), Dial()).ok());
    observer_.Connected(1);
    EXPECT_TRUE(ServerClosesRawConnection(port()));
    EXPECT_THAT(observer_.Refused(1)[0], HasSubstr(" 0 connection cap of 1 reached"));
  }
  // The first one gone, there is room again.
  observer_.Disconnected(1);
  Client again;
  ASSERT_TRUE(again.Connect(port(), Dial()).ok());
  observer_.Connected(2);
}

TEST_F(WsServerTest, StopClosesEveryConnectionGoingAway) {
  StartServer(Options(0));
  Client client;
  ASSERT_TRUE(client.Connect(port(), Dial()).ok());
  observer_.Connected(1);
  server_->Stop();
  EXPECT_FALSE(client.Read().ok());
  EXPECT_EQ(client.close_reason().code, 1001);
  server_->Stop();  // idempotent
}

TEST_F(WsServerTest, ProfileTwoIsBasicAuthOverTls) {
  StartServer(TlsOptions(2));
  Client client;
  Dial dial;
  dial.tls = true;
  dial.ca_file = Pki().ca_file();
  dial.authorization = BasicAuth("CP-1", "secret-1");
  ASSERT_TRUE(client.Connect(port(), dial).ok());
  client.WriteText(kHeartbeat);
  EXPECT_THAT(client.Read().value_or(""), HasSubstr("currentTime"));

  Client wrong;
  dial.authorization = BasicAuth("CP-1", "nope");
  EXPECT_FALSE(wrong.Connect(port(), dial).ok());
  EXPECT_EQ(wrong.http_status(), 401);

  // Plain websocket to a TLS port: the TLS handshake fails, nothing leaks.
  Client plain;
  EXPECT_FALSE(plain.Connect(port(), Dial()).ok());
  EXPECT_THAT(observer_.Refused(2)[1], HasSubstr(" 0 TLS handshake failed"));
}

TEST_F(WsServerTest, ProfileThreeWantsACertificateOfTheSiteCaNamingTheIdentity) {
  StartServer(TlsOptions(3));
  Dial dial;
  dial.tls = true;
  dial.ca_file = Pki().ca_file();

  absl::StatusOr<evgate::testing::CertificatePair> good = Pki().IssueClient("CP-1");
  ASSERT_TRUE(good.ok()) << good.status();
  dial.client_certificate = *good;
  Client client;
  ASSERT_TRUE(client.Connect(port(), dial).ok());
  client.WriteText(kHeartbeat);
  EXPECT_THAT(client.Read().value_or(""), HasSubstr("currentTime"));

  // Another charge point's certificate.
  absl::StatusOr<evgate::testing::CertificatePair> other_cp = Pki().IssueClient("CP-2");
  ASSERT_TRUE(other_cp.ok());
  dial.client_certificate = *other_cp;
  Client impostor;
  EXPECT_FALSE(impostor.Connect(port(), dial).ok());
  EXPECT_EQ(impostor.http_status(), 403);
  EXPECT_THAT(observer_.Refused(1)[0], HasSubstr("CP-1 403 the client certificate's CN \"CP-2\""));

  // A certificate of another CA, and none at all: the TLS handshake fails.
  absl::StatusOr<evgate::testing::CertificatePair> foreign =
      Pki().IssueClient("CP-1", /*by_other_ca=*/true);
  ASSERT_TRUE(foreign.ok());
  for (std::optional<evgate::testing::CertificatePair> certificate :
       {std::optional(*foreign), std::optional<evgate::testing::CertificatePair>()}) {
    dial.client_certificate = certificate;
    Client refused;
    EXPECT_FALSE(refused.Connect(port(), dial).ok());
    EXPECT_NE(refused.http_status(), 101);
  }
  std::vector<std::string> refused = observer_.Refused(3);
  EXPECT_THAT(refused[1], HasSubstr(" 0 TLS handshake failed"));
  EXPECT_THAT(refused[2], HasSubstr(" 0 TLS handshake failed"));
  EXPECT_THAT(observer_.Connected(1), ::testing::ElementsAre("CP-1"));
}

TEST_F(WsServerTest, BadOptionsAreRefusedAtStart) {
  struct Case {
    std::string listen;
    int profile;
    std::string cert;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"127.0.0.1", 0, "", "no port"},
      {"127.0.0.1:99999", 0, "", "bad port"},
      {"127.0.0.1:http", 0, "", "bad port"},
      {"not-an-address:9000", 0, "", "bad address"},
      {"127.0.0.1:0", 4, "", "security profile 4 is not 0-3"},
      {"127.0.0.1:0", 2, "/nonexistent/cert.pem", "tls_cert_file /nonexistent/cert.pem"},
  };
  for (const Case& c : cases) {
    WsServerOptions options = Options(c.profile);
    options.listen = c.listen;
    options.tls_cert_file = c.cert;
    absl::StatusOr<std::unique_ptr<WsServer>> started =
        WsServer::Start(options, OcppSchemas::Ocpp16(), clock_, &observer_);
    ASSERT_FALSE(started.ok()) << c.listen;
    EXPECT_THAT(started.status().message(), HasSubstr(c.error)) << c.listen;
  }
}

TEST(IdentityFromTarget, TakesTheLastSegmentAndRefusesBrokenEncoding) {
  EXPECT_EQ(IdentityFromTarget("/ocpp/CP-1"), "CP-1");
  EXPECT_EQ(IdentityFromTarget("/ocpp/CP-1/"), "CP-1");
  EXPECT_EQ(IdentityFromTarget("/CP%2D1?x=1#frag"), "CP-1");
  EXPECT_EQ(IdentityFromTarget("CP-1"), "CP-1");
  EXPECT_EQ(IdentityFromTarget("/ocpp/%41%62"), "Ab");
  EXPECT_EQ(IdentityFromTarget("/"), "");
  EXPECT_EQ(IdentityFromTarget(""), "");
  EXPECT_EQ(IdentityFromTarget("/ocpp/CP%"), "");
  EXPECT_EQ(IdentityFromTarget("/ocpp/CP%4"), "");
  EXPECT_EQ(IdentityFromTarget("/ocpp/CP%zz"), "");
  EXPECT_EQ(IdentityFromTarget("/ocpp/CP%0A"), "");  // control character
  EXPECT_EQ(IdentityFromTarget("/ocpp/a%2Fb"), "");  // an encoded slash
}

TEST(ParseBasicAuth, DecodesUserAndPasswordAndRefusesTheRest) {
  std::optional<BasicCredentials> parsed = ParseBasicAuth(BasicAuth("CP-1", "pa:ss"));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->user, "CP-1");
  EXPECT_EQ(parsed->password, "pa:ss");
  parsed = ParseBasicAuth("basic " + BasicAuth("ab", "").substr(6));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->user, "ab");
  EXPECT_EQ(parsed->password, "");

  EXPECT_FALSE(ParseBasicAuth(""));
  EXPECT_FALSE(ParseBasicAuth("Basic"));
  EXPECT_FALSE(ParseBasicAuth("Basic "));
  EXPECT_FALSE(ParseBasicAuth("Bearer Q1AtMTpzZWNyZXQ="));
  EXPECT_FALSE(ParseBasicAuth("Basic Q1AtMTpzZWNyZXQ"));   // length not a multiple of 4
  EXPECT_FALSE(ParseBasicAuth("Basic Q1At!TpzZWNyZXQ="));  // not base64
  EXPECT_FALSE(ParseBasicAuth("Basic bm9jb2xvbg=="));      // "nocolon"
}

}  // namespace
}  // namespace evgate::ocpp
