// The owner of one CAN bus of AC wallboxes speaking the evgate wallbox CAN
// protocol (docs/protocols/can-wallbox.md): the only code that talks on that
// bus, and the DeviceBackend through which the rest of evgate sees and
// controls those wallboxes.
//
// On the bus it plays the Cabur master's role, as the protocol specifies:
//   - AvailableCurrent every `available_current_period` (1 s): per grid
//     phase, the sum of the controller's current setpoints in force on the
//     wallboxes of this bus (what the site has given them), with the number
//     of wallboxes sharing it; it is also the controller's heartbeat;
//   - a Setpoint to a wallbox as soon as ApplySetpoints changes it (sequence
//     + 1), repeated every `setpoint_refresh_period` (1 s; at most a quarter
//     of the wallbox's watchdog timeout) with the same sequence, so one lost
//     frame never lets the 5 s wallbox watchdog fire;
//   - WatchdogConfig (timeout `watchdog_timeout`, the EVSE's failsafe
//     current from site.yaml) when the owner first hears from a wallbox
//     (even one configured by an earlier process, whose failsafe may
//     differ), when it announces itself (Identity page 0) without being
//     configured, and whenever its Status says `watchdog configured` = 0
//     (power-up or reboot), at most every `watchdog_config_min_interval`. A
//     reboot (the bit falling 1 -> 0) also resends the Setpoint at once.
// From the bus it builds one DeviceState per wallbox: identity, link health,
// the EVSE's capabilities (site.yaml, narrowed by the wallbox's own Max
// Current), IEC 61851 state, connector status, relay, per-phase currents and
// voltages on *site* phases (the wallbox's L1..L3 mapped through the EVSE's
// wiring, e.g. L2-L3-L1), power, energy, temperatures, the setpoint in force
// and the Cabur ERR faults (cabur_faults.h).
//
// Staleness: a wallbox is stale when no Status frame arrived for
// `stale_after` (site.yaml stale_after_missed_polls x the 200 ms Status
// period, at least the protocol's 1000 ms: MakeCanBackend), and until its
// first Status. Voltage/power and energy/temperatures are left out when
// their own frames are older than `measurements_stale_after` (3 s) while
// Status still arrives.
//
// The setpoint in force is what the owner last put on the bus (source
// CONTROLLER, `applied_at` = when it was sent, `expires_at` = its TTL),
// unless the wallbox says otherwise: `failsafe active` in Status means its
// watchdog fired (FAILSAFE, the programmed failsafe current), or, before
// any WatchdogConfig since power-up, its power-up default (DEVICE_DEFAULT,
// 6 A). When a controller setpoint's TTL expires the owner sends the
// failsafe current once (FAILSAFE) and stops refreshing, so the wallbox's
// own watchdog then holds it there. A Setpoint the wallbox does not confirm
// (Status `applied sequence`) within `not_applied_after` counts as an error
// in the link health.
//
// Operators can take a wallbox out of service (Command ChangeAvailability
// INOPERATIVE): at once when no vehicle is plugged in, otherwise
// (SCHEDULED) when it is unplugged. The owner then holds it paused
// (refreshed, no expiry), rejects setpoints for it (EVSE_UNAVAILABLE) and
// reports it UNAVAILABLE; OPERATIVE lifts that, and the next setpoint
// releases the pause. Availability is not kept across restarts.
// SetFailsafe programs another watchdog timeout / failsafe current; the
// protocol has no reset or unlock message (NOT_SUPPORTED).
//
// Bad input never crashes and never reaches a setpoint: a frame that fails
// decoding is counted for the wallbox its id names (errors_total, and by
// kind in Counters()) and logged with the device and the reason; frames of
// other protocols, of unconfigured addresses and of another controller are
// counted per bus.
//
// Events to the sink: `telemetry` on every Status, Measurements and Energy
// frame; `evse_state_change` when state, connector status, relay, setpoint
// in force or capabilities change; `link_state_change` when a wallbox turns
// stale or recovers; `fault_raised` / `fault_cleared` per ERR bit;
// `rfid_tap` per complete card tap; `snapshot` when a wallbox's identity
// changes.
//
// Time and the bus are injected. PollOnce() handles at most one bus event
// and then the periodic work that is due, so tests drive the owner with a
// FakeClock and a LoopbackCanNetwork endpoint; Start() runs the same loop on
// a thread.
//
// Thread-safety: the DeviceBackend methods are thread-safe as that
// interface says. Open(), PollOnce(), HandleEvent() and RunDue() must not
// run concurrently with each other or while started (they are the owner
// thread's work); Counters() and BusCounters() are thread-safe.
#ifndef EVGATE_DEVICE_DRIVERS_CAN_CAN_BUS_OWNER_H_
#define EVGATE_DEVICE_DRIVERS_CAN_CAN_BUS_OWNER_H_

#include <cstdint>
#include <map>
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
#include "device_drivers/can/can_bus.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "device_drivers/driver/device_backend.h"
#include "evgate/v1/device.pb.h"
#include "runtime/clock.h"
#include "site_controller/config/site_config.h"

namespace evgate::can {

// The wallbox's Status period (docs/protocols/can-wallbox.md).
inline constexpr absl::Duration kStatusPeriod = absl::Milliseconds(200);
// A wallbox's failsafe current at power-up, before any WatchdogConfig.
inline constexpr double kPowerUpFailsafeCurrentA = 6.0;

// One wallbox on the bus and its one EVSE (site.yaml device + station).
struct CanWallboxConfig {
  std::string device_id;
  std::string profile;  // e.g. "cabur_ev_plus_22kw"
  int address = 0;      // CANAddr, 1..63
  std::string station_id;
  std::string evse_id;
  int connector = 1;
  // Site phase of the wallbox's L1, L2, L3 (one entry: single-phase).
  std::vector<site::Phase> phases;
  double min_current_a = 6;
  double max_current_a = 32;
  double current_step_a = 0.1;
  double failsafe_current_a = 6;  // 0 = pause on failsafe
  absl::Duration stale_after = absl::Seconds(1);
};

struct CanBusOwnerOptions {
  std::string bus_id;  // site.yaml bus id
  absl::Duration available_current_period = absl::Seconds(1);
  absl::Duration setpoint_refresh_period = absl::Seconds(1);
  absl::Duration watchdog_timeout = absl::Seconds(5);
  absl::Duration watchdog_config_min_interval = absl::Seconds(1);
  absl::Duration measurements_stale_after = absl::Seconds(3);
  absl::Duration not_applied_after = absl::Seconds(2);
  // TTL used when ApplySetpoints gets a zero or negative one.
  absl::Duration default_ttl = absl::Seconds(10);
  // Longest the owner thread blocks in Receive() (bounds Stop()).
  absl::Duration max_receive_wait = absl::Milliseconds(100);
};

// Per-wallbox counters since the owner started (never reset).
struct CanWallboxCounters {
  uint64_t frames_received_total = 0;          // valid frames from the wallbox
  uint64_t bad_frames_total = 0;               // its frames that failed decoding
  uint64_t bad_frames_invalid_total = 0;       // of which: bad DLC, reserved bits, enum
  uint64_t bad_frames_out_of_range_total = 0;  // of which: a field out of range
  uint64_t frames_sent_total = 0;              // Setpoint + WatchdogConfig frames put on the bus
  uint64_t send_errors_total = 0;
  uint64_t stale_total = 0;        // times it turned stale
  uint64_t not_applied_total = 0;  // setpoints not confirmed in time
  uint64_t reboots_total = 0;      // watchdog-configured bit fell 1 -> 0
  uint64_t watchdog_configs_total = 0;
};

// Per-bus counters since the owner started.
struct CanBusCounters {
  uint64_t frames_sent_total = 0;  // every frame the bus accepted from us
  uint64_t frames_received_total = 0;
  uint64_t foreign_frames_total = 0;           // not the wallbox protocol
  uint64_t unknown_address_frames_total = 0;   // protocol frames of unconfigured addresses
  uint64_t other_controller_frames_total = 0;  // controller messages not sent by us
  uint64_t bus_events_total = 0;               // error frames, interface down/up
  // The error frames among them, by what they announce, and interface losses.
  uint64_t error_warning_total = 0;
  uint64_t error_passive_total = 0;
  uint64_t bus_off_total = 0;
  uint64_t other_error_frames_total = 0;
  uint64_t interface_down_total = 0;
  uint64_t setpoints_expired_total = 0;  // TTL ran out: the failsafe was sent
  uint64_t available_current_sent_total = 0;
  uint64_t send_errors_total = 0;
};

class CanBusOwner final : public devices::DeviceBackend {
 public:
  // `wallboxes` have unique device ids, EVSE ids and addresses 1..63 (a
  // loaded site.yaml guarantees it). `clock` must outlive the owner.
  CanBusOwner(CanBusOwnerOptions options, std::vector<CanWallboxConfig> wallboxes,
              std::unique_ptr<CanBus> bus, const Clock& clock);
  ~CanBusOwner() override;
  CanBusOwner(const CanBusOwner&) = delete;
  CanBusOwner& operator=(const CanBusOwner&) = delete;

  // DeviceBackend.
  std::string bus_id() const override { return options_.bus_id; }
  std::vector<std::string> DeviceIds() const override;
  std::optional<evgate::v1::DeviceState> GetDevice(const std::string& device_id) const override;
  evgate::v1::BusHealth GetBusHealth() const override;
  std::vector<std::string> EvseIds() const override;
  std::vector<std::optional<evgate::v1::SetpointValue>> SetpointsInForce(
      const std::vector<std::string>& evse_ids) const override;
  std::vector<evgate::v1::SetpointResult> ApplySetpoints(
      const std::vector<evgate::v1::Setpoint>& setpoints, absl::Duration ttl,
      const std::string& batch_id) override;
  evgate::v1::CommandResponse Command(const evgate::v1::CommandRequest& request) override;
  void SetSink(devices::DeviceEventSink* sink) override;
  // Open() + the owner thread.
  absl::Status Start() override;
  void Stop() override;

  // Opens the bus (the error names it) without starting the thread.
  absl::Status Open();
  // Waits up to `max_wait` for one bus event, handles it, then runs the
  // periodic work that is due. True when an event (not a timeout) came.
  bool PollOnce(absl::Duration max_wait);
  void HandleEvent(const BusEvent& event);
  // Sends what is due at the clock's now (broadcast, refreshes, TTL expiry,
  // watchdog configs), turns silent wallboxes stale; returns when it next
  // has work.
  absl::Time RunDue();

  CanWallboxCounters Counters(const std::string& device_id) const;
  CanBusCounters BusCounters() const;

 private:
  // What the owner last put on the bus for one wallbox.
  struct SentSetpoint {
    wallbox::Setpoint frame;  // current, phases, pause, sequence
    evgate::v1::SetpointInForce in_force;
    bool refresh = true;  // false once the TTL expired (failsafe sent once)
    std::optional<absl::Time> expires_at;
    absl::Time first_sent_at;
    bool confirmed = false;
    bool not_applied_reported = false;
  };
  // What an evse_state_change is about, compared cheaply on every frame.
  struct PublishedState {
    evgate::v1::Iec61851State iec61851_state = evgate::v1::IEC61851_STATE_UNSPECIFIED;
    evgate::v1::ConnectorStatus connector_status = evgate::v1::CONNECTOR_STATUS_UNSPECIFIED;
    int relay_closed = -1;  // -1 unknown
    std::string in_force;   // SetpointInForce, serialized
    double max_current_a = 0;
    bool operator==(const PublishedState& o) const {
      return iec61851_state == o.iec61851_state && connector_status == o.connector_status &&
             relay_closed == o.relay_closed && in_force == o.in_force &&
             max_current_a == o.max_current_a;
    }
  };
  struct Wallbox {
    CanWallboxConfig config;
    std::optional<wallbox::Status> status;
    absl::Time status_at;
    std::optional<wallbox::Measurements> measurements;
    absl::Time measurements_at;
    std::optional<wallbox::Energy> energy;
    absl::Time energy_at;
    std::optional<wallbox::Identity> identity;
    std::optional<absl::Time> last_seen;
    bool stale = true;
    bool charged_this_plug = false;  // state C/D seen since the last state A
    // Set inoperative by an operator (ChangeAvailability); pending while a
    // vehicle is still plugged in.
    bool inoperative = false;
    bool inoperative_pending = false;
    std::optional<absl::Time> failsafe_since;
    int sequence = 0;  // of the last Setpoint sent
    std::optional<SentSetpoint> command;
    absl::Time next_refresh;
    std::optional<absl::Time> watchdog_sent_at;
    int watchdog_timeout_ms = 0;
    double failsafe_current_a = 0;
    std::map<wallbox::ErrorCode, absl::Time> faults;  // active, with since
    std::optional<PublishedState> published;          // of the last evse_state_change
    CanWallboxCounters counters;
    uint64_t errors_total = 0;  // LinkHealth
    uint64_t timeouts_total = 0;
    std::string last_error;
    std::optional<absl::Time> last_error_at;
  };
  // Frames to put on the bus after the state lock is released; `wallbox`
  // is -1 for broadcasts.
  struct Outgoing {
    int wallbox = -1;
    CanFrame frame;
    std::string what;  // for error messages
  };

  int FindByAddress(int address) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int FindByEvse(const std::string& evse_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int FindByDevice(const std::string& device_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void HandleFrame(const CanFrame& frame, absl::Time now, std::vector<Outgoing>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts an error frame or interface loss by kind (`newly_down`: the
  // interface was up until this event).
  void CountBusErrorLocked(BusEventKind kind, bool newly_down) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleBadFrame(const CanFrame& frame, const absl::Status& status, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnStatus(int index, const wallbox::Status& status, absl::Time now,
                std::vector<Outgoing>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnIdentity(int index, const wallbox::Identity& identity, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeConfigureWatchdog(int index, absl::Time now, std::vector<Outgoing>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the wallbox out of service: a pause, refreshed without expiry.
  void ApplyInoperative(int index, absl::Time now, std::vector<Outgoing>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunDueLocked(absl::Time now, std::vector<Outgoing>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time NextDueLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Sends `out` (the caller holds send_mu_, not mu_) and records errors;
  // returns the first one.
  absl::Status SendAll(const std::vector<Outgoing>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RecordError(Wallbox& w, const std::string& error, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // State -> proto.
  evgate::v1::SetpointInForce InForce(const Wallbox& w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration RefreshPeriod(const Wallbox& w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // site.yaml's maximum, narrowed by the wallbox's own Max Current setting.
  double MaxCurrent(const Wallbox& w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  evgate::v1::EvseState BuildEvseState(const Wallbox& w, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  evgate::v1::ConnectorStatus ConnectorStatusOf(const Wallbox& w,
                                                const evgate::v1::SetpointInForce& in_force) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  evgate::v1::EvseMeasurements BuildMeasurements(const Wallbox& w, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  evgate::v1::LinkHealth BuildLink(const Wallbox& w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  evgate::v1::DeviceState BuildDevice(const Wallbox& w, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  evgate::v1::SetpointValue ValueFor(const Wallbox& w, double current_a, bool pause) const;

  // Events are queued under mu_ and published after it is released, in
  // order (Flush holds send_mu_, which every writer holds).
  void Emit(const std::string& device_id, absl::Time at, evgate::v1::WatchDevicesResponse event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitStateChangeIfChanged(Wallbox& w, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitTelemetry(const Wallbox& w, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Flush() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_) ABSL_LOCKS_EXCLUDED(mu_);

  void Run();

  const CanBusOwnerOptions options_;
  const std::unique_ptr<CanBus> bus_;
  const Clock& clock_;

  // Held by every path that changes state and sends (the owner thread's
  // work, ApplySetpoints, Command), so frames and events keep their order;
  // never held by readers. Taken before mu_.
  absl::Mutex send_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::vector<Wallbox> wallboxes_ ABSL_GUARDED_BY(mu_);
  CanBusCounters bus_counters_ ABSL_GUARDED_BY(mu_);
  absl::Time next_broadcast_ ABSL_GUARDED_BY(mu_);
  int broadcast_counter_ ABSL_GUARDED_BY(mu_) = 0;
  wallbox::RfidAssembler rfid_ ABSL_GUARDED_BY(mu_);
  wallbox::IdentityAssembler identity_ ABSL_GUARDED_BY(mu_);
  std::map<int, bool> warned_unknown_address_ ABSL_GUARDED_BY(mu_);
  bool warned_other_controller_ ABSL_GUARDED_BY(mu_) = false;
  bool bus_down_ ABSL_GUARDED_BY(mu_) = false;  // kInterfaceDown seen, no kRestarted yet
  std::vector<evgate::v1::WatchDevicesResponse> outbox_ ABSL_GUARDED_BY(mu_);
  devices::DeviceEventSink* sink_ = nullptr;  // set before Start()

  absl::Mutex run_mu_;
  bool stop_ ABSL_GUARDED_BY(run_mu_) = false;
  std::thread thread_;
};

// The wallboxes of CAN bus `bus` (devices with a CAN wallbox profile on it,
// each with its station's one EVSE), in site.yaml order.
absl::StatusOr<std::vector<CanWallboxConfig>> CanWallboxesOnBus(const site::SiteConfig& site,
                                                                const site::BusConfig& bus);

// The CAN bus owner for `bus` of `site`: SocketCanBus on `interface`, or
// UdpCanBus on udp_group:udp_port for `transport: udp`. `site` and `clock`
// must outlive the backend.
absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> MakeCanBackend(const site::SiteConfig& site,
                                                                       const site::BusConfig& bus,
                                                                       const Clock& clock);

}  // namespace evgate::can

#endif  // EVGATE_DEVICE_DRIVERS_CAN_CAN_BUS_OWNER_H_
