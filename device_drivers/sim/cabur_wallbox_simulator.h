// A simulated Cabur EV PLUS AC wallbox (7.4 kW single-phase or 22 kW
// three-phase) speaking the evgate wallbox CAN protocol
// (docs/protocols/can-wallbox.md), with a vehicle that can be plugged in.
//
// CaburWallboxSimulator is a pure model driven by the caller's clock: every
// call takes `now` (never earlier than the previous call), OnFrame() and
// Tick() return the frames the wallbox sends, nothing reads a clock or a
// socket. Physics:
//  - The wallbox offers min(setpoint, its Max Current setting) on its enabled
//    phases, 0 when paused or faulted, its failsafe current (on all its
//    phases) while the watchdog has expired or before the first setpoint.
//  - The vehicle follows the offer after `ev_lag` (IEC 61851-1 allows up to
//    5 s): it asks for energy (state C, relay closed) while the offer it sees
//    is > 0 on one of its phases and it is not full, and draws
//    min(offer, its maximum) on its phases (a 1-phase vehicle on L1). When
//    the session energy reaches `energy_to_full_wh` it stops asking (C -> B).
//  - Energy counts V x I over time; unplugging (-> A) ends the session.
//  - Any injected fault (a Cabur ERR code) opens the relay at once: state F,
//    no current, the error bit in Status, until ClearFault.
// CanWallboxSimHost runs several simulators on one CanBus on a background
// thread with the same control API, thread-safe.
//
// Thread-safety: CaburWallboxSimulator is thread-compatible;
// CanWallboxSimHost is thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_CABUR_WALLBOX_SIMULATOR_H_
#define EVGATE_DEVICE_DRIVERS_SIM_CABUR_WALLBOX_SIMULATOR_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "device_drivers/can/can_bus.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "runtime/clock.h"

namespace evgate::sim {

struct CaburWallboxConfig {
  int address = 1;  // CANAddr, 1..63
  can::wallbox::Model model = can::wallbox::Model::kEvPlus22kW3Phase;
  int max_current_a = 32;  // the "Max Current" setting, 6..32 A
  bool tethered_cable = true;
  std::string serial = "SIM000000000000000000001";
  std::array<int, 3> firmware = {1, 0, 0};
  double voltage_v = 230;                    // per phase
  absl::Duration ev_lag = absl::Seconds(2);  // vehicle response time
  int64_t lifetime_energy_wh = 0;            // MID meter reading at power-up
  int relay_temperature_c = 35;
  int ambient_temperature_c = 25;
};

// The vehicle plugged in.
struct EvParams {
  double max_current_a = 32;  // per phase, what its on-board charger takes at most
  int phases = 3;             // 1 (on L1) or 3
  double energy_to_full_wh = 50'000;
};

// What the model is doing, for tests and the site simulator.
struct CaburWallboxSnapshot {
  can::wallbox::IecState state = can::wallbox::IecState::kA;
  bool plugged = false;
  bool relay_closed = false;
  bool failsafe_active = true;
  bool paused = false;
  bool watchdog_configured = false;
  std::array<double, 3> offered_current_a{};  // per wallbox phase
  std::array<double, 3> current_a{};          // drawn, per wallbox phase L1..L3
  double session_energy_wh = 0;
  double lifetime_energy_wh = 0;
  uint16_t errors = 0;
  int applied_sequence = 0;
  int watchdog_timeout_ms = 0;
  double failsafe_current_a = 0;
  int64_t frames_rejected = 0;  // frames for this wallbox that failed decoding
};

class CaburWallboxSimulator {
 public:
  // Power-up at `now`: watchdog defaults (10 s, 6 A), failsafe until the
  // first setpoint, Identity sent by the first Tick().
  static constexpr absl::Duration kStatusPeriod = absl::Milliseconds(200);
  static constexpr absl::Duration kMinStatusGap = absl::Milliseconds(20);
  static constexpr absl::Duration kMeasurementPeriod = absl::Seconds(1);
  static constexpr absl::Duration kIdentityPeriod = absl::Seconds(10);
  static constexpr int kDefaultWatchdogTimeoutMs = 10'000;
  static constexpr double kDefaultFailsafeCurrentA = 6.0;

  CaburWallboxSimulator(const CaburWallboxConfig& config, absl::Time now);

  const CaburWallboxConfig& config() const { return config_; }
  int phases() const { return can::wallbox::ModelPhases(config_.model); }

  // A frame seen on the bus: Setpoint / WatchdogConfig for this address are
  // applied, AvailableCurrent is noted; everything else is ignored. Returns
  // the frames to send (a Status when the frame changed something visible).
  std::vector<can::CanFrame> OnFrame(const can::CanFrame& frame, absl::Time now);
  // Advances the model to `now` and returns the frames due (status, 1 Hz
  // measurements and energy, identity, RFID taps, status on change).
  std::vector<can::CanFrame> Tick(absl::Time now);

  void PlugIn(const EvParams& ev, absl::Time now);
  void Unplug(absl::Time now);
  // Queues the tap's Rfid frames for the next Tick(). `uid` is 1..10 bytes.
  absl::Status TapCard(const std::vector<uint8_t>& uid, absl::Time now);
  void InjectFault(can::wallbox::ErrorCode code, absl::Time now);
  void ClearFault(can::wallbox::ErrorCode code, absl::Time now);

  // Current drawn on the wallbox's own L1..L3 at `now`.
  std::array<double, 3> CurrentDraw(absl::Time now);
  CaburWallboxSnapshot Snapshot(absl::Time now);
  // The last AvailableCurrent the controller broadcast, if any.
  std::optional<can::wallbox::AvailableCurrent> last_broadcast() const { return broadcast_; }

 private:
  using Phases = std::array<double, 3>;

  // Integrates energy and applies the vehicle's delayed view of the offer up
  // to `now`.
  void Advance(absl::Time now);
  void Integrate(absl::Time from, absl::Time to);
  // The offer now, from setpoint, watchdog, pause and faults; records a
  // change for the vehicle to see after the lag.
  void UpdateOffer(absl::Time now);
  bool WatchdogExpired(absl::Time now) const;
  Phases Draw() const;
  can::wallbox::IecState State() const;
  can::wallbox::Status StatusMessage() const;
  std::vector<can::CanFrame> MaybeStatus(absl::Time now, bool force);

  const CaburWallboxConfig config_;

  // Controller's view.
  std::optional<can::wallbox::Setpoint> setpoint_;
  absl::Time last_setpoint_at_ = absl::InfinitePast();
  int watchdog_timeout_ms_ = kDefaultWatchdogTimeoutMs;
  double failsafe_current_a_ = kDefaultFailsafeCurrentA;
  bool watchdog_configured_ = false;
  bool failsafe_active_ = true;
  std::optional<can::wallbox::AvailableCurrent> broadcast_;

  // Physics.
  Phases offer_{};
  std::deque<std::pair<absl::Time, Phases>> offer_changes_;  // not yet seen by the vehicle
  Phases ev_view_{};
  std::optional<EvParams> ev_;
  bool ev_full_ = false;
  uint16_t errors_ = 0;
  double session_wh_ = 0;
  double lifetime_wh_ = 0;
  absl::Time integrated_to_;

  // Reporting.
  absl::Time next_status_ = absl::InfinitePast();
  absl::Time last_status_ = absl::InfinitePast();
  absl::Time next_measurement_ = absl::InfinitePast();
  absl::Time next_identity_ = absl::InfinitePast();
  int status_counter_ = 0;
  std::optional<can::wallbox::Status> last_reported_;
  int tap_sequence_ = 0;
  std::vector<can::CanFrame> queued_;
  int64_t frames_rejected_ = 0;
};

// Several simulated wallboxes on one CAN bus, served by a background thread
// that receives frames, ticks every simulator at least every `tick` of real
// time and sends what they return. Times come from `clock` (a FakeClock in
// tests). The control calls take effect at clock.Now().
//
// Tests that want no thread and no real time open the host with Open()
// instead of Start() and call Step() after each change of the fake clock or
// of the bus: it does at once what the thread would do next.
class CanWallboxSimHost {
 public:
  CanWallboxSimHost(can::CanBus& bus, const Clock& clock,
                    absl::Duration tick = absl::Milliseconds(10));
  ~CanWallboxSimHost();
  CanWallboxSimHost(const CanWallboxSimHost&) = delete;
  CanWallboxSimHost& operator=(const CanWallboxSimHost&) = delete;

  // Before Start(). Fails on a duplicate or invalid address.
  absl::Status AddWallbox(const CaburWallboxConfig& config);
  // Opens the bus and starts the thread.
  absl::Status Start();
  // Opens the bus without a thread: nothing happens until Step().
  absl::Status Open();
  // After Open(): applies every frame already received (waiting for none)
  // and ticks every simulator at clock.Now() after each and once more at the
  // end, as the thread does; the frames they return are on the bus when it
  // returns. Stops early at an interface-down event. Returns how many bus
  // events it handled. FailedPrecondition when the host is not open or its
  // thread runs. Start(), Open(), Step() and Stop() are not concurrent with
  // one another; the control calls below may run on any thread.
  absl::StatusOr<int> Step();
  // Stops the thread (if any) and closes the bus. Idempotent.
  void Stop();

  // Control, by wallbox address; NotFound for an unknown address.
  absl::Status PlugIn(int address, const EvParams& ev);
  absl::Status Unplug(int address);
  absl::Status TapCard(int address, const std::vector<uint8_t>& uid);
  absl::Status InjectFault(int address, can::wallbox::ErrorCode code);
  absl::Status ClearFault(int address, can::wallbox::ErrorCode code);
  // false: the wallbox is cut off the bus (a broken CAN cable): it hears no
  // frames and its frames are lost, while its physics go on, so its watchdog
  // expires and it falls back to its failsafe current. true: back on the bus.
  absl::Status SetResponding(int address, bool responding);
  bool Responding(int address);
  // Per-phase draw of one wallbox (its own L1..L3); zeros for an unknown one.
  std::array<double, 3> CurrentDraw(int address);
  std::optional<CaburWallboxSnapshot> Snapshot(int address);
  std::vector<int> addresses();
  // Frames the bus refused to send (e.g. interface down).
  int64_t send_errors() const;

 private:
  void Run();
  // One pass of the thread: waits up to `wait` for one bus event, applies it
  // and ticks every simulator. Returns the event's kind.
  can::BusEventKind RunOnce(absl::Duration wait);
  void SendAll(const std::vector<can::CanFrame>& frames) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  can::CanBus& bus_;
  const Clock& clock_;
  const absl::Duration tick_;
  mutable absl::Mutex mu_;
  std::map<int, std::unique_ptr<CaburWallboxSimulator>> sims_ ABSL_GUARDED_BY(mu_);
  std::set<int> cut_off_ ABSL_GUARDED_BY(mu_);  // addresses not on the bus (SetResponding)
  int64_t send_errors_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> stop_{false};
  bool open_ = false;  // the bus is open (Start() or Open()); not guarded: not concurrent
  std::thread thread_;
};

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_CABUR_WALLBOX_SIMULATOR_H_
