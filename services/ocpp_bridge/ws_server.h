// The websocket side of the local Central System: OCPP-J 1.6 over Boost.Beast
// and Boost.Asio, with the OCPP 1.6 security profiles 0-3.
//
// Every accepted TCP connection goes through these steps, all within the
// handshake timeout (a slow or silent client is dropped):
//   1. Profiles 2 and 3: the TLS handshake (TLS 1.2 or later). Profile 3
//      requires a client certificate that the site CA signed.
//   2. The HTTP upgrade request. The charge point's identity is the last
//      segment of the URL's path (percent-decoded). Refusals, each logged and
//      reported to the observer (ListChargePoints shows them):
//        - not a websocket upgrade                       -> 400
//        - an identity site.yaml does not configure      -> 404
//        - profiles 1/2: no basic auth, another user name than the identity,
//          or the wrong password                         -> 401
//        - profile 3: the certificate's CN is not the identity -> 403
//   3. The subprotocol: "ocpp1.6" must be among those offered. If it is not,
//      the handshake completes without a Sec-WebSocket-Protocol header (as
//      OCPP-J section 3.1.2 asks) and the connection is closed at once with
//      1002 and a reason naming the subprotocol we speak.
// Then one RpcEndpoint per connection speaks OCPP-J. Limits: a frame larger
// than `max_frame_bytes` closes the connection with 1009 (Beast does it); a
// binary frame closes it with 1003; a connection silent for `idle_timeout`
// is dropped, Beast pinging it at half that time; beyond `max_connections`
// live TCP connections a new one is closed as soon as it is accepted.
//
// A new connection of an identity replaces the old one: the old connection
// is closed with 1000 "replaced by a new connection" and its CALLs in flight
// fail with UNAVAILABLE (a charger that lost power reconnects before the old
// TCP connection times out).
//
// Threading: the server runs its own Asio threads; each connection lives on
// its own strand. The observer is called from those threads (so it must be
// thread-safe) and must not block for long.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_WS_SERVER_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_WS_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/clock.h"
#include "services/ocpp_bridge/ocpp_schemas.h"
#include "services/ocpp_bridge/rpc_endpoint.h"

namespace evgate::ocpp {

struct WsServerOptions {
  // "host:port"; port 0 picks a free one (WsServer::port() tells which).
  std::string listen = "0.0.0.0:9000";
  // 0 plain ws, 1 basic auth, 2 TLS + basic auth, 3 TLS + client certificate.
  int security_profile = 2;
  // Profiles 2 and 3: the server's certificate chain and key (PEM).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Profile 3: the CA that signs the chargers' certificates (PEM).
  std::string ca_file;
  // The charge points allowed to connect: identity -> password. The password
  // is used by profiles 1 and 2 only ("" otherwise).
  absl::flat_hash_map<std::string, std::string> charge_points;

  size_t max_frame_bytes = 64 * 1024;
  absl::Duration handshake_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(60);
  size_t max_connections = 2000;
  int threads = 1;
  // How often each connection's RpcEndpoint checks its call timeout.
  absl::Duration tick = absl::Milliseconds(100);
  // Per connection; id_prefix is set by the server (unique per connection).
  RpcEndpointOptions rpc;
};

// One open OCPP-J connection of a charge point. Thread-safe. A link may be
// kept after its connection ended, or after the server stopped: its calls then
// fail at once with UNAVAILABLE.
class ChargePointLink {
 public:
  virtual ~ChargePointLink() = default;
  virtual const std::string& identity() const = 0;
  // The peer's address, "ip:port".
  virtual const std::string& remote() const = 0;
  // Sends a CALL (queued behind the one in flight). `done` runs exactly once,
  // on the connection's strand: with the outcome, or with the reason the CALL
  // was not sent (invalid payload, queue full, connection ended).
  virtual void Call(std::string action, nlohmann::json payload, RpcEndpoint::Done done) = 0;
  // Closes the connection with a websocket close code and reason.
  virtual void Close(int code, std::string reason) = 0;
};

// What the Central System learns from the server. Called from the server's
// threads; must be thread-safe.
class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  // A charge point is connected. The returned handler answers its CALLs, on
  // the connection's strand. When an identity reconnects, OnConnected of the
  // new link may come before OnDisconnected of the old one.
  virtual RpcEndpoint::CallHandler OnConnected(std::shared_ptr<ChargePointLink> link) = 0;
  virtual void OnDisconnected(const ChargePointLink& link, absl::string_view why) = 0;
  // A connection attempt was refused. `identity` is "" when it was refused
  // before its request was read; `http_status` is 0 when no HTTP answer was
  // given (TLS failure, connection cap, subprotocol).
  virtual void OnRefused(absl::string_view identity, absl::string_view remote, int http_status,
                         absl::string_view why) = 0;
};

class WsServer {
 public:
  // Binds, starts the threads and accepts. `schemas`, `clock` and `observer`
  // must outlive the server.
  static absl::StatusOr<std::unique_ptr<WsServer>> Start(WsServerOptions options,
                                                         const OcppSchemas& schemas,
                                                         const Clock& clock,
                                                         ConnectionObserver* observer);
  virtual ~WsServer() = default;

  // The port listened on.
  virtual int port() const = 0;
  // TCP connections alive now, in any state.
  virtual size_t connections() const = 0;
  // Stops accepting, closes every connection (1001 "going away", up to 2 s
  // for the charge points to answer, then at once), so that every CALL's
  // callback has run; joins the threads. Idempotent; the destructor calls it.
  virtual void Stop() = 0;
};

// The identity of an OCPP-J URL target: its path's last segment,
// percent-decoded ("/ocpp/CP%2D1?x=1" -> "CP-1"); "" when there is none or
// the encoding is broken.
std::string IdentityFromTarget(absl::string_view target);

// The user name and password of an "Authorization: Basic ..." header value;
// nullopt when it is not basic auth or not valid base64 with a colon.
struct BasicCredentials {
  std::string user;
  std::string password;
};
std::optional<BasicCredentials> ParseBasicAuth(absl::string_view header);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_WS_SERVER_H_
