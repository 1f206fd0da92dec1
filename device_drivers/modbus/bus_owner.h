// The owner of one Modbus bus (an RS-485 port or a Modbus TCP link): the only
// code that talks on it.
//
// It polls the devices on the bus from their register maps, writes their
// holding registers on request, and serialises every transaction: one
// request at a time, at least `inter_frame_gap` between the end of one and
// the start of the next.
//
// Polling, per device:
//   - fast blocks every `poll_period`, slow ones (energy, settings) every
//     `slow_poll_period`; when several polls are due, the device with the
//     higher `priority` goes first (the grid meter feeds the control loop),
//     then fast before slow, then the longest overdue;
//   - a failed request is retried up to `retries` times; a poll whose
//     retries are used up is a missed poll, and the device backs off
//     exponentially (poll period x 2^(missed-1), capped at `max_backoff`) so a
//     dead device cannot eat the bus time of the live ones;
//   - a device is stale when no valid fast data arrived for
//     `stale_after_missed_polls` x `poll_period` (and until its first valid
//     read). Stale values are kept for display but flagged.
// A value that fails the register map's checks (NaN, infinity, out of range)
// discards the whole read: it counts as an error with device and register in
// `last_error`, and is never passed on.
//
// Writes (Write()) may come from any thread. They go ahead of every pending
// poll: a setpoint never waits behind energy polls, only behind the one
// transaction already on the wire. A write is retried like a poll (except
// after an exception reply, the device's considered answer), counted in the
// same counters, and a write whose retries are used up backs the device off
// like a missed poll. Devices with `read_back_writes` read the
// registers back after writing them; a value that does not read back fails
// the write (and is retried).
// After a confirmed write, the device's known values of the fields it
// covered are what the device now holds. Read() reads registers on demand
// the same way (a setpoint refresh checking what a device holds).
//
// Time and the transport are injected: PollOnce() does at most one
// transaction and says when the next one is due, so tests drive the owner
// with a FakeClock and a fake transport; Start() runs the same loop on a
// thread with the real clock. A Write() is carried out by the thread that
// calls it as soon as the bus is free (or by the polling thread, whichever
// gets the bus first), so it works with or without Start().
//
// Thread-safety: thread-safe. The listener is called without locks held and
// may call Write() and the accessors, but not PollOnce().
#ifndef EVGATE_DEVICE_DRIVERS_MODBUS_BUS_OWNER_H_
#define EVGATE_DEVICE_DRIVERS_MODBUS_BUS_OWNER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/modbus/modbus_transport.h"
#include "device_drivers/modbus/register_map.h"
#include "runtime/clock.h"
#include "runtime/duration_histogram.h"

namespace evgate::modbus {

// One device on the bus.
struct PolledDevice {
  std::string id;  // site.yaml device id
  int unit_id = 1;
  // The device's register map; must outlive the owner.
  const RegisterMap* map = nullptr;
  absl::Duration poll_period = absl::Seconds(1);
  absl::Duration slow_poll_period = absl::Seconds(10);
  int priority = 0;  // higher is polled first when several polls are due
  int stale_after_missed_polls = 3;
  // Read written holding registers back (function 03) and compare.
  bool read_back_writes = false;
};

struct BusOptions {
  std::string bus_id;  // site.yaml bus id, for messages
  // Quiet time between frames. RTU needs at least 3.5 characters
  // (RtuInterFrameGap); slow devices may need more.
  absl::Duration inter_frame_gap = absl::ZeroDuration();
  int retries = 2;  // extra attempts of a failed request within one poll
  absl::Duration max_backoff = absl::Seconds(10);
  // How a Write() waits out the inter-frame gap; default absl::SleepFor.
  // Tests pass a function that advances their FakeClock.
  std::function<void(absl::Duration)> sleep;
};

// 3.5 character times of an 11-bit RTU character at `baud`, at least 1.75 ms
// above 19200 baud (Modbus over serial line spec, 2.5.1.1).
absl::Duration RtuInterFrameGap(int baud);

// Counters since the owner started (never reset).
struct DeviceCounters {
  uint64_t requests_total = 0;  // reads and writes, every attempt
  uint64_t errors_total = 0;    // exception replies, malformed answers, link errors, bad values
  uint64_t timeouts_total = 0;  // no answer in time
  uint64_t rejected_values_total = 0;  // values that failed the map's checks
  uint64_t missed_polls_total = 0;     // polls that failed after all retries
  uint64_t writes_total = 0;           // Write() calls carried out
  uint64_t failed_writes_total = 0;    // ... that failed after all retries
  absl::Duration latency_last;         // of the last answered request
  absl::Duration latency_max;
  absl::Duration latency_sum;  // over `latency_count` answered requests
  uint64_t latency_count = 0;
};

// The bus's share of the same counts, over all its devices, and how long the
// answered requests took (BusHealth in the API).
struct BusCounters {
  uint64_t requests_total = 0;
  uint64_t errors_total = 0;
  uint64_t timeouts_total = 0;
  DurationHistogram request_duration{BusRequestBounds()};  // answered requests
};

// What the owner knows about one device.
struct DeviceStatus {
  std::string id;
  std::string bus_id;
  int unit_id = 0;
  std::string profile;                    // register map name
  RegisterValues values;                  // last valid values (all blocks merged)
  std::optional<absl::Time> measured_at;  // of the last valid fast read
  std::optional<absl::Time> last_seen;    // last time the device answered at all
  bool stale = true;
  uint32_t consecutive_failures = 0;  // missed polls and failed writes in a row
  std::string last_error;
  std::optional<absl::Time> last_error_at;
  DeviceCounters counters;
};

// Why the listener is called.
enum class BusEvent {
  kPolled,      // a block was read and decoded; `values` has its fresh values
  kPollFailed,  // a poll attempt failed (see last_error); it may be retried
  kStale,       // the device just turned stale
};

// Holding registers to write, starting at `address`: one register is sent
// with function 06, more with function 16.
struct RegisterWrite {
  uint16_t address = 0;
  std::vector<uint16_t> values;
};

struct WriteResult {
  absl::Status status;
  // The registers as read back (devices with read_back_writes; also on a
  // mismatch).
  std::vector<uint16_t> read_back;
  // When the device confirmed the write (success only).
  std::optional<absl::Time> confirmed_at;
};

class ModbusBusOwner {
 public:
  // `devices` must have unique ids and a non-null map each (checked: a
  // device without one is never polled and stays stale).
  ModbusBusOwner(BusOptions options, std::vector<PolledDevice> devices,
                 std::unique_ptr<ModbusTransport> transport, const Clock& clock);
  ~ModbusBusOwner();
  ModbusBusOwner(const ModbusBusOwner&) = delete;
  ModbusBusOwner& operator=(const ModbusBusOwner&) = delete;

  // Does at most one Modbus transaction (a queued write, else the most
  // urgent due poll) and returns the time the next one is due.
  absl::Time PollOnce();

  // Runs PollOnce() on a background thread, sleeping in between, until
  // Stop(). Stop() returns after the current transaction (at most one
  // transport timeout per retry) and closes the transport.
  void Start();
  void Stop();

  // Writes holding registers of `device_id` ahead of all pending polls and
  // returns when the device confirmed them or all retries failed. Errors:
  // kNotFound (no such device), kUnavailable (the owner was stopped), else
  // the transport's (modbus_transport.h) or kDataLoss for a read-back
  // mismatch.
  WriteResult Write(const std::string& device_id, const RegisterWrite& write);

  // Reads `count` registers of `table` from `device_id` now: after the
  // writes already queued, ahead of pending polls, retried like a poll, in
  // the device's counters (a read whose retries are used up backs the device
  // off). On success the device's known values of the fields it covered
  // follow. Errors: kNotFound, kInvalidArgument (count outside 1-125),
  // kUnavailable (stopped), else the transport's.
  absl::StatusOr<std::vector<uint16_t>> Read(const std::string& device_id, RegisterTable table,
                                             uint16_t address, int count);

  // Makes every poll of `device_id` due now (an operator's "report now").
  // False if there is no such device.
  bool PollNow(const std::string& device_id);

  std::vector<DeviceStatus> Devices() const;
  std::optional<DeviceStatus> Device(const std::string& id) const;
  BusCounters Bus() const;

  // Called after every poll attempt of a device and when a device turns
  // stale, with its new status, from the thread that polled.
  using Listener = std::function<void(const DeviceStatus&, BusEvent)>;
  void SetListener(Listener listener);

  const std::string& bus_id() const { return options_.bus_id; }

 private:
  struct Task {
    int device;  // index into devices_
    int block;   // index into the map's blocks
    PollClass poll;
    absl::Time due;
    int attempt = 0;  // retries used by the current poll
  };
  struct DeviceState {
    DeviceStatus status;
    absl::Time backoff_until;
    absl::Time last_valid;  // start time until the first valid read
  };
  struct PendingWrite {
    int device;
    const RegisterWrite* write;
    WriteResult result;
    bool done = false;
  };
  struct Notification {
    int device;
    BusEvent event;
  };

  int IndexOf(const std::string& device_id) const;
  // Marks devices stale whose data is too old; appends them to `out`.
  void UpdateStaleLocked(absl::Time now, std::vector<Notification>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration StaleTimeout(const PolledDevice& device) const;
  void Notify(const std::vector<Notification>& notifications) ABSL_LOCKS_EXCLUDED(mu_, bus_mu_);
  // Selects the unit of `device` on the transport if it is not selected.
  absl::Status SelectUnitLocked(int device) ABSL_EXCLUSIVE_LOCKS_REQUIRED(bus_mu_);
  // Sleeps until the inter-frame gap after the last frame has passed.
  void WaitForGapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(bus_mu_);
  // Counts one transaction of `device` that took [start, end].
  void RecordLocked(int device, const absl::Status& status, absl::Time start, absl::Time end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Backs `device` off after a poll or write failed all its retries.
  void BackOffLocked(int device, absl::Time end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Carries out the oldest queued write, all its attempts.
  void ExecuteNextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(bus_mu_);
  // Sets the known values of `d`'s fields that `registers` (read from or
  // written to `table` at `address`) cover.
  void SetKnownValuesLocked(int d, RegisterTable table, uint16_t address,
                            const std::vector<uint16_t>& registers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run();

  const BusOptions options_;
  const std::vector<PolledDevice> devices_;
  const std::unique_ptr<ModbusTransport> transport_;
  const Clock& clock_;

  // The bus: held for the whole of a transaction (and a write's retries).
  mutable absl::Mutex bus_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<Task> tasks_ ABSL_GUARDED_BY(bus_mu_);
  std::optional<absl::Time> last_frame_end_ ABSL_GUARDED_BY(bus_mu_);
  int current_unit_ ABSL_GUARDED_BY(bus_mu_) = -1;
  bool closed_ ABSL_GUARDED_BY(bus_mu_) = false;

  mutable absl::Mutex mu_;
  std::vector<DeviceState> state_ ABSL_GUARDED_BY(mu_);
  BusCounters bus_counters_ ABSL_GUARDED_BY(mu_);
  std::deque<PendingWrite*> writes_ ABSL_GUARDED_BY(mu_);
  Listener listener_ ABSL_GUARDED_BY(mu_);

  absl::Mutex run_mu_;
  bool stop_ ABSL_GUARDED_BY(run_mu_) = false;
  std::thread thread_;
};

}  // namespace evgate::modbus

#endif  // EVGATE_DEVICE_DRIVERS_MODBUS_BUS_OWNER_H_
