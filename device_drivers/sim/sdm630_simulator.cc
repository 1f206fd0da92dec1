#include "device_drivers/sim/sdm630_simulator.h"

#include <cmath>

#include "device_drivers/modbus/register_map.h"

namespace evgate::sim {
namespace {

// SDM630 input register addresses (0-based), float32 high word first.
constexpr uint16_t kVoltage = 0x0000;  // + 2 per phase
constexpr uint16_t kCurrent = 0x0006;
constexpr uint16_t kPower = 0x000C;
constexpr uint16_t kApparentPower = 0x0012;
constexpr uint16_t kPowerFactor = 0x001E;
constexpr uint16_t kTotalPower = 0x0034;
constexpr uint16_t kFrequency = 0x0046;
constexpr uint16_t kImportKwh = 0x0048;
constexpr uint16_t kExportKwh = 0x004A;
constexpr uint16_t kTotalKwh = 0x0156;

void Put(std::vector<uint16_t>& regs, uint16_t address, double value) {
  const auto words = modbus::EncodeFloat32(static_cast<float>(value), /*high_word_first=*/true);
  regs[address] = words[0];
  regs[address + 1] = words[1];
}

}  // namespace

Sdm630Simulator::Sdm630Simulator(const Clock& clock, int unit_id)
    : clock_(clock), unit_id_(unit_id) {
  absl::MutexLock lock(&mu_);
  integrated_to_ = clock_.Now();
}

Sdm630Simulator::~Sdm630Simulator() { Stop(); }

void Sdm630Simulator::IntegrateLocked(absl::Time now) {
  if (now <= integrated_to_) return;
  double total_w = 0;
  for (const Sdm630Phase& p : phases_) total_w += p.voltage_v * p.current_a * p.power_factor;
  const double hours = absl::ToDoubleHours(now - integrated_to_);
  (total_w >= 0 ? import_wh_ : export_wh_) += std::abs(total_w) * hours;
  integrated_to_ = now;
}

void Sdm630Simulator::SetPhase(int phase, const Sdm630Phase& state) {
  absl::MutexLock lock(&mu_);
  IntegrateLocked(clock_.Now());
  if (phase >= 0 && phase < 3) phases_[phase] = state;
}

void Sdm630Simulator::SetFrequency(double hz) {
  absl::MutexLock lock(&mu_);
  frequency_hz_ = hz;
}

void Sdm630Simulator::SetEnergy(double import_wh, double export_wh) {
  absl::MutexLock lock(&mu_);
  integrated_to_ = clock_.Now();
  import_wh_ = import_wh;
  export_wh_ = export_wh;
}

void Sdm630Simulator::ForceFloat(uint16_t address, float value) {
  absl::MutexLock lock(&mu_);
  forced_[address] = value;
}

void Sdm630Simulator::ClearForced() {
  absl::MutexLock lock(&mu_);
  forced_.clear();
}

void Sdm630Simulator::SetResponding(bool responding) {
  absl::MutexLock lock(&mu_);
  responding_ = responding;
}

std::vector<uint16_t> Sdm630Simulator::InputRegisters() {
  absl::MutexLock lock(&mu_);
  IntegrateLocked(clock_.Now());
  std::vector<uint16_t> regs(kInputRegisters, 0);
  double total_w = 0;
  for (int i = 0; i < 3; ++i) {
    const Sdm630Phase& p = phases_[i];
    const double va = p.voltage_v * std::abs(p.current_a);
    const double w = p.voltage_v * p.current_a * p.power_factor;
    total_w += w;
    Put(regs, kVoltage + 2 * i, p.voltage_v);
    Put(regs, kCurrent + 2 * i, p.current_a);
    Put(regs, kPower + 2 * i, w);
    Put(regs, kApparentPower + 2 * i, va);
    Put(regs, kPowerFactor + 2 * i, p.power_factor);
  }
  Put(regs, kTotalPower, total_w);
  Put(regs, kFrequency, frequency_hz_);
  Put(regs, kImportKwh, import_wh_ / 1000);
  Put(regs, kExportKwh, export_wh_ / 1000);
  Put(regs, kTotalKwh, (import_wh_ + export_wh_) / 1000);
  for (const auto& [address, value] : forced_) {
    if (address + 1 < kInputRegisters) Put(regs, address, value);
  }
  return regs;
}

std::array<double, 3> Sdm630Simulator::PhaseCurrents() {
  absl::MutexLock lock(&mu_);
  return {phases_[0].current_a, phases_[1].current_a, phases_[2].current_a};
}

ModbusUnit::ReadResult Sdm630Simulator::Read(RegisterTable table, uint16_t address, int count) {
  if (table != RegisterTable::kInput || address + count > kInputRegisters) {
    return {{}, ModbusException::kIllegalDataAddress};
  }
  const std::vector<uint16_t> regs = InputRegisters();
  return {std::vector<uint16_t>(regs.begin() + address, regs.begin() + address + count),
          ModbusException::kNone};
}

ModbusException Sdm630Simulator::Write(uint16_t, absl::Span<const uint16_t>) {
  return ModbusException::kIllegalDataAddress;
}

bool Sdm630Simulator::Responding() {
  absl::MutexLock lock(&mu_);
  return responding_;
}

absl::Status Sdm630Simulator::Listen(const std::string& host, int port) {
  if (server_ != nullptr) return absl::FailedPreconditionError("already listening");
  server_ = std::make_unique<ModbusServer>();
  server_->AddUnit(unit_id_, this);
  absl::Status status = server_->ListenTcp(host, port);
  if (!status.ok()) server_.reset();
  return status;
}

int Sdm630Simulator::port() const { return server_ ? server_->tcp_port() : 0; }

void Sdm630Simulator::Stop() {
  if (server_ != nullptr) server_->Stop();
}

}  // namespace evgate::sim
