// The site the session service's tests run on: Cabur wallboxes on CAN (wb1,
// wb2; wb4 free vend), a DS60 with two connectors behind one card reader
// (dc1, dc2) and an ICE-22 V2X (v2x1, bidirectional), plus cards of every
// kind. Every EVSE but wb4 is in group "fleet".
#ifndef EVGATE_SERVICES_SESSION_TESTING_TEST_SITE_H_
#define EVGATE_SERVICES_SESSION_TESTING_TEST_SITE_H_

#include <string>

#include "absl/strings/str_cat.h"

namespace evgate::session::testing {

inline constexpr char kMasterCard[] = "04A1B2C3D4E5F6";    // master
inline constexpr char kVanCard[] = "04B2C3D4E5F607";       // groups [fleet]
inline constexpr char kTempCard[] = "04C3D4E5F60718";      // wb4 only, expired in 2026
inline constexpr char kBlockedCard[] = "DEADBEEF";         // blocked
inline constexpr char kOtherVanCard[] = "04D4E5F6071829";  // no restriction

// `database`: absolute path of the session database. `device_drivers`:
// host:port of the DeviceDriver service, or "" to leave it out.
inline std::string TestSiteYaml(const std::string& database,
                                const std::string& device_drivers = "") {
  return absl::StrCat(R"(insecure_demo: true
site: {id: test-depot}
grid: {fuse_limit_a: 63}
buses:
  - {id: can-wallboxes, type: can, interface: vcan0, transport: udp}
devices:
  - {id: wallbox-1, profile: cabur_ev_plus_22kw, bus: can-wallboxes, address: 1}
  - {id: wallbox-2, profile: cabur_ev_plus_22kw, bus: can-wallboxes, address: 2}
  - {id: wallbox-4, profile: cabur_ev_plus_7kw, bus: can-wallboxes, address: 4}
  - {id: ds60-1, profile: ds60, charge_point_id: DS60-1}
  - {id: ice22-1, profile: ice22_v2x, charge_point_id: ICE22-1}
stations:
  - id: wb1
    device: wallbox-1
    circuit: grid
    evses: [{id: wb1, groups: [fleet]}]
  - id: wb2
    device: wallbox-2
    circuit: grid
    evses: [{id: wb2, groups: [fleet]}]
  - id: wb4
    device: wallbox-4
    circuit: grid
    evses: [{id: wb4, phases: [L2]}]
  - id: dc
    device: ds60-1
    circuit: grid
    evses:
      - {id: dc1, connector: 1, groups: [fleet]}
      - {id: dc2, connector: 2, groups: [fleet]}
  - id: v2x
    device: ice22-1
    circuit: grid
    evses: [{id: v2x1, max_power_w: 22000, bidirectional: true, groups: [fleet]}]
authorization:
  free_vend_evses: [wb4]
  connection_timeout_s: 120
  cards:
    - {uid: ")",
                      kMasterCard, R"(", name: "Depot manager", master: true}
    - {uid: ")",
                      kVanCard, R"(", name: "Van 12", groups: [fleet]}
    - {uid: ")",
                      kTempCard, R"(", name: "Temp driver", evses: [wb4],
       valid_from: 2026-01-01T00:00:00Z, valid_until: 2026-04-01T00:00:00Z}
    - {uid: ")",
                      kBlockedCard, R"(", name: "Lost card", blocked: true}
    - {uid: ")",
                      kOtherVanCard, R"(", name: "Van 14"}
ocpp:
  local: {listen: 127.0.0.1:0, security_profile: 0}
services:
  api_listen: 127.0.0.1:0
  session_database: )",
                      database, "\n",
                      device_drivers.empty() ? std::string()
                                             : absl::StrCat("  device_drivers: {endpoint: \"",
                                                            device_drivers, "\"}\n"));
}

}  // namespace evgate::session::testing

#endif  // EVGATE_SERVICES_SESSION_TESTING_TEST_SITE_H_
