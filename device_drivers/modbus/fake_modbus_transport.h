// A ModbusTransport for tests: register tables per unit in memory, a fake
// clock advanced by a fixed latency per request (or by the timeout for a unit
// that does not answer), and a log of the requests in order.
//
// Thread-safe (a test may change registers while a bus owner polls).
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_FAKE_MODBUS_TRANSPORT_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_FAKE_MODBUS_TRANSPORT_H_

#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "device_drivers/modbus/modbus_transport.h"
#include "runtime/clock.h"

namespace evgate::modbus {

class FakeModbusTransport final : public ModbusTransport {
 public:
  struct Request {
    int unit;
    RegisterTable table;  // kHolding for writes
    uint16_t address;
    int count;
    absl::Time at;
    int function = 0;              // 3, 4, 6 or 16
    std::vector<uint16_t> values;  // written values (writes only)
  };

  // `clock` may be null (no time passes).
  explicit FakeModbusTransport(FakeClock* clock, absl::Duration latency = absl::Milliseconds(5),
                               absl::Duration timeout = absl::Milliseconds(500))
      : clock_(clock), latency_(latency), timeout_(timeout) {}

  void SetRegister(int unit, RegisterTable table, uint16_t address, uint16_t value) {
    absl::MutexLock lock(&mu_);
    tables_[{unit, table}][address] = value;
  }
  std::optional<uint16_t> GetRegister(int unit, RegisterTable table, uint16_t address) const {
    absl::MutexLock lock(&mu_);
    auto t = tables_.find({unit, table});
    if (t == tables_.end()) return std::nullopt;
    auto r = t->second.find(address);
    if (r == t->second.end()) return std::nullopt;
    return r->second;
  }
  void SetFloat(int unit, RegisterTable table, uint16_t address, float value) {
    uint32_t bits;
    static_assert(sizeof bits == sizeof value);
    std::memcpy(&bits, &value, sizeof bits);
    SetRegister(unit, table, address, static_cast<uint16_t>(bits >> 16));
    SetRegister(unit, table, address + 1, static_cast<uint16_t>(bits & 0xFFFF));
  }
  // A silent unit times out on every request.
  void SetSilent(int unit, bool silent) {
    absl::MutexLock lock(&mu_);
    if (silent) {
      silent_.insert(unit);
    } else {
      silent_.erase(unit);
    }
  }
  // Writes to this register are confirmed but ignored (a device that clamps
  // or refuses a value silently; read-back catches it).
  void SetIgnoresWrites(int unit, uint16_t address) {
    absl::MutexLock lock(&mu_);
    ignored_writes_.insert({unit, address});
  }
  // Writes to this register get a Modbus exception (illegal data value).
  void SetRejectsWrites(int unit, uint16_t address) {
    absl::MutexLock lock(&mu_);
    rejected_writes_.insert({unit, address});
  }
  std::vector<Request> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  void ClearRequests() {
    absl::MutexLock lock(&mu_);
    requests_.clear();
  }

  absl::Status Connect() override { return absl::OkStatus(); }
  void Close() override {}
  bool connected() const override { return true; }
  absl::Status SetSlave(int unit_id) override {
    absl::MutexLock lock(&mu_);
    unit_ = unit_id;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<uint16_t>> ReadRegisters(RegisterTable table, uint16_t address,
                                                      int count) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(
        {unit_, table, address, count, Now(), table == RegisterTable::kInput ? 4 : 3, {}});
    const std::string what = absl::StrFormat("fake unit %d %s 0x%04X+%d", unit_,
                                             RegisterTableName(table), address, count);
    if (absl::Status silent = PassTimeLocked(what); !silent.ok()) return silent;
    auto it = tables_.find({unit_, table});
    if (it == tables_.end()) return absl::FailedPreconditionError(what + ": illegal address");
    std::vector<uint16_t> values(count, 0);
    for (int i = 0; i < count; ++i) {
      auto reg = it->second.find(static_cast<uint16_t>(address + i));
      if (reg != it->second.end()) values[i] = reg->second;
    }
    return values;
  }
  absl::Status WriteRegister(uint16_t address, uint16_t value) override {
    return Write(6, address, {value});
  }
  absl::Status WriteRegisters(uint16_t address, absl::Span<const uint16_t> values) override {
    return Write(16, address, std::vector<uint16_t>(values.begin(), values.end()));
  }
  std::string Describe() const override { return "fake"; }

 private:
  absl::Time Now() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return clock_ ? clock_->Now() : absl::Time();
  }
  absl::Status PassTimeLocked(const std::string& what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (silent_.count(unit_)) {
      if (clock_) clock_->Advance(timeout_);
      return absl::DeadlineExceededError(what + ": timeout");
    }
    if (clock_) clock_->Advance(latency_);
    return absl::OkStatus();
  }
  absl::Status Write(int function, uint16_t address, std::vector<uint16_t> values) {
    absl::MutexLock lock(&mu_);
    requests_.push_back({unit_, RegisterTable::kHolding, address, static_cast<int>(values.size()),
                         Now(), function, values});
    const std::string what =
        absl::StrFormat("fake unit %d holding 0x%04X+%d (write)", unit_, address, values.size());
    if (absl::Status silent = PassTimeLocked(what); !silent.ok()) return silent;
    for (size_t i = 0; i < values.size(); ++i) {
      if (rejected_writes_.count({unit_, address + i})) {
        return absl::FailedPreconditionError(what + ": device exception: illegal data value");
      }
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (ignored_writes_.count({unit_, address + i})) continue;
      tables_[{unit_, RegisterTable::kHolding}][address + i] = values[i];
    }
    return absl::OkStatus();
  }

  FakeClock* const clock_;
  const absl::Duration latency_;
  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  int unit_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::pair<int, RegisterTable>, std::map<uint16_t, uint16_t>> tables_
      ABSL_GUARDED_BY(mu_);
  std::set<int> silent_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<int, int>> ignored_writes_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<int, int>> rejected_writes_ ABSL_GUARDED_BY(mu_);
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_FAKE_MODBUS_TRANSPORT_H_
