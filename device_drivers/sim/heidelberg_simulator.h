// A simulated Heidelberg Energy Control wallbox: a ModbusUnit with the
// register map of device_drivers/modbus/profiles/heidelberg_energy_control.yaml
// and the physics a driver has to cope with.
//
//   - The EV: plugged in (state B), asks for current (state C) and draws
//     min(current limit in force, EV maximum) on its phases after `lag`
//     (IEC 61851-1 gives an EV 5 s to follow a lower limit); 0 in A and B.
//     Energy is integrated exactly over that step function.
//   - Charging-state register 5: 2/3 = A, 4/5 = B, 6/7 = C; the odd code
//     when the box allows charging (limit >= 6 A, not locked), the even
//     code when it does not; 9 = E, 10 = F (injected faults).
//   - Holding registers 257 watchdog timeout (ms), 258 standby (4 =
//     disabled), 259 remote lock (0 locked, 1 unlocked), 261 max current
//     (0.1 A; below 60 means 0, above 160 is refused with exception 03),
//     262 failsafe current (same rule). Power-up defaults: watchdog 15000 ms, standby
//     enabled, unlocked, max current 16 A, failsafe 0.
//   - The watchdog: with a non-zero timeout, no Modbus request to this unit
//     for that long sets the current limit to the failsafe current (register
//     261 then reads the failsafe value) until the next write of 261.
//   - Standby: when enabled, the box goes to sleep after `standby_after`
//     without a vehicle and stops answering until a vehicle plugs in.
//   - Faults: stop answering, error states E/F, a power cycle (holding
//     registers back to their defaults).
//
// The small C++ API is what a site simulator composes: plug/unplug, EV
// maximum, faults, and the per-phase current the box draws now.
// Thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_HEIDELBERG_SIMULATOR_H_
#define EVGATE_DEVICE_DRIVERS_SIM_HEIDELBERG_SIMULATOR_H_

#include <array>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/sim/modbus_pdu.h"
#include "runtime/clock.h"

namespace evgate::sim {

class HeidelbergSimulator final : public ModbusUnit {
 public:
  struct Options {
    int phases = 3;  // 1: wired single-phase (only L1 carries current)
    absl::Duration lag = absl::Seconds(2);
    absl::Duration standby_after = absl::Minutes(10);
    double voltage_v = 230;
    double temperature_c = 31.5;
  };
  enum class Fault { kNone, kStateE, kStateF };

  explicit HeidelbergSimulator(const Clock& clock) : HeidelbergSimulator(clock, Options()) {}
  HeidelbergSimulator(const Clock& clock, Options options);

  // The vehicle. PlugIn: state B, then C at once when `charge` (an EV that
  // wants energy); `ev_phases` 1 or 3 (a single-phase EV draws on L1 only).
  void PlugIn(double ev_max_current_a, int ev_phases = 3, bool charge = true);
  void Unplug();
  // C <-> B: the EV asks for current (it draws after the lag) or stops
  // asking (battery full: it stops drawing at once).
  void SetEvCharging(bool charge);
  void SetEvMaxCurrent(double a);

  // Faults.
  void InjectFault(Fault fault);
  void SetResponding(bool responding);
  // Loses power and comes back: holding registers return to their defaults.
  void PowerCycle();

  // What a site simulator and tests observe. Currents per box phase, A.
  std::array<double, 3> PhaseCurrents();
  double energy_wh();
  double current_limit_a();  // in force now (after watchdog / lock)
  bool in_failsafe();        // the watchdog fired and no new limit came since
  // When the last Modbus request to this unit came, on the clock (the
  // watchdog's reference; construction or power cycle before any).
  absl::Time last_request();
  uint16_t holding(uint16_t address);

  // ModbusUnit.
  ReadResult Read(RegisterTable table, uint16_t address, int count) override;
  ModbusException Write(uint16_t address, absl::Span<const uint16_t> values) override;
  bool Responding() override;

 private:
  enum class Vehicle { kNone, kConnected, kCharging };

  // Advances the physics to `now`: watchdog, standby, lagged draw, energy.
  void UpdateLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The current the EV is told it may draw now, and what it draws.
  double TargetLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a change of the target at `now` (applied `lag` later).
  void RetargetLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllowedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint16_t ChargingStateLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetHoldingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const Options options_;

  absl::Mutex mu_;
  absl::Time updated_to_ ABSL_GUARDED_BY(mu_);
  Vehicle vehicle_ ABSL_GUARDED_BY(mu_) = Vehicle::kNone;
  double ev_max_a_ ABSL_GUARDED_BY(mu_) = 0;
  int ev_phases_ ABSL_GUARDED_BY(mu_) = 3;
  Fault fault_ ABSL_GUARDED_BY(mu_) = Fault::kNone;
  bool responding_ ABSL_GUARDED_BY(mu_) = true;
  bool asleep_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time idle_since_ ABSL_GUARDED_BY(mu_);    // no vehicle since
  absl::Time last_request_ ABSL_GUARDED_BY(mu_);  // watchdog reference
  bool failsafe_ ABSL_GUARDED_BY(mu_) = false;
  // Holding registers 257..262 (index address - 257).
  std::array<uint16_t, 6> holding_ ABSL_GUARDED_BY(mu_);
  // Target changes not yet followed by the EV: (when, target A).
  std::deque<std::pair<absl::Time, double>> pending_ ABSL_GUARDED_BY(mu_);
  double draw_a_ ABSL_GUARDED_BY(mu_) = 0;  // per active phase
  double energy_wh_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_HEIDELBERG_SIMULATOR_H_
