#include "device_drivers/sim/offgrid_box_simulator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace evgate::sim {
namespace {

// Holding registers (docs/protocols/offgrid-box.md).
constexpr uint16_t kCommand = 0x0100;
constexpr uint16_t kPnPullInEnable = 0x0101;
constexpr uint16_t kStandbyCountdown = 0x0102;
constexpr uint16_t kLastHolding = kStandbyCountdown;
constexpr uint16_t kMaxStandbyCountdownS = 900;  // ICE-22 manual: at most 15 min
// Input registers 0x0000-0x0019.
constexpr int kInputRegisters = 0x1A;
constexpr double kBatteryChargedV = 26.4;
constexpr double kBatteryDischargingV = 25.2;

uint16_t Clamp16(double value) {
  return static_cast<uint16_t>(std::clamp<int64_t>(std::lround(value), 0, 65535));
}

uint16_t Int16(double value) {
  return static_cast<uint16_t>(
      static_cast<int16_t>(std::clamp<int64_t>(std::lround(value), -32768, 32767)));
}

}  // namespace

OffGridBoxSimulator::OffGridBoxSimulator(const Clock& clock) : clock_(clock) {
  absl::MutexLock lock(&mu_);
  updated_to_ = clock_.Now();
}

double OffGridBoxSimulator::PowerLocked() const {
  // Meter 1 sits on the grid side: no grid, no power through it.
  if (!grid_present_ || switch_ != Switch::kOnGrid) return 0;
  double w = 0;
  for (double a : meter_current_a_) w += grid_voltage_v_ * a;
  return w;
}

void OffGridBoxSimulator::UpdateLocked(absl::Time now) {
  if (now > updated_to_) {
    const double w = PowerLocked();
    const double wh = std::abs(w) * absl::ToDoubleHours(now - updated_to_);
    (w >= 0 ? import_wh_ : export_wh_) += wh;
    updated_to_ = now;
  }
  if (countdown_end_ && *countdown_end_ <= now) {
    countdown_end_.reset();
    shut_down_ = true;
  }
}

void OffGridBoxSimulator::SetGridPresent(bool present) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  if (present == grid_present_) return;
  grid_present_ = present;
  if (!present) {
    if (switch_ == Switch::kOnGrid) {
      switch_ = Switch::kOpen;
      countdown_end_ = now + absl::Seconds(standby_countdown_s_);
    }
    return;
  }
  // The grid is back.
  shut_down_ = false;
  countdown_end_.reset();
  if (switch_ == Switch::kOpen) switch_ = Switch::kOnGrid;
}

void OffGridBoxSimulator::SetGridVoltage(double voltage_v, double frequency_hz) {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  grid_voltage_v_ = voltage_v;
  frequency_hz_ = frequency_hz;
}

void OffGridBoxSimulator::SetMeter1Currents(const std::array<double, 3>& current_a) {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  meter_current_a_ = current_a;
}

void OffGridBoxSimulator::PressBackupBatteryButton() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  if (grid_present_ || switch_ != Switch::kOpen) return;
  shut_down_ = false;
  countdown_end_ = now + absl::Seconds(standby_countdown_s_);
}

void OffGridBoxSimulator::SetQf1Closed(bool closed) {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  qf1_closed_ = closed;
}

void OffGridBoxSimulator::SetQf2Closed(bool closed) {
  absl::MutexLock lock(&mu_);
  qf2_closed_ = closed;
}

void OffGridBoxSimulator::SetBackupBatteryVoltage(std::optional<double> voltage_v) {
  absl::MutexLock lock(&mu_);
  battery_override_v_ = voltage_v;
}

void OffGridBoxSimulator::SetResponding(bool responding) {
  absl::MutexLock lock(&mu_);
  responding_ = responding;
}

OffGridBoxSimulator::Switch OffGridBoxSimulator::transfer_switch() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return switch_;
}

bool OffGridBoxSimulator::pn_pull_in_active() {
  absl::MutexLock lock(&mu_);
  return switch_ == Switch::kOffGrid && pn_pull_in_enable_ == 1;
}

bool OffGridBoxSimulator::shut_down() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return shut_down_;
}

absl::Duration OffGridBoxSimulator::standby_remaining() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  return countdown_end_ ? *countdown_end_ - now : absl::ZeroDuration();
}

std::array<double, 3> OffGridBoxSimulator::meter_1_currents() {
  absl::MutexLock lock(&mu_);
  if (!grid_present_ || switch_ != Switch::kOnGrid) return {0, 0, 0};
  return meter_current_a_;
}

double OffGridBoxSimulator::meter_1_import_wh() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return import_wh_;
}

double OffGridBoxSimulator::meter_1_export_wh() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return export_wh_;
}

bool OffGridBoxSimulator::Responding() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return responding_ && !shut_down_;
}

std::vector<uint16_t> OffGridBoxSimulator::InputRegistersLocked() const {
  std::vector<uint16_t> r(kInputRegisters, 0);
  const bool grid = grid_present_;
  for (int p = 0; p < 3; ++p) r[p] = grid ? Clamp16(grid_voltage_v_ * 10) : 0;
  r[0x03] = grid ? Clamp16(frequency_hz_ * 100) : 0;
  r[0x04] = grid ? 1 : 0;
  r[0x05] = static_cast<uint16_t>(switch_);
  r[0x06] = qf1_closed_ ? 1 : 0;
  r[0x07] = qf2_closed_ ? 1 : 0;
  const bool battery_output = switch_ != Switch::kOnGrid;
  const double battery_v =
      battery_override_v_.value_or(battery_output ? kBatteryDischargingV : kBatteryChargedV);
  r[0x08] = Clamp16(battery_v * 100);
  r[0x09] = battery_output ? 1 : 0;
  r[0x0A] = switch_ == Switch::kOffGrid && pn_pull_in_enable_ == 1 ? 1 : 0;
  r[0x0B] =
      countdown_end_ ? Clamp16(std::ceil(absl::ToDoubleSeconds(*countdown_end_ - updated_to_))) : 0;
  const bool metering = grid && switch_ == Switch::kOnGrid;
  for (int p = 0; p < 3; ++p) r[0x10 + p] = metering ? Int16(meter_current_a_[p] * 100) : 0;
  const int32_t w = static_cast<int32_t>(std::lround(PowerLocked()));
  r[0x14] = static_cast<uint16_t>(static_cast<uint32_t>(w) >> 16);
  r[0x15] = static_cast<uint16_t>(static_cast<uint32_t>(w) & 0xFFFF);
  const uint32_t imp = static_cast<uint32_t>(import_wh_);
  const uint32_t exp = static_cast<uint32_t>(export_wh_);
  r[0x16] = static_cast<uint16_t>(imp >> 16);
  r[0x17] = static_cast<uint16_t>(imp & 0xFFFF);
  r[0x18] = static_cast<uint16_t>(exp >> 16);
  r[0x19] = static_cast<uint16_t>(exp & 0xFFFF);
  return r;
}

ModbusUnit::ReadResult OffGridBoxSimulator::Read(RegisterTable table, uint16_t address, int count) {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  if (table == RegisterTable::kInput) {
    if (address + count > kInputRegisters) return {{}, ModbusException::kIllegalDataAddress};
    const std::vector<uint16_t> r = InputRegistersLocked();
    return {std::vector<uint16_t>(r.begin() + address, r.begin() + address + count),
            ModbusException::kNone};
  }
  if (address < kCommand || address + count > kLastHolding + 1) {
    return {{}, ModbusException::kIllegalDataAddress};
  }
  const std::vector<uint16_t> holding = {0, pn_pull_in_enable_, standby_countdown_s_};
  return {std::vector<uint16_t>(holding.begin() + (address - kCommand),
                                holding.begin() + (address - kCommand) + count),
          ModbusException::kNone};
}

ModbusException OffGridBoxSimulator::Write(uint16_t address, absl::Span<const uint16_t> values) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  if (address < kCommand || address + values.size() > kLastHolding + 1u) {
    return ModbusException::kIllegalDataAddress;
  }
  // Validate all, then apply.
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t reg = static_cast<uint16_t>(address + i);
    const uint16_t v = values[i];
    if (reg == kCommand) {
      if (v == kTransferToOffGrid) {
        if (!qf1_closed_) return ModbusException::kServerDeviceFailure;
      } else if (v == kTransferToOnGrid) {
        if (!grid_present_) return ModbusException::kServerDeviceFailure;
      } else if (v != 0) {
        return ModbusException::kIllegalDataValue;
      }
    } else if ((reg == kPnPullInEnable && v > 1) ||
               (reg == kStandbyCountdown && v > kMaxStandbyCountdownS)) {
      return ModbusException::kIllegalDataValue;
    }
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t reg = static_cast<uint16_t>(address + i);
    const uint16_t v = values[i];
    if (reg == kPnPullInEnable) pn_pull_in_enable_ = v;
    if (reg == kStandbyCountdown) standby_countdown_s_ = v;
    if (reg == kCommand && v == kTransferToOffGrid) {
      switch_ = Switch::kOffGrid;
      countdown_end_.reset();
    }
    if (reg == kCommand && v == kTransferToOnGrid) switch_ = Switch::kOnGrid;
  }
  return ModbusException::kNone;
}

}  // namespace evgate::sim
