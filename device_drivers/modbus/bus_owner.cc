#include "device_drivers/modbus/bus_owner.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/log.h"

namespace evgate::modbus {
namespace {

constexpr log::Logger kLog("modbus");

// How long the background thread sleeps at most before re-checking staleness
// and the stop flag.
constexpr absl::Duration kMaxIdle = absl::Milliseconds(100);

std::string RegistersText(absl::Span<const uint16_t> values) { return absl::StrJoin(values, ","); }

}  // namespace

absl::Duration RtuInterFrameGap(int baud) {
  if (baud <= 0) return absl::Milliseconds(2);
  if (baud > 19200) return absl::Microseconds(1750);
  // 3.5 characters x 11 bits (start, 8 data, parity or 2nd stop, stop).
  return absl::Microseconds(static_cast<int64_t>(3.5 * 11 * 1e6 / baud));
}

ModbusBusOwner::ModbusBusOwner(BusOptions options, std::vector<PolledDevice> devices,
                               std::unique_ptr<ModbusTransport> transport, const Clock& clock)
    : options_(std::move(options)),
      devices_(std::move(devices)),
      transport_(std::move(transport)),
      clock_(clock) {
  const absl::Time now = clock_.Now();
  absl::MutexLock bus(&bus_mu_);
  absl::MutexLock lock(&mu_);
  for (int d = 0; d < static_cast<int>(devices_.size()); ++d) {
    const PolledDevice& device = devices_[d];
    DeviceState state;
    state.status.id = device.id;
    state.status.bus_id = options_.bus_id;
    state.status.unit_id = device.unit_id;
    state.backoff_until = now;
    state.last_valid = now;
    if (device.map == nullptr) {
      state.status.last_error = absl::StrCat("device ", device.id, ": no register map");
      state_.push_back(std::move(state));
      continue;
    }
    state.status.profile = device.map->name;
    state_.push_back(std::move(state));
    for (int b = 0; b < static_cast<int>(device.map->blocks.size()); ++b) {
      tasks_.push_back(Task{d, b, device.map->blocks[b].poll, now});
    }
  }
}

ModbusBusOwner::~ModbusBusOwner() { Stop(); }

int ModbusBusOwner::IndexOf(const std::string& device_id) const {
  for (int d = 0; d < static_cast<int>(devices_.size()); ++d) {
    if (devices_[d].id == device_id) return d;
  }
  return -1;
}

absl::Duration ModbusBusOwner::StaleTimeout(const PolledDevice& device) const {
  return device.poll_period * std::max(1, device.stale_after_missed_polls);
}

void ModbusBusOwner::UpdateStaleLocked(absl::Time now, std::vector<Notification>* out) {
  for (int d = 0; d < static_cast<int>(devices_.size()); ++d) {
    DeviceState& state = state_[d];
    if (!state.status.stale && now - state.last_valid > StaleTimeout(devices_[d])) {
      state.status.stale = true;
      kLog.Warning("bus %s device %s: stale, no valid data for %s (%s)", options_.bus_id,
                   devices_[d].id, absl::FormatDuration(now - state.last_valid),
                   state.status.last_error);
      out->push_back({d, BusEvent::kStale});
    }
  }
}

void ModbusBusOwner::Notify(const std::vector<Notification>& notifications) {
  if (notifications.empty()) return;
  Listener listener;
  std::vector<std::pair<DeviceStatus, BusEvent>> statuses;
  {
    absl::MutexLock lock(&mu_);
    if (!listener_) return;
    listener = listener_;
    for (const Notification& n : notifications) {
      statuses.emplace_back(state_[n.device].status, n.event);
    }
  }
  for (const auto& [status, event] : statuses) listener(status, event);
}

absl::Status ModbusBusOwner::SelectUnitLocked(int device) {
  if (current_unit_ == devices_[device].unit_id) return absl::OkStatus();
  absl::Status status = transport_->SetSlave(devices_[device].unit_id);
  if (status.ok()) current_unit_ = devices_[device].unit_id;
  return status;
}

void ModbusBusOwner::WaitForGapLocked() {
  if (!last_frame_end_) return;
  const absl::Duration left = *last_frame_end_ + options_.inter_frame_gap - clock_.Now();
  if (left <= absl::ZeroDuration()) return;
  if (options_.sleep) {
    options_.sleep(left);
  } else {
    absl::SleepFor(left);
  }
}

void ModbusBusOwner::RecordLocked(int device, const absl::Status& status, absl::Time start,
                                  absl::Time end) {
  DeviceStatus& s = state_[device].status;
  DeviceCounters& c = s.counters;
  ++c.requests_total;
  ++bus_counters_.requests_total;
  // An exception reply is an answer: the device is there.
  if (status.ok() || absl::IsFailedPrecondition(status)) {
    bus_counters_.request_duration.Observe(end - start);
    s.last_seen = end;
    c.latency_last = end - start;
    c.latency_max = std::max(c.latency_max, c.latency_last);
    c.latency_sum += c.latency_last;
    ++c.latency_count;
  }
  if (!status.ok()) {
    const bool timeout = absl::IsDeadlineExceeded(status);
    (timeout ? c.timeouts_total : c.errors_total)++;
    (timeout ? bus_counters_.timeouts_total : bus_counters_.errors_total)++;
    s.last_error = std::string(status.message());
    s.last_error_at = end;
    kLog.Debug("bus %s: %s", options_.bus_id, s.last_error);
  }
}

void ModbusBusOwner::BackOffLocked(int device, absl::Time end) {
  DeviceState& state = state_[device];
  const PolledDevice& d = devices_[device];
  ++state.status.consecutive_failures;
  const int doublings =
      static_cast<int>(std::min<uint32_t>(state.status.consecutive_failures - 1, 20));
  const absl::Duration backoff = std::min(d.poll_period * (int64_t{1} << doublings),
                                          std::max(options_.max_backoff, d.poll_period));
  state.backoff_until = end + backoff;
}

void ModbusBusOwner::SetKnownValuesLocked(int d, RegisterTable table, uint16_t address,
                                          const std::vector<uint16_t>& registers) {
  const PolledDevice& device = devices_[d];
  const int count = static_cast<int>(registers.size());
  for (const FieldSpec& field : device.map->fields) {
    const int n = RegisterCount(field.type);
    if (field.table != table || field.address < address || field.address + n > address + count) {
      continue;
    }
    const absl::StatusOr<double> value =
        DecodeField(*device.map, field,
                    absl::MakeConstSpan(registers).subspan(field.address - address, n), device.id);
    if (value.ok()) state_[d].status.values.Set(field.quantity, *value);
  }
}

void ModbusBusOwner::ExecuteNextWriteLocked() {
  PendingWrite* pending;
  {
    absl::MutexLock lock(&mu_);
    if (writes_.empty()) return;
    pending = writes_.front();
    writes_.pop_front();
  }
  const int d = pending->device;
  const PolledDevice& device = devices_[d];
  const RegisterWrite& write = *pending->write;
  const int count = static_cast<int>(write.values.size());
  const std::string what =
      absl::StrFormat("device %s holding 0x%04X+%d", device.id, write.address, count);
  WriteResult result;
  for (int attempt = 0; attempt <= options_.retries; ++attempt) {
    result = WriteResult{};
    if (closed_) {
      result.status = absl::UnavailableError(
          absl::StrCat("bus ", options_.bus_id, " is stopped; ", what, " not written"));
      break;
    }
    WaitForGapLocked();
    absl::Time start = clock_.Now();
    result.status = SelectUnitLocked(d);
    if (result.status.ok()) {
      result.status = count == 1 ? transport_->WriteRegister(write.address, write.values[0])
                                 : transport_->WriteRegisters(write.address, write.values);
    }
    absl::Time end = clock_.Now();
    last_frame_end_ = end;
    {
      absl::MutexLock lock(&mu_);
      RecordLocked(d, result.status, start, end);
    }
    if (result.status.ok() && device.read_back_writes) {
      WaitForGapLocked();
      start = clock_.Now();
      absl::StatusOr<std::vector<uint16_t>> read =
          transport_->ReadRegisters(RegisterTable::kHolding, write.address, count);
      end = clock_.Now();
      last_frame_end_ = end;
      absl::Status status = read.status();
      if (read.ok()) {
        result.read_back = *read;
        if (*read != write.values) {
          status = absl::DataLossError(absl::StrCat(what, ": wrote ", RegistersText(write.values),
                                                    " but reads back ", RegistersText(*read)));
        }
      }
      result.status = status;
      absl::MutexLock lock(&mu_);
      RecordLocked(d, read.status(), start, end);
      if (read.ok() && !status.ok()) {
        DeviceStatus& s = state_[d].status;
        ++s.counters.errors_total;
        s.last_error = std::string(status.message());
        s.last_error_at = end;
      }
    }
    if (result.status.ok()) {
      result.confirmed_at = end;
      break;
    }
    // An exception reply is the device's considered answer: asking again
    // would get the same one.
    if (absl::IsFailedPrecondition(result.status)) break;
  }
  {
    absl::MutexLock lock(&mu_);
    DeviceState& state = state_[d];
    ++state.status.counters.writes_total;
    if (result.status.ok()) {
      state.status.consecutive_failures = 0;
      state.backoff_until = std::min(state.backoff_until, clock_.Now());
      // The registers now hold what was written: the known values follow,
      // so nobody compares a setting against a read from before the write.
      SetKnownValuesLocked(d, RegisterTable::kHolding, write.address,
                           result.read_back.empty() ? write.values : result.read_back);
    } else if (!closed_) {
      ++state.status.counters.failed_writes_total;
      // Only a device that does not answer (properly) is backed off.
      if (!absl::IsFailedPrecondition(result.status)) BackOffLocked(d, clock_.Now());
      kLog.Warning("bus %s: write failed: %s", options_.bus_id, result.status.message());
    }
    pending->result = std::move(result);
    pending->done = true;
  }
}

WriteResult ModbusBusOwner::Write(const std::string& device_id, const RegisterWrite& write) {
  const int d = IndexOf(device_id);
  if (d < 0) {
    return {absl::NotFoundError(
                absl::StrCat("bus ", options_.bus_id, " has no device '", device_id, "'")),
            {},
            std::nullopt};
  }
  if (write.values.empty() || static_cast<int>(write.values.size()) > kMaxWriteRegisters) {
    return {
        absl::InvalidArgumentError(absl::StrCat("device ", device_id, ": a write of ",
                                                write.values.size(), " registers (1-123 allowed)")),
        {},
        std::nullopt};
  }
  PendingWrite pending{d, &write, {}, false};
  {
    absl::MutexLock lock(&mu_);
    writes_.push_back(&pending);
  }
  // Whoever holds the bus carries out queued writes in order before any
  // poll, so by the time this thread gets the bus, its write may be done.
  absl::MutexLock bus(&bus_mu_);
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (pending.done) break;
    }
    ExecuteNextWriteLocked();
  }
  return std::move(pending.result);
}

absl::StatusOr<std::vector<uint16_t>> ModbusBusOwner::Read(const std::string& device_id,
                                                           RegisterTable table, uint16_t address,
                                                           int count) {
  const int d = IndexOf(device_id);
  if (d < 0) {
    return absl::NotFoundError(
        absl::StrCat("bus ", options_.bus_id, " has no device '", device_id, "'"));
  }
  if (count < 1 || count > kMaxReadRegisters) {
    return absl::InvalidArgumentError(
        absl::StrCat("device ", device_id, ": a read of ", count, " registers (1-125 allowed)"));
  }
  absl::MutexLock bus(&bus_mu_);
  // Writes queued before this read go first, as they would before a poll.
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (writes_.empty()) break;
    }
    ExecuteNextWriteLocked();
  }
  absl::StatusOr<std::vector<uint16_t>> read;
  for (int attempt = 0; attempt <= options_.retries; ++attempt) {
    if (closed_) {
      return absl::UnavailableError(
          absl::StrFormat("bus %s is stopped; device %s register 0x%04X not read", options_.bus_id,
                          device_id, address));
    }
    WaitForGapLocked();
    const absl::Time start = clock_.Now();
    const absl::Status selected = SelectUnitLocked(d);
    read = selected.ok() ? transport_->ReadRegisters(table, address, count)
                         : absl::StatusOr<std::vector<uint16_t>>(selected);
    const absl::Time end = clock_.Now();
    last_frame_end_ = end;
    absl::MutexLock lock(&mu_);
    RecordLocked(d, read.status(), start, end);
    if (read.ok() || absl::IsFailedPrecondition(read.status())) break;
  }
  absl::MutexLock lock(&mu_);
  if (read.ok()) {
    state_[d].status.consecutive_failures = 0;
    SetKnownValuesLocked(d, table, address, *read);
  } else if (!absl::IsFailedPrecondition(read.status())) {
    BackOffLocked(d, clock_.Now());  // like a missed poll
    kLog.Warning("bus %s: read failed: %s", options_.bus_id, read.status().message());
  }
  return read;
}

bool ModbusBusOwner::PollNow(const std::string& device_id) {
  const int d = IndexOf(device_id);
  if (d < 0) return false;
  absl::MutexLock bus(&bus_mu_);
  const absl::Time now = clock_.Now();
  for (Task& task : tasks_) {
    if (task.device == d) task.due = std::min(task.due, now);
  }
  absl::MutexLock lock(&mu_);
  state_[d].backoff_until = std::min(state_[d].backoff_until, now);
  return true;
}

absl::Time ModbusBusOwner::PollOnce() {
  std::vector<Notification> notifications;
  // Staleness is noticed (and reported) before a transaction that may take a
  // whole timeout.
  {
    absl::MutexLock lock(&mu_);
    UpdateStaleLocked(clock_.Now(), &notifications);
  }
  Notify(notifications);
  notifications.clear();
  absl::Time result;
  {
    absl::MutexLock bus(&bus_mu_);
    bool write_queued;
    {
      absl::MutexLock lock(&mu_);
      write_queued = !writes_.empty();
    }
    if (write_queued) {
      ExecuteNextWriteLocked();
      return clock_.Now();
    }
    absl::Time now = clock_.Now();
    Task* task = nullptr;
    absl::Time next_due = absl::InfiniteFuture();
    {
      absl::MutexLock lock(&mu_);
      // The earliest a frame may start, and the most urgent due task.
      const absl::Time gap_end =
          last_frame_end_ ? *last_frame_end_ + options_.inter_frame_gap : absl::InfinitePast();
      const auto rank = [&](const Task& t) {
        return std::make_tuple(-devices_[t.device].priority, t.poll == PollClass::kFast ? 0 : 1,
                               std::max(t.due, state_[t.device].backoff_until));
      };
      for (Task& candidate : tasks_) {
        const absl::Time due = std::max(candidate.due, state_[candidate.device].backoff_until);
        if (due > now) {
          next_due = std::min(next_due, due);
          continue;
        }
        if (task == nullptr || rank(candidate) < rank(*task)) task = &candidate;
      }
      if (task != nullptr && now < gap_end) {
        task = nullptr;
        next_due = gap_end;
      }
    }
    if (task == nullptr) {
      result = next_due;
    } else {
      const PolledDevice& device = devices_[task->device];
      const ReadBlock& block = device.map->blocks[task->block];
      const absl::Time start = clock_.Now();
      absl::Status status = SelectUnitLocked(task->device);
      absl::StatusOr<std::vector<uint16_t>> registers =
          status.ok() ? transport_->ReadRegisters(block.table, block.address, block.count)
                      : absl::StatusOr<std::vector<uint16_t>>(status);
      const absl::Time end = clock_.Now();
      last_frame_end_ = end;

      std::optional<DecodeResult> decoded;
      if (registers.ok()) {
        absl::StatusOr<DecodeResult> r = DecodeBlock(*device.map, block, *registers, device.id);
        if (r.ok()) {
          decoded = *std::move(r);
        } else {
          registers = r.status();
        }
      }
      const absl::Duration period =
          task->poll == PollClass::kFast ? device.poll_period : device.slow_poll_period;
      absl::MutexLock lock(&mu_);
      DeviceState& state = state_[task->device];
      DeviceStatus& s = state.status;
      RecordLocked(task->device, registers.status(), start, end);
      bool ok = registers.ok();
      if (ok && !decoded->rejected.empty()) {
        ok = false;
        ++s.counters.errors_total;
        s.counters.rejected_values_total += decoded->rejected.size();
        s.last_error = absl::StrJoin(decoded->rejected, "; ");
        s.last_error_at = end;
        kLog.Debug("bus %s: %s", options_.bus_id, s.last_error);
      }
      if (ok) {
        s.values.MergeFrom(decoded->values);
        if (task->poll == PollClass::kFast || !device.map->HasPollClass(PollClass::kFast)) {
          state.last_valid = end;
          s.measured_at = end;
          if (s.stale) kLog.Info("bus %s device %s: live", options_.bus_id, device.id);
          s.stale = false;
        }
        s.consecutive_failures = 0;
        state.backoff_until = end;
        task->attempt = 0;
        // Fixed rate; after an overrun start again from now rather than burst.
        task->due += period;
        if (task->due <= end) task->due = end + period;
      } else if (task->attempt < options_.retries) {
        ++task->attempt;  // retry as soon as the inter-frame gap allows
      } else {
        task->attempt = 0;
        ++s.counters.missed_polls_total;
        BackOffLocked(task->device, end);
        task->due = end + period;
      }
      notifications.push_back({task->device, ok ? BusEvent::kPolled : BusEvent::kPollFailed});
      UpdateStaleLocked(end, &notifications);
      result = end;  // the next poll may be due right away; the caller asks again
    }
  }
  Notify(notifications);
  return result;
}

void ModbusBusOwner::Run() {
  for (;;) {
    const absl::Time next = PollOnce();
    const absl::Duration wait = std::min(next - clock_.Now(), kMaxIdle);
    absl::MutexLock lock(&run_mu_);
    if (wait > absl::ZeroDuration()) {
      run_mu_.AwaitWithTimeout(absl::Condition(&stop_), wait);
    }
    if (stop_) break;
  }
  absl::MutexLock bus(&bus_mu_);
  closed_ = true;
  transport_->Close();
  current_unit_ = -1;
}

void ModbusBusOwner::Start() {
  if (thread_.joinable()) return;
  {
    absl::MutexLock bus(&bus_mu_);
    closed_ = false;
  }
  {
    absl::MutexLock lock(&run_mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void ModbusBusOwner::Stop() {
  {
    absl::MutexLock lock(&run_mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<DeviceStatus> ModbusBusOwner::Devices() const {
  absl::MutexLock lock(&mu_);
  std::vector<DeviceStatus> result;
  for (const DeviceState& state : state_) result.push_back(state.status);
  return result;
}

BusCounters ModbusBusOwner::Bus() const {
  absl::MutexLock lock(&mu_);
  return bus_counters_;
}

std::optional<DeviceStatus> ModbusBusOwner::Device(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  for (const DeviceState& state : state_) {
    if (state.status.id == id) return state.status;
  }
  return std::nullopt;
}

void ModbusBusOwner::SetListener(Listener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

}  // namespace evgate::modbus
