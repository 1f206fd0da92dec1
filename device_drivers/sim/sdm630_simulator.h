// A simulated Eastron SDM630 energy meter: a ModbusUnit for a ModbusServer
// (modbus_server.h), or served on its own over Modbus TCP with Listen().
//
// The physics state is settable per phase (voltage, current, power factor)
// plus the frequency; power follows as V x I x PF, and the import/export
// energy registers count up by integrating total power over the injected
// clock between reads. The input registers (function 04) follow the SDM630
// map in device_drivers/modbus/profiles/eastron_sdm630.yaml: float32, high
// word first, 0x0000-0x01FF. Faults can be injected: a register can be
// forced to any float (NaN, absurd values) and the meter can stop answering.
//
// Used by the sdm630_sim and modbus_sim binaries, the demo site and tests.
// Thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_SDM630_SIMULATOR_H_
#define EVGATE_DEVICE_DRIVERS_SIM_SDM630_SIMULATOR_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/sim/modbus_pdu.h"
#include "device_drivers/sim/modbus_server.h"
#include "runtime/clock.h"

namespace evgate::sim {

struct Sdm630Phase {
  double voltage_v = 230;
  double current_a = 0;
  double power_factor = 1;  // negative = power flows to the grid (export)
};

class Sdm630Simulator final : public ModbusUnit {
 public:
  // Number of input registers served (0x0000-0x01FF).
  static constexpr int kInputRegisters = 0x200;

  // `unit_id` is the unit Listen() serves it as.
  Sdm630Simulator(const Clock& clock, int unit_id = 1);
  ~Sdm630Simulator() override;
  Sdm630Simulator(const Sdm630Simulator&) = delete;
  Sdm630Simulator& operator=(const Sdm630Simulator&) = delete;

  // Physics. `phase` is 0-2 (L1-L3).
  void SetPhase(int phase, const Sdm630Phase& state);
  void SetFrequency(double hz);
  void SetEnergy(double import_wh, double export_wh);
  // Faults: force a float register (address of its high word) to `value`
  // until cleared; stop answering requests (a dead meter).
  void ForceFloat(uint16_t address, float value);
  void ClearForced();
  void SetResponding(bool responding);

  // Per-phase current, A (what a site simulator feeds from its loads).
  std::array<double, 3> PhaseCurrents();

  // The register image as the meter answers now (energy integrated to now).
  std::vector<uint16_t> InputRegisters();

  // ModbusUnit: input registers 0x0000-0x01FF; the holding registers
  // (configuration) are not simulated and answer "illegal data address".
  ReadResult Read(RegisterTable table, uint16_t address, int count) override;
  ModbusException Write(uint16_t address, absl::Span<const uint16_t> values) override;
  bool Responding() override;

  // Serves this meter alone over Modbus TCP on host:port (port 0 = a free
  // port; see port()) on a background thread, any number of clients.
  absl::Status Listen(const std::string& host, int port);
  int port() const;
  // Stops serving and closes every connection. Idempotent.
  void Stop();

 private:
  void IntegrateLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const int unit_id_;

  absl::Mutex mu_;
  std::array<Sdm630Phase, 3> phases_ ABSL_GUARDED_BY(mu_);
  double frequency_hz_ ABSL_GUARDED_BY(mu_) = 50;
  double import_wh_ ABSL_GUARDED_BY(mu_) = 0;
  double export_wh_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time integrated_to_ ABSL_GUARDED_BY(mu_);
  std::map<uint16_t, float> forced_ ABSL_GUARDED_BY(mu_);
  bool responding_ ABSL_GUARDED_BY(mu_) = true;

  std::unique_ptr<ModbusServer> server_;
};

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_SDM630_SIMULATOR_H_
