// The websocket side of simulated OCPP chargers: each OcppChargerSimulator
// connects as a charge point to a Central System (evgate's ocpp.local), on
// Boost.Beast, and exchanges OCPP-J frames through its own RpcEndpoint (the
// bridge's: framing, schema validation both ways, one CALL in flight,
// timeouts), so a simulated charger speaks exactly the protocol a real one
// must.
//
//   - ws://host:port/<charge point id>, subprotocol ocpp1.6; HTTP basic auth
//     (security profile 1) when a password is given. TLS profiles (2, 3) are
//     not simulated: the simulator refuses such a site's chargers with the
//     reason (site_simulator.cc).
//   - A connection that fails or drops is retried with exponential backoff
//     (reconnect_min doubling up to reconnect_max), the charger told
//     Disconnected() so its transaction messages wait for the next boot.
//   - Every `tick` (real time, on the I/O thread): the endpoint's timeouts,
//     then the charger's next CALL if none is out.
//
// All chargers share one I/O thread (a site of hundreds of chargers, or the
// benchmark's thousand, costs one thread). Thread-safe: Add before Start;
// Start and Stop from one thread.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_OCPP_CHARGE_POINT_CLIENT_H_
#define EVGATE_DEVICE_DRIVERS_SIM_OCPP_CHARGE_POINT_CLIENT_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "device_drivers/sim/ocpp_charger_simulator.h"
#include "runtime/clock.h"

namespace evgate::sim {

struct OcppClientOptions {
  absl::Duration tick = absl::Milliseconds(100);
  absl::Duration reconnect_min = absl::Seconds(1);
  absl::Duration reconnect_max = absl::Seconds(30);
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration call_timeout = absl::Seconds(30);
};

// Where one charger connects.
struct OcppClientTarget {
  std::string host;
  int port = 0;
  // Basic-auth password (security profile 1); empty = none (profile 0).
  std::string password;
};

// A charger's link as the simulator sees it.
struct OcppClientLink {
  bool connected = false;
  std::string last_error;  // why the last attempt failed or the link dropped
  int attempts = 0;        // connection attempts so far
};

class OcppChargePointClients {
 public:
  OcppChargePointClients(const Clock& clock, OcppClientOptions options = {});
  ~OcppChargePointClients();
  OcppChargePointClients(const OcppChargePointClients&) = delete;
  OcppChargePointClients& operator=(const OcppChargePointClients&) = delete;

  // `charger` must outlive this object.
  void Add(OcppChargerSimulator* charger, OcppClientTarget target);
  // Starts the I/O thread: every charger connects (and keeps reconnecting).
  void Start();
  // Closes every connection and joins the thread. Idempotent.
  void Stop();

  OcppClientLink Link(const std::string& charge_point_id) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_OCPP_CHARGE_POINT_CLIENT_H_
