#include "services/ocpp_bridge/meter_values.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace evgate::ocpp {
namespace {

// The phase index 0..2 of "L1", "L2-N", ...; nullopt for none, "N" or a
// line-to-line phase.
std::optional<int> PhaseIndex(const std::string& phase) {
  if (phase == "L1" || phase == "L1-N") return 0;
  if (phase == "L2" || phase == "L2-N") return 1;
  if (phase == "L3" || phase == "L3-N") return 2;
  return std::nullopt;
}

enum class Quantity { kEnergy, kPower, kCurrent, kVoltage, kPercent };

// The factor from `unit` to the base unit of `quantity`; nullopt when the
// unit does not fit.
std::optional<double> UnitFactor(Quantity quantity, const std::string& unit) {
  switch (quantity) {
    case Quantity::kEnergy:
      if (unit.empty() || unit == "Wh") return 1.0;
      if (unit == "kWh") return 1000.0;
      return std::nullopt;
    case Quantity::kPower:
      if (unit.empty() || unit == "W") return 1.0;
      if (unit == "kW") return 1000.0;
      return std::nullopt;
    case Quantity::kCurrent:
      if (unit.empty() || unit == "A") return 1.0;
      return std::nullopt;
    case Quantity::kVoltage:
      if (unit.empty() || unit == "V") return 1.0;
      return std::nullopt;
    case Quantity::kPercent:
      if (unit.empty() || unit == "Percent") return 1.0;
      return std::nullopt;
  }
  return std::nullopt;
}

std::string Field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

absl::StatusOr<absl::Time> ParseOcppTime(absl::string_view text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("timestamp \"", text, "\" is not an RFC 3339 date-time: ", error));
  }
  return time;
}

std::string FormatOcppTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

absl::StatusOr<MeterReading> ParseMeterValue(const nlohmann::json& meter_value) {
  MeterReading reading;
  absl::StatusOr<absl::Time> timestamp = ParseOcppTime(Field(meter_value, "timestamp"));
  if (!timestamp.ok()) return timestamp.status();
  reading.timestamp = *timestamp;

  bool first = true;
  for (const nlohmann::json& sample : meter_value.value("sampledValue", nlohmann::json::array())) {
    std::string measurand = Field(sample, "measurand");
    if (measurand.empty()) measurand = "Energy.Active.Import.Register";
    const std::string context = Field(sample, "context");
    if (first && !context.empty()) reading.context = context;
    first = false;
    const std::string text = Field(sample, "value");
    auto skip = [&](absl::string_view why) {
      reading.skipped.push_back(absl::StrCat(measurand, ": ", why));
    };
    if (Field(sample, "format") == "SignedData") {
      skip("signed data is not read");
      continue;
    }
    const std::string location = Field(sample, "location");
    if (location == "EV" && measurand != "SoC") {
      skip("a value measured at the EV is not the charger's meter");
      continue;
    }
    struct Target {
      Quantity quantity;
      std::optional<double>* total;
      std::array<std::optional<double>, 3>* per_phase;
    };
    std::optional<Target> target;
    if (measurand == "Energy.Active.Import.Register") {
      target = Target{Quantity::kEnergy, &reading.energy_import_wh, nullptr};
    } else if (measurand == "Energy.Active.Export.Register") {
      target = Target{Quantity::kEnergy, &reading.energy_export_wh, nullptr};
    } else if (measurand == "Power.Active.Import") {
      target = Target{Quantity::kPower, &reading.power_import_w, nullptr};
    } else if (measurand == "Power.Active.Export") {
      target = Target{Quantity::kPower, &reading.power_export_w, nullptr};
    } else if (measurand == "Power.Offered") {
      target = Target{Quantity::kPower, &reading.power_offered_w, nullptr};
    } else if (measurand == "Current.Import") {
      target =
          Target{Quantity::kCurrent, &reading.current_import_total_a, &reading.current_import_a};
    } else if (measurand == "Current.Export") {
      target = Target{Quantity::kCurrent, &reading.current_export_total_a, nullptr};
    } else if (measurand == "Current.Offered") {
      target = Target{Quantity::kCurrent, &reading.current_offered_a, nullptr};
    } else if (measurand == "Voltage") {
      target = Target{Quantity::kVoltage, &reading.voltage_total_v, &reading.voltage_v};
    } else if (measurand == "SoC") {
      target = Target{Quantity::kPercent, &reading.soc_pct, nullptr};
    }
    if (!target) {
      skip("not used by evgate");
      continue;
    }
    const std::string unit = Field(sample, "unit");
    std::optional<double> factor = UnitFactor(target->quantity, unit);
    if (!factor) {
      skip(absl::StrCat("unit \"", unit, "\" does not fit"));
      continue;
    }
    double value = 0;
    if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
      skip(absl::StrCat("value \"", text, "\" is not a number"));
      continue;
    }
    value *= *factor;
    const std::string phase = Field(sample, "phase");
    if (phase.empty()) {
      *target->total = value;
      continue;
    }
    std::optional<int> index = PhaseIndex(phase);
    if (!index || target->per_phase == nullptr) {
      skip(absl::StrCat("phase \"", phase, "\" is not used"));
      continue;
    }
    (*target->per_phase)[*index] = value;
  }
  return reading;
}

}  // namespace evgate::ocpp
