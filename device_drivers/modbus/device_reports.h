// What a Modbus device's registers say, as API messages: a meter's reading,
// the link's health, the off-grid box's state, and the meaning of a Heidelberg
// wallbox's charging-state code. Pure functions of a bus owner's DeviceStatus.
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_DEVICE_REPORTS_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_DEVICE_REPORTS_H_

#include <optional>
#include <string>

#include "device_drivers/modbus/bus_owner.h"
#include "device_drivers/modbus/register_map.h"
#include "evgate/v1/device.pb.h"

namespace evgate::modbus {

// The three per-phase quantities of a register map, L1..L3.
inline constexpr Quantity kVoltage[3] = {Quantity::kVoltageL1, Quantity::kVoltageL2,
                                         Quantity::kVoltageL3};
inline constexpr Quantity kCurrent[3] = {Quantity::kCurrentL1, Quantity::kCurrentL2,
                                         Quantity::kCurrentL3};
inline constexpr Quantity kPower[3] = {Quantity::kPowerL1, Quantity::kPowerL2, Quantity::kPowerL3};

// A meter's last reading (currents, voltages, powers, frequency, registers).
v1::MeterReading MeterReadingOf(const DeviceStatus& status);

// The health of the device's link (requests, errors, timeouts, staleness).
v1::LinkHealth LinkOf(const DeviceStatus& status);

// The off-grid box's state: grid, transfer switch, QF1/QF2, meter, backup battery.
v1::OffGridBoxState BoxStateOf(const DeviceStatus& status);

// What makes an off_grid_box_change: the switching state, not the measurements.
std::string BoxKey(const v1::OffGridBoxState& box);

// The IEC 61851 state of a Heidelberg charging-state code.
v1::Iec61851State IecOf(int code);

// The fault a Heidelberg charging-state code means, if any.
std::optional<v1::Fault> FaultOf(int code);

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_DEVICE_REPORTS_H_
