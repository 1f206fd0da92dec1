#include "device_drivers/modbus/bus_owner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/log.h"

namespace evgate::modbus {
namespace {

constexpr log::Logger kLog("modbus");

// How long the background thread sleeps at most before re-checking staleness
// and the stop flag.
constexpr absl::Duration kMaxIdle = absl::Milliseconds(100);

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

absl::Duration ModbusBusOwner::StaleTimeout(const PolledDevice& device) const {
  return device.poll_period * std::max(1, device.stale_after_missed_polls);
}

std::vector<int> ModbusBusOwner::UpdateStaleLocked(absl::Time now) {
  std::vector<int> changed;
  for (int d = 0; d < static_cast<int>(devices_.size()); ++d) {
    DeviceState& state = state_[d];
    if (!state.status.stale && now - state.last_valid > StaleTimeout(devices_[d])) {
      state.status.stale = true;
      kLog.Warning("bus %s device %s: stale, no valid data for %s (%s)", options_.bus_id,
                   devices_[d].id, absl::FormatDuration(now - state.last_valid),
                   state.status.last_error);
      changed.push_back(d);
    }
  }
  return changed;
}

void ModbusBusOwner::Notify(const std::vector<int>& devices) {
  if (devices.empty()) return;
  Listener listener;
  std::vector<DeviceStatus> statuses;
  {
    absl::MutexLock lock(&mu_);
    if (!listener_) return;
    listener = listener_;
    for (int d : devices) statuses.push_back(state_[d].status);
  }
  for (const DeviceStatus& status : statuses) listener(status);
}

absl::Time ModbusBusOwner::PollOnce() {
  absl::Time now = clock_.Now();
  std::vector<int> changed;
  Task* task = nullptr;
  absl::Time next_due = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    changed = UpdateStaleLocked(now);
    // The earliest a frame may start, and the most urgent due task.
    const absl::Time gap_end =
        last_frame_end_ ? *last_frame_end_ + options_.inter_frame_gap : absl::InfinitePast();
    for (Task& candidate : tasks_) {
      const absl::Time due = std::max(candidate.due, state_[candidate.device].backoff_until);
      if (due > now) {
        next_due = std::min(next_due, due);
        continue;
      }
      if (task == nullptr) {
        task = &candidate;
        continue;
      }
      const auto rank = [&](const Task& t) {
        return std::make_tuple(-devices_[t.device].priority, t.poll == PollClass::kFast ? 0 : 1,
                               std::max(t.due, state_[t.device].backoff_until));
      };
      if (rank(candidate) < rank(*task)) task = &candidate;
    }
    if (task != nullptr && now < gap_end) {
      task = nullptr;
      next_due = gap_end;
    }
  }
  Notify(changed);
  if (task == nullptr) return next_due;

  const PolledDevice& device = devices_[task->device];
  const ReadBlock& block = device.map->blocks[task->block];
  absl::Status status;
  if (current_unit_ != device.unit_id) {
    status = transport_->SetSlave(device.unit_id);
    if (status.ok()) current_unit_ = device.unit_id;
  }
  const absl::Time start = clock_.Now();
  absl::StatusOr<std::vector<uint16_t>> registers =
      status.ok() ? transport_->ReadRegisters(device.map->table, block.address, block.count)
                  : absl::StatusOr<std::vector<uint16_t>>(status);
  const absl::Time end = clock_.Now();
  last_frame_end_ = end;

  std::optional<DecodeResult> decoded;
  if (registers.ok()) {
    absl::StatusOr<DecodeResult> result = DecodeBlock(*device.map, block, *registers, device.id);
    if (result.ok()) {
      decoded = *std::move(result);
    } else {
      registers = result.status();
    }
  }
  const absl::Duration period =
      task->poll == PollClass::kFast ? device.poll_period : device.slow_poll_period;
  {
    absl::MutexLock lock(&mu_);
    DeviceState& state = state_[task->device];
    DeviceStatus& s = state.status;
    DeviceCounters& c = s.counters;
    ++c.requests_total;
    const bool answered = registers.ok() || absl::IsFailedPrecondition(registers.status());
    if (answered) {
      s.last_seen = end;
      c.latency_last = end - start;
      c.latency_max = std::max(c.latency_max, c.latency_last);
      c.latency_sum += c.latency_last;
      ++c.latency_count;
    }
    std::string error;
    if (!registers.ok()) {
      (absl::IsDeadlineExceeded(registers.status()) ? c.timeouts_total : c.errors_total)++;
      error = std::string(registers.status().message());
    } else if (!decoded->rejected.empty()) {
      ++c.errors_total;
      c.rejected_values_total += decoded->rejected.size();
      error = absl::StrJoin(decoded->rejected, "; ");
    }
    if (error.empty()) {
      MergeMeterValues(decoded->values, &s.values);
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
    } else {
      s.last_error = error;
      s.last_error_at = end;
      kLog.Debug("bus %s: %s", options_.bus_id, error);
      if (task->attempt < options_.retries) {
        ++task->attempt;  // retry as soon as the inter-frame gap allows
      } else {
        task->attempt = 0;
        ++c.missed_polls_total;
        ++s.consecutive_failures;
        const int doublings = static_cast<int>(std::min<uint32_t>(s.consecutive_failures - 1, 20));
        const absl::Duration backoff = std::min(device.poll_period * (int64_t{1} << doublings),
                                                std::max(options_.max_backoff, device.poll_period));
        state.backoff_until = end + backoff;
        task->due = end + period;
      }
    }
    changed = UpdateStaleLocked(end);
    if (std::find(changed.begin(), changed.end(), task->device) == changed.end()) {
      changed.push_back(task->device);
    }
  }
  Notify(changed);
  return end;  // the next poll may be due right away; the caller asks again
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
  transport_->Close();
}

void ModbusBusOwner::Start() {
  if (thread_.joinable()) return;
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
