// Reading the sampled values of OCPP 1.6 MeterValues (and of
// StopTransaction's transactionData) into one reading per timestamp, in base
// units: Wh, W, A, V, percent.
//
// What a sampledValue means (OCPP 1.6 section 7.47 and the SampledValue
// defaults): measurand defaults to Energy.Active.Import.Register, unit to Wh
// for energy, W for power, A for current, V for voltage and Percent for SoC;
// kWh and kW are scaled. Per-phase values (phase "L1", "L2", "L3", or
// "L1-N" etc. for voltage) go to their phase; a current or power without a
// phase is the total (on a DC charger: the DC side). A sample at location
// "EV" other than SoC is ignored (it is not the charger's meter).
//
// Values that cannot be used are skipped, not guessed, and listed in
// `skipped` with the reason: a value that is not a number, SignedData
// (evgate cannot verify signed meter data), a unit that does not fit the
// measurand (e.g. "A" for an energy register), and measurands evgate does
// not use (reactive energy, frequency, temperature, RPM, ...).
//
// Thread-safety: thread-safe (pure functions).
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_METER_VALUES_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_METER_VALUES_H_

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace evgate::ocpp {

struct MeterReading {
  absl::Time timestamp;
  // Sample context of the first sampled value ("Sample.Periodic" default).
  std::string context = "Sample.Periodic";
  std::optional<double> energy_import_wh;
  std::optional<double> energy_export_wh;
  // Total active power, import (charging) and export (discharging).
  std::optional<double> power_import_w;
  std::optional<double> power_export_w;
  std::optional<double> power_offered_w;
  // Per phase L1, L2, L3.
  std::array<std::optional<double>, 3> current_import_a;
  std::array<std::optional<double>, 3> voltage_v;
  // Without a phase: the total (DC chargers: the DC current and voltage).
  std::optional<double> current_import_total_a;
  std::optional<double> current_export_total_a;
  std::optional<double> current_offered_a;
  std::optional<double> voltage_total_v;
  std::optional<double> soc_pct;
  // "Power.Active.Import: value \"abc\" is not a number", ...
  std::vector<std::string> skipped;
};

// One element of a MeterValues.req "meterValue" array (already valid against
// the schema). Fails only when its timestamp is not RFC 3339.
absl::StatusOr<MeterReading> ParseMeterValue(const nlohmann::json& meter_value);

// An OCPP date-time ("2026-12-06T14:07:39Z", fractions and offsets allowed).
absl::StatusOr<absl::Time> ParseOcppTime(absl::string_view text);
// The form evgate sends: UTC with milliseconds, "2026-12-06T14:07:39.123Z".
std::string FormatOcppTime(absl::Time time);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_METER_VALUES_H_
