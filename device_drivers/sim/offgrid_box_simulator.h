// A simulated V2X off-grid box (the ICE-22's V2X Off Grid Box), serving
// evgate's register map (docs/protocols/offgrid-box.md,
// device_drivers/modbus/profiles/v2x_offgrid_box.yaml) as a ModbusUnit.
//
// Behaviour (the protocol document is the reference):
//   - On grid: transfer switch ON_GRID, QF1/QF2 closed, backup battery
//     charged (26.4 V), grid voltage and frequency measured.
//   - Grid loss (SetGridPresent(false)): the switch opens at once (OPEN,
//     anti-islanding), the 24 V backup battery powers the box, and the
//     standby countdown (holding 0x0102, default 180 s) starts. A transfer
//     to off-grid (command 1) before it ends closes the switch to OFF_GRID
//     (the V2X charger forms the grid; P-N pull-in bonds N-PE when enabled).
//     When the countdown ends first, the box shuts down ("Sleep": backup
//     battery output off, no answers) until the grid returns or someone
//     presses the backup battery button, which restarts the countdown.
//   - Grid return: from OPEN the box goes back ON_GRID by itself; from
//     OFF_GRID it stays until told to transfer back (command 2), which is
//     refused (exception 04) while there is no grid. A transfer to off-grid
//     is refused while QF1 is open.
//   - AC meter 1 (the V2X system's grid connection point): per-phase currents
//     set by a site simulator (+ import), power from the grid voltage, energy
//     integrated over time.
//   - Faults: QF1/QF2 trips, backup battery voltage, not answering.
//
// Thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_OFFGRID_BOX_SIMULATOR_H_
#define EVGATE_DEVICE_DRIVERS_SIM_OFFGRID_BOX_SIMULATOR_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/sim/modbus_pdu.h"
#include "runtime/clock.h"

namespace evgate::sim {

class OffGridBoxSimulator final : public ModbusUnit {
 public:
  // Register values of the transfer switch position (input 0x0005).
  enum class Switch : uint16_t { kUnknown = 0, kOnGrid = 1, kOffGrid = 2, kOpen = 3 };
  // Commands (holding 0x0100).
  static constexpr uint16_t kTransferToOffGrid = 1;
  static constexpr uint16_t kTransferToOnGrid = 2;
  static constexpr uint16_t kDefaultStandbyCountdownS = 180;

  explicit OffGridBoxSimulator(const Clock& clock);

  // The grid and the site.
  void SetGridPresent(bool present);
  void SetGridVoltage(double voltage_v, double frequency_hz = 50);
  // Current through AC meter 1 per phase, A (+ import from the grid).
  void SetMeter1Currents(const std::array<double, 3>& current_a);
  // The backup battery button: wakes a box that shut down during an outage
  // and restarts the standby countdown.
  void PressBackupBatteryButton();
  // Faults.
  void SetQf1Closed(bool closed);
  void SetQf2Closed(bool closed);
  void SetBackupBatteryVoltage(std::optional<double> voltage_v);  // nullopt = physics
  void SetResponding(bool responding);

  // What a site simulator and tests observe.
  Switch transfer_switch();
  bool pn_pull_in_active();
  bool shut_down();  // the standby countdown ran out
  absl::Duration standby_remaining();
  // The box draws nothing worth counting itself; the site's current at its
  // meter is what SetMeter1Currents() set.
  std::array<double, 3> meter_1_currents();
  double meter_1_import_wh();
  double meter_1_export_wh();

  // ModbusUnit.
  ReadResult Read(RegisterTable table, uint16_t address, int count) override;
  ModbusException Write(uint16_t address, absl::Span<const uint16_t> values) override;
  bool Responding() override;

 private:
  void UpdateLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double PowerLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<uint16_t> InputRegistersLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;

  absl::Mutex mu_;
  absl::Time updated_to_ ABSL_GUARDED_BY(mu_);
  bool grid_present_ ABSL_GUARDED_BY(mu_) = true;
  double grid_voltage_v_ ABSL_GUARDED_BY(mu_) = 230;
  double frequency_hz_ ABSL_GUARDED_BY(mu_) = 50;
  Switch switch_ ABSL_GUARDED_BY(mu_) = Switch::kOnGrid;
  bool qf1_closed_ ABSL_GUARDED_BY(mu_) = true;
  bool qf2_closed_ ABSL_GUARDED_BY(mu_) = true;
  std::optional<double> battery_override_v_ ABSL_GUARDED_BY(mu_);
  bool responding_ ABSL_GUARDED_BY(mu_) = true;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Time> countdown_end_ ABSL_GUARDED_BY(mu_);
  uint16_t pn_pull_in_enable_ ABSL_GUARDED_BY(mu_) = 0;
  uint16_t standby_countdown_s_ ABSL_GUARDED_BY(mu_) = kDefaultStandbyCountdownS;
  std::array<double, 3> meter_current_a_ ABSL_GUARDED_BY(mu_) = {0, 0, 0};
  double import_wh_ ABSL_GUARDED_BY(mu_) = 0;
  double export_wh_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_OFFGRID_BOX_SIMULATOR_H_
