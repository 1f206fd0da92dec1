#include "device_drivers/sim/heidelberg_simulator.h"

#include <algorithm>
#include <cmath>

namespace evgate::sim {
namespace {

constexpr uint16_t kFirstHolding = 257;
constexpr int kWatchdog = 0;    // index into holding_: 257
constexpr int kStandby = 1;     // 258
constexpr int kLock = 2;        // 259
constexpr int kMaxCurrent = 4;  // 261
constexpr int kFailsafe = 5;    // 262
constexpr uint16_t kStandbyDisabled = 4;
constexpr uint16_t kMaxDeciAmps = 160;
constexpr uint16_t kMinDeciAmps = 60;  // below: 0
// Input registers served: 0..19 (4 layout version .. 18 energy low word).
constexpr int kInputRegisters = 20;
constexpr uint16_t kLayoutVersion = 0x0108;

double DeciAmps(uint16_t raw) { return raw < kMinDeciAmps ? 0 : raw / 10.0; }

}  // namespace

HeidelbergSimulator::HeidelbergSimulator(const Clock& clock, Options options)
    : clock_(clock), options_(options) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  updated_to_ = now;
  idle_since_ = now;
  last_request_ = now;
  ResetHoldingLocked();
}

void HeidelbergSimulator::ResetHoldingLocked() {
  holding_ = {15000, 0, 1, 0, kMaxDeciAmps, 0};
  failsafe_ = false;
}

bool HeidelbergSimulator::AllowedLocked() const {
  return fault_ == Fault::kNone && holding_[kLock] == 1 && DeciAmps(holding_[kMaxCurrent]) >= 6;
}

double HeidelbergSimulator::TargetLocked() const {
  if (vehicle_ != Vehicle::kCharging || !AllowedLocked()) return 0;
  return std::min(DeciAmps(holding_[kMaxCurrent]), ev_max_a_);
}

void HeidelbergSimulator::RetargetLocked(absl::Time now) {
  pending_.emplace_back(now, TargetLocked());
}

void HeidelbergSimulator::UpdateLocked(absl::Time now) {
  const int active_phases = std::min(options_.phases, ev_phases_);
  // Integrates the draw in force up to `to`, applying the lagged changes.
  const auto advance = [&](absl::Time to) {
    while (!pending_.empty() && pending_.front().first + options_.lag <= to) {
      const absl::Time at = std::max(pending_.front().first + options_.lag, updated_to_);
      energy_wh_ +=
          options_.voltage_v * draw_a_ * active_phases * absl::ToDoubleHours(at - updated_to_);
      updated_to_ = at;
      draw_a_ = pending_.front().second;
      pending_.pop_front();
    }
    if (to > updated_to_) {
      energy_wh_ +=
          options_.voltage_v * draw_a_ * active_phases * absl::ToDoubleHours(to - updated_to_);
      updated_to_ = to;
    }
  };
  const absl::Duration timeout = absl::Milliseconds(holding_[kWatchdog]);
  if (!failsafe_ && timeout > absl::ZeroDuration() && last_request_ + timeout <= now) {
    const absl::Time fired = last_request_ + timeout;
    advance(fired);
    failsafe_ = true;
    holding_[kMaxCurrent] = holding_[kFailsafe];
    RetargetLocked(fired);
  }
  advance(now);
  if (!asleep_ && holding_[kStandby] != kStandbyDisabled && vehicle_ == Vehicle::kNone &&
      idle_since_ + options_.standby_after <= now) {
    asleep_ = true;
  }
}

void HeidelbergSimulator::PlugIn(double ev_max_current_a, int ev_phases, bool charge) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  vehicle_ = charge ? Vehicle::kCharging : Vehicle::kConnected;
  ev_max_a_ = ev_max_current_a;
  ev_phases_ = ev_phases == 1 ? 1 : 3;
  asleep_ = false;
  RetargetLocked(now);
}

void HeidelbergSimulator::Unplug() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  vehicle_ = Vehicle::kNone;
  idle_since_ = now;
  // The contactor opens at once: no lag when the cable is pulled.
  pending_.clear();
  draw_a_ = 0;
}

void HeidelbergSimulator::SetEvCharging(bool charge) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  if (vehicle_ == Vehicle::kNone) return;
  vehicle_ = charge ? Vehicle::kCharging : Vehicle::kConnected;
  if (!charge) {
    // The vehicle decides to stop (battery full): no lag, it stops drawing.
    pending_.clear();
    draw_a_ = 0;
    return;
  }
  RetargetLocked(now);
}

void HeidelbergSimulator::SetEvMaxCurrent(double a) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  ev_max_a_ = a;
  RetargetLocked(now);
}

void HeidelbergSimulator::InjectFault(Fault fault) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  fault_ = fault;
  RetargetLocked(now);
}

absl::Time HeidelbergSimulator::last_request() {
  absl::MutexLock lock(&mu_);
  return last_request_;
}

void HeidelbergSimulator::SetResponding(bool responding) {
  absl::MutexLock lock(&mu_);
  responding_ = responding;
}

void HeidelbergSimulator::PowerCycle() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  ResetHoldingLocked();
  asleep_ = false;
  idle_since_ = now;
  last_request_ = now;
  RetargetLocked(now);
}

std::array<double, 3> HeidelbergSimulator::PhaseCurrents() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  if (std::min(options_.phases, ev_phases_) == 1) return {draw_a_, 0, 0};
  return {draw_a_, draw_a_, draw_a_};
}

double HeidelbergSimulator::energy_wh() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return energy_wh_;
}

double HeidelbergSimulator::current_limit_a() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return AllowedLocked() ? DeciAmps(holding_[kMaxCurrent]) : 0;
}

bool HeidelbergSimulator::in_failsafe() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return failsafe_;
}

uint16_t HeidelbergSimulator::holding(uint16_t address) {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  if (address < kFirstHolding || address >= kFirstHolding + holding_.size()) return 0;
  return holding_[address - kFirstHolding];
}

uint16_t HeidelbergSimulator::ChargingStateLocked() const {
  if (fault_ == Fault::kStateE) return 9;
  if (fault_ == Fault::kStateF) return 10;
  const uint16_t allowed = AllowedLocked() ? 1 : 0;
  switch (vehicle_) {
    case Vehicle::kNone:
      return 2 + allowed;
    case Vehicle::kConnected:
      return 4 + allowed;
    case Vehicle::kCharging:
      return 6 + allowed;
  }
  return 2;
}

bool HeidelbergSimulator::Responding() {
  absl::MutexLock lock(&mu_);
  UpdateLocked(clock_.Now());
  return responding_ && !asleep_;
}

ModbusUnit::ReadResult HeidelbergSimulator::Read(RegisterTable table, uint16_t address, int count) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  last_request_ = now;
  std::vector<uint16_t> regs;
  if (table == RegisterTable::kHolding) {
    if (address < kFirstHolding ||
        address + count > kFirstHolding + static_cast<int>(holding_.size())) {
      return {{}, ModbusException::kIllegalDataAddress};
    }
    regs.assign(holding_.begin() + (address - kFirstHolding),
                holding_.begin() + (address - kFirstHolding) + count);
    return {regs, ModbusException::kNone};
  }
  if (address + count > kInputRegisters) return {{}, ModbusException::kIllegalDataAddress};
  std::vector<uint16_t> input(kInputRegisters, 0);
  const int active_phases = std::min(options_.phases, ev_phases_);
  const uint16_t current = static_cast<uint16_t>(std::lround(draw_a_ * 10));
  input[4] = kLayoutVersion;
  input[5] = ChargingStateLocked();
  input[6] = current;
  input[7] = active_phases == 3 ? current : 0;
  input[8] = active_phases == 3 ? current : 0;
  input[9] = static_cast<uint16_t>(static_cast<int16_t>(std::lround(options_.temperature_c * 10)));
  for (int p = 0; p < 3; ++p) {
    input[10 + p] =
        p < options_.phases ? static_cast<uint16_t>(std::lround(options_.voltage_v)) : 0;
  }
  input[13] = 1;  // external lock input: unlocked
  input[14] = static_cast<uint16_t>(std::lround(options_.voltage_v * draw_a_ * active_phases));
  const uint32_t wh = static_cast<uint32_t>(energy_wh_);
  input[17] = static_cast<uint16_t>(wh >> 16);
  input[18] = static_cast<uint16_t>(wh & 0xFFFF);
  regs.assign(input.begin() + address, input.begin() + address + count);
  return {regs, ModbusException::kNone};
}

ModbusException HeidelbergSimulator::Write(uint16_t address, absl::Span<const uint16_t> values) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  UpdateLocked(now);
  last_request_ = now;
  if (address < kFirstHolding || address + values.size() > kFirstHolding + holding_.size()) {
    return ModbusException::kIllegalDataAddress;
  }
  // Check every value before changing anything.
  for (size_t i = 0; i < values.size(); ++i) {
    const int index = address - kFirstHolding + static_cast<int>(i);
    const uint16_t v = values[i];
    switch (index) {
      case kWatchdog:
        break;
      case kStandby:
        if (v != 0 && v != kStandbyDisabled) return ModbusException::kIllegalDataValue;
        break;
      case kLock:
        if (v > 1) return ModbusException::kIllegalDataValue;
        break;
      case kMaxCurrent:
      case kFailsafe:
        if (v > kMaxDeciAmps) return ModbusException::kIllegalDataValue;
        break;
      default:
        return ModbusException::kIllegalDataAddress;  // 260: reserved
    }
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const int index = address - kFirstHolding + static_cast<int>(i);
    holding_[index] = values[i];
    if (index == kMaxCurrent) failsafe_ = false;
  }
  RetargetLocked(now);
  return ModbusException::kNone;
}

}  // namespace evgate::sim
