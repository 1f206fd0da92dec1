#include "site_controller/config/device_profiles.h"

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace evgate::site {
namespace {

constexpr int kModbusMinAddress = 1;
constexpr int kModbusMaxAddress = 247;

std::vector<DeviceProfile> MakeProfiles() {
  std::vector<DeviceProfile> profiles;

  DeviceProfile sdm630;
  sdm630.name = "eastron_sdm630";
  sdm630.description = "Eastron SDM630 three-phase Modbus energy meter";
  sdm630.kind = DeviceKind::kMeter;
  sdm630.bus = BusKind::kModbus;
  sdm630.min_address = kModbusMinAddress;
  sdm630.max_address = kModbusMaxAddress;
  profiles.push_back(sdm630);

  DeviceProfile generic_meter;
  generic_meter.name = "generic_meter";
  generic_meter.description = "any Modbus meter, described by a register map file";
  generic_meter.kind = DeviceKind::kMeter;
  generic_meter.bus = BusKind::kModbus;
  generic_meter.min_address = kModbusMinAddress;
  generic_meter.max_address = kModbusMaxAddress;
  generic_meter.needs_register_map = true;
  profiles.push_back(generic_meter);

  DeviceProfile heidelberg;
  heidelberg.name = "heidelberg_energy_control";
  heidelberg.description = "Heidelberg Energy Control AC wallbox (Modbus RTU)";
  heidelberg.kind = DeviceKind::kAcWallbox;
  heidelberg.bus = BusKind::kModbus;
  heidelberg.min_address = kModbusMinAddress;
  heidelberg.max_address = kModbusMaxAddress;
  heidelberg.serial_format = SerialFormat{19200, Parity::kEven, 8, 1};
  heidelberg.min_connectors = 1;
  heidelberg.max_connectors = 1;
  heidelberg.single_phase = true;
  heidelberg.three_phase = true;
  heidelberg.min_current_a = 6;
  heidelberg.max_current_a = 16;
  heidelberg.station_max_power_w = 11000;
  profiles.push_back(heidelberg);

  // Cabur EV PLUS manual: "Max Current: accepted range 6 – 32 A"; CAN
  // master/slave load balancing with a CANAddr per box.
  DeviceProfile cabur22;
  cabur22.name = "cabur_ev_plus_22kw";
  cabur22.description = "Cabur EV PLUS 22 kW three-phase AC wallbox (CAN)";
  cabur22.kind = DeviceKind::kAcWallbox;
  cabur22.bus = BusKind::kCan;
  cabur22.min_address = 1;
  cabur22.max_address = 63;
  cabur22.min_connectors = 1;
  cabur22.max_connectors = 1;
  cabur22.three_phase = true;
  cabur22.min_current_a = 6;
  cabur22.max_current_a = 32;
  cabur22.station_max_power_w = 22000;
  profiles.push_back(cabur22);

  DeviceProfile cabur7 = cabur22;
  cabur7.name = "cabur_ev_plus_7kw";
  cabur7.description = "Cabur EV PLUS 7.4 kW single-phase AC wallbox (CAN)";
  cabur7.single_phase = true;
  cabur7.three_phase = false;
  cabur7.station_max_power_w = 7400;
  profiles.push_back(cabur7);

  // DS Series DSWx601: 60 kW shared by two DC connectors (1 = left,
  // 2 = right), 3-phase AC input, max input current 92 A @ 235 Vac.
  DeviceProfile ds60;
  ds60.name = "ds60";
  ds60.description = "DS Series DSWx601 60 kW DC fast charger (OCPP 1.6J)";
  ds60.kind = DeviceKind::kDcCharger;
  ds60.bus = BusKind::kOcpp;
  ds60.min_connectors = 1;
  ds60.max_connectors = 2;
  ds60.three_phase = true;
  ds60.station_max_power_w = 60000;
  ds60.max_input_current_a = 92;
  profiles.push_back(ds60);

  // InCharge ICE-22 V2X: 22 kW grid charging, 22 kW grid discharging,
  // 19.8 kW off-grid discharging; one connector; 3-phase 400 V.
  DeviceProfile ice22;
  ice22.name = "ice22_v2x";
  ice22.description = "InCharge ICE-22 V2X 22 kW bidirectional DC charger";
  ice22.kind = DeviceKind::kDcCharger;
  ice22.bus = BusKind::kOcpp;
  ice22.min_connectors = 1;
  ice22.max_connectors = 1;
  ice22.three_phase = true;
  ice22.station_max_power_w = 22000;
  ice22.bidirectional = true;
  ice22.max_discharge_power_w = 22000;
  ice22.max_discharge_power_offgrid_w = 19800;
  profiles.push_back(ice22);

  DeviceProfile offgrid;
  offgrid.name = "v2x_offgrid_box";
  offgrid.description = "InCharge V2X Off Grid Box (grid-loss detection)";
  offgrid.kind = DeviceKind::kOffgridBox;
  offgrid.bus = BusKind::kModbus;
  offgrid.min_address = kModbusMinAddress;
  offgrid.max_address = kModbusMaxAddress;
  profiles.push_back(offgrid);

  return profiles;
}

}  // namespace

const std::vector<DeviceProfile>& AllDeviceProfiles() {
  static const std::vector<DeviceProfile>* const kProfiles =
      new std::vector<DeviceProfile>(MakeProfiles());
  return *kProfiles;
}

const DeviceProfile* FindDeviceProfile(absl::string_view name) {
  for (const DeviceProfile& profile : AllDeviceProfiles()) {
    if (profile.name == name) {
      return &profile;
    }
  }
  return nullptr;
}

absl::string_view DeviceKindName(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kMeter:
      return "meter";
    case DeviceKind::kAcWallbox:
      return "AC wallbox";
    case DeviceKind::kDcCharger:
      return "DC charger";
    case DeviceKind::kOffgridBox:
      return "off-grid box";
  }
  return "device";
}

absl::string_view BusKindName(BusKind kind) {
  switch (kind) {
    case BusKind::kModbus:
      return "Modbus";
    case BusKind::kCan:
      return "CAN";
    case BusKind::kOcpp:
      return "OCPP";
  }
  return "?";
}

absl::string_view ParityName(Parity parity) {
  switch (parity) {
    case Parity::kNone:
      return "none";
    case Parity::kEven:
      return "even";
    case Parity::kOdd:
      return "odd";
  }
  return "?";
}

std::string SerialFormatName(const SerialFormat& format) {
  char parity = 'N';
  if (format.parity == Parity::kEven) {
    parity = 'E';
  }
  if (format.parity == Parity::kOdd) {
    parity = 'O';
  }
  return absl::StrFormat("%d %d%c%d", format.baud, format.data_bits, parity, format.stop_bits);
}

}  // namespace evgate::site
