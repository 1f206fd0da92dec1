// The bridge from the typed site configuration (site.yaml) to the allocation engine: the
// structure of the site (grid, circuit tree, stations, EVSEs and their wiring, limits,
// priorities, failsafe values) as an `allocation::AllocationInput` whose snapshot values
// (measurements, activity, rotation state) are still empty, plus the control loop's tuning.
//
// Thread-safety: pure functions of their arguments; thread-safe.

#ifndef EVGATE_SITE_CONTROLLER_CONTROL_SITE_MODEL_H_
#define EVGATE_SITE_CONTROLLER_CONTROL_SITE_MODEL_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "site_controller/allocation/allocation.h"
#include "site_controller/config/site_config.h"

namespace evgate::control {

// Tuning of the control loop (site.yaml `controller:`), in the engine's units.
struct ControlParams {
  double margin_a = site::defaults::kMarginA;
  double ramp_up_a_per_s = site::defaults::kRampUpAPerS;
  double hysteresis_a = site::defaults::kHysteresisA;
  double meter_timeout_s = site::defaults::kMeterTimeoutMs / 1000.0;
  double min_pause_s = site::defaults::kMinPauseS;
  // How long a setpoint a driver accepted stays in force without a refresh (SetpointTtl).
  double setpoint_ttl_s = 3.0;
  // The longest watchdog a device may have been programmed with: after the last setpoint a
  // driver sent (at most setpoint_ttl_s after it accepted one) the device falls back to its
  // failsafe within this time even when its driver is gone. site.yaml does not give it; the
  // default is the longest any backend can program (Modbus watchdog register: 65.535 s; CAN
  // WatchdogConfig: 60 s), so the fallback is proven, not assumed.
  double device_watchdog_s = 65.535;
  // How long a vehicle may take to follow a lowered offer (IEC 61851-1: 5 s after a PWM duty
  // cycle change). For that long the current a decrease frees is given to no one else.
  double ev_response_s = 5.0;
};

ControlParams ControlParamsFromConfig(const site::ControllerConfig& controller);

// How long a dispatched setpoint stays valid without a refresh before the
// driver (and the device's own watchdog) falls back to the failsafe: three
// ticks, at least 3 s. The load balancer refreshes every tick, so two lost
// refreshes are tolerated, and a dead controller leaves a safe site within
// seconds. Drivers use it as their default for batches without a TTL.
absl::Duration SetpointTtl(const site::ControllerConfig& controller);

// The engine input for `config`'s structure:
//  - grid: limits on grid.phases, contract and export limits, nominal voltage; metered (with
//    controller.meter_timeout_ms) when grid.meter is set, so that the engine is in failsafe
//    until the first reading arrives;
//  - circuits in config order; a circuit with a meter has `measured_a` = 0 A on every phase,
//    which marks it metered (ControlPolicy puts it in failsafe until its first reading), one
//    without has none (unmetered: base load 0);
//  - a station constraint for every station with a positive max_power_w;
//  - EVSEs in config order (stations, then connectors); an EVSE without `phases` (DC chargers)
//    loads every phase of its circuit; all start inactive.
// A loaded SiteConfig is valid, so an error here means an inconsistent hand-built config; the
// message names the config path.
absl::StatusOr<allocation::AllocationInput> AllocationInputFromConfig(
    const site::SiteConfig& config);

}  // namespace evgate::control

#endif  // EVGATE_SITE_CONTROLLER_CONTROL_SITE_MODEL_H_
