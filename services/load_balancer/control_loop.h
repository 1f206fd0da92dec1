// The load balancer's control loop: live device data in, setpoints out.
//
// It watches every device driver through DeviceLinks and turns their events
// into inputs of the ControlPolicy (site_controller/control):
//   - telemetry of the grid meter and of circuit meters → meter samples,
//     timestamped with the meter's own `measured_at`;
//   - EVSE snapshots, state changes and telemetry → EVSE updates: a vehicle
//     wants energy while its connector is Preparing, Charging, SuspendedEV or
//     SuspendedEVSE (IEC 61851 state B, C or D when the status is unknown);
//     measured currents are mapped from site phases to the EVSE's wiring order;
//   - an EVSE the loop cannot command — no driver has reported it, its
//     driver stream is down or not yet synchronised, its device link is
//     stale, or its last setpoint was refused or its batch failed — is
//     pushed as not commandable (ControlPolicy then counts it at its worst
//     case and shares the rest among the others) with the last setpoint a
//     driver accepted for it; an EVSE nobody has reported yet is assumed at
//     its maximum since the loop started, for a previous instance may have
//     left it there (the policy lets that go after TTL + device watchdog) —
//     except on an OCPP charger, which no evgate has commanded before the
//     OCPP bridge exists: its draw is building load to the meters;
//   - a stale device link or a lost driver stream also makes that device's
//     EVSE measurements unknown; its meters age out into failsafe;
//   - a meter reading without a value on a phase its node has, with a
//     non-finite value or without `measured_at` is invalid: that node (the
//     grid: the whole site) is in failsafe until a valid one arrives.
// Times. The policy sees only the monotonic timeline (Clock::MonotonicNow),
// so a wall-clock step (NTP on a box that booted without RTC) neither freezes
// nor fast-forwards a meter's age. A driver's wall-clock `measured_at` is
// converted at receipt: mono = mono_receipt - max(0, wall_receipt -
// measured_at) (a time in the future counts as the receipt). An EVSE
// measurement without `measured_at` is not used (the EVSE counts at its
// setpoint); a meter reading without it is invalid — a receipt time would make
// an old reading look fresh. What the loop shows (computed_at, failsafe_since,
// paused_since) is converted back to wall time. The conversion trusts the
// driver's wall clock to agree with ours: on one box (evgate run, or k3s on
// the gateway) it is the same clock; a driver on another host must be
// NTP-synchronised, or its samples look old (failsafe: safe, not silent) or
// fresh.
// Energy is gated by authorization when a session service is connected: an
// EVSE counts as active only while its vehicle is connected AND it has an
// open session with `energy_authorized` (SessionService.WatchSessions). While
// that stream is down, the last known set stays in force (running sessions
// keep charging, no new one starts until it is back). Without a session
// service every connected vehicle may charge.
// Base load is the grid meter minus the EVSEs' currents, so both must be of
// the same moment: a meter polled once a second read against wallbox
// currents reported five times a second would, during every ramp, misjudge
// the building by the ramp's step and make the loop overshoot and oscillate
// near a limit. EVSE measurements are therefore kept for a few seconds and
// each grid meter sample is applied together with the EVSE measurements as
// of its own `measured_at` (one recomputation, ControlPolicy::OnSamples);
// later EVSE measurements wait for the next meter sample.
// It recomputes on every such input and on a periodic tick (controller.tick_ms,
// which also refreshes every setpoint before its TTL runs out, so that a dead
// load balancer leaves the wallboxes at their failsafe), drains whatever
// arrived meanwhile before dispatching, and sends each driver one
// ApplySetpoints batch with every setpoint it owns whenever one of them
// changed.
// Dispatch. Every driver's batch goes out at once (one thread per driver), so
// a slow driver delays no other. Decreases come first across the whole site:
// when any setpoint decreases, a first round carries every decrease (each
// increase held at its value in force) and only when every driver has
// answered does a second round carry the increases. Each call has a deadline
// of (TTL - tick) / 2, so both rounds end before a setpoint of the previous
// refresh expires. A batch that failed (deadline, driver gone) makes its EVSEs
// not commandable, counted at the higher of what they had and what was sent,
// since it may have been applied; that driver is then retried with the tick's
// refresh only, off the loop thread, so a hung driver costs the loop one
// deadline when it starts hanging, not one per input or per tick.
// Sequences. Each driver keeps the last sequence it applied per controller
// id; the loop asks it (GetControllerSequence) before its first batch on a
// stream and continues from there, and asks again and retries once when a
// batch is refused as ABORTED (outdated) or INVALID_ARGUMENT (out of the
// window). So neither a restart of the load balancer nor a clock step locks
// it out.
//
// It measures its own reaction time: from a meter sample's `measured_at` to
// the moment every driver has taken the setpoints computed from it.
//
// Step(): with ControlLoopOptions::stepped the loop has no thread of its own;
// the caller drives it, one Step() at a time, on the injected clock — this is
// how its tests are deterministic.
//
// Files: control_loop.cc (inputs, the policy, publication),
// control_loop_dispatch.cc (dispatch, sequences, booking, retries),
// control_loop_calls.cc (API calls and what the loop shows); setpoint value
// arithmetic in setpoint_values.h.
//
// Thread-safety: thread-safe. All policy work happens on the loop's own
// thread; the public methods post to it or read a snapshot under a lock.
#ifndef EVGATE_SERVICES_LOAD_BALANCER_CONTROL_LOOP_H_
#define EVGATE_SERVICES_LOAD_BALANCER_CONTROL_LOOP_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "evgate/v1/load_balancer.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "runtime/clock.h"
#include "services/load_balancer/device_link.h"
#include "services/load_balancer/session_link.h"
#include "site_controller/config/site_config.h"
#include "site_controller/control/control_policy.h"

namespace evgate::load_balancer {

struct ControlLoopOptions {
  // Recomputation and refresh period; site.yaml controller.tick_ms.
  absl::Duration tick = absl::Seconds(1);
  // Validity of dispatched setpoints: without a refresh within it the driver
  // and the devices fall back to failsafe. Must exceed `tick`.
  absl::Duration setpoint_ttl = absl::Seconds(5);
  // Scopes the ApplySetpoints sequence on the drivers.
  std::string controller_id = "load_balancer";
  // Deadline of each driver call; zero: (setpoint_ttl - tick) / 2.
  absl::Duration apply_deadline = absl::ZeroDuration();
  // Reaction times kept for ReactionTimes().
  size_t reaction_history = 4096;
  // No loop thread: the caller drives the loop with Step() (tests).
  bool stepped = false;
};

ControlLoopOptions ControlLoopOptionsFromConfig(const site::ControllerConfig& controller);

// An external limit as the loop keeps it (the policy holds the effect).
struct ActiveDynamicLimit {
  v1::DynamicLimit limit;                            // with set_at, and expires_at when it expires
  absl::Time expires_at = absl::InfiniteFuture();    // wall clock
  absl::Time expires_mono = absl::InfiniteFuture();  // the same, monotonic
};

// A node (grid or circuit) in failsafe, for GetSiteStatus.
struct NodeFailsafeShown {
  std::string reason;
  absl::Time since;  // wall clock
};

// What the loop knows now, for GetSiteStatus. Times are wall-clock times
// unless marked monotonic.
struct LoopSnapshot {
  absl::Time at;
  std::optional<v1::Allocation> allocation;  // none before the first decision
  bool failsafe = true;
  std::string failsafe_reason;
  std::optional<absl::Time> failsafe_since;
  std::map<std::string, NodeFailsafeShown> failsafe_nodes;  // by node, the grid included
  std::optional<absl::Time> grid_sample_at;                 // monotonic (Clock::MonotonicNow)
  std::map<std::string, v1::MeterReading> meters;           // by node: "grid" or circuit id
  struct Evse {
    v1::ConnectorStatus connector_status = v1::CONNECTOR_STATUS_UNSPECIFIED;
    bool active = false;
    v1::PhaseValues measured_a;  // site phases
    std::optional<double> measured_power_w;
    std::optional<int> priority_override;
    absl::Time priority_expires_at = absl::InfiniteFuture();    // wall clock
    absl::Time priority_expires_mono = absl::InfiniteFuture();  // the same, monotonic
    std::optional<absl::Time> paused_since;
    bool seen = false;            // some driver reported it
    std::string not_commandable;  // why the loop cannot command it (empty: it can)
  };
  std::map<std::string, Evse> evses;
  std::vector<ActiveDynamicLimit> dynamic_limits;
  // Since the loop started (GetSiteStatus.counters).
  v1::ControlCounters counters;
};

class ControlLoop {
 public:
  // `sessions`: nullptr = no authorization gating.
  static absl::StatusOr<std::unique_ptr<ControlLoop>> Create(
      const site::SiteConfig& config, std::vector<std::unique_ptr<DeviceLink>> links,
      std::unique_ptr<SessionLink> sessions, const Clock& clock, ControlLoopOptions options);
  ~ControlLoop();

  // Starts the links and (unless options.stepped) the loop thread.
  void Start();
  // One round of the loop on the calling thread: every input posted so far,
  // the tick when due on the clock, dispatch, publication. Only with
  // options.stepped (the loop thread does it otherwise).
  void Step();
  // Stops the loop and the links. Dispatched setpoints stay until their TTL
  // ends; then the drivers apply each EVSE's failsafe.
  void Stop();

  // Sets (or, with expires_at <= now, clears) external limits atomically and
  // returns all limits in force. INVALID_ARGUMENT names the bad update.
  absl::StatusOr<std::vector<ActiveDynamicLimit>> SetDynamicLimits(
      const std::vector<std::pair<v1::DynamicLimit, absl::Time>>& limits);
  // Overrides an EVSE's priority until `expires_at`. NOT_FOUND for an unknown EVSE.
  absl::Status SetEvsePriority(const std::string& evse_id, int priority, absl::Time expires_at);
  // The grid controller's directive (V2X grid modes); applied on the loop thread, in order.
  void SetGridMode(control::GridModeDirective directive);

  LoopSnapshot Snapshot() const;

  // Blocks until an allocation newer than `after` exists (or `timeout`
  // passes / the loop stops); returns it with its sequence, or nullopt.
  std::optional<v1::Allocation> WaitForAllocation(uint64_t after, absl::Duration timeout) const;

  // True once Stop() was called.
  bool stopped() const;

  // Meter sample → setpoints taken by the driver, oldest first.
  std::vector<absl::Duration> ReactionTimes() const;

 private:
  // A moment on both timelines.
  struct Stamp {
    absl::Time wall;
    absl::Time mono;
  };
  // One input for the loop thread.
  struct Input {
    enum class Kind { kEvent, kLinkDown, kSession, kCall } kind = Kind::kEvent;
    size_t link = 0;
    v1::WatchDevicesResponse event;
    v1::WatchSessionsResponse session;
    std::function<void()> call;  // kCall: runs on the loop thread
    v1::AllocationTrigger call_trigger = v1::ALLOCATION_TRIGGER_UNSPECIFIED;
    Stamp received;
  };
  // What the loop knows of commanding an EVSE.
  struct EvseCommand {
    std::optional<v1::SetpointValue> in_force;  // last value a driver accepted
    // What was asked for when `in_force` was accepted: a driver may put in
    // force a value of its own resolution (20.5 A for 20.7), and the value
    // asked for again is then no change.
    std::optional<v1::SetpointValue> asked;
    std::optional<control::AcceptedSetpoint> accepted;  // the same for the policy
    std::optional<v1::SetpointValue> refused;  // last value refused (not re-sent at each event)
    std::string failed;  // why its last setpoint was refused or failed (empty: it was taken)
    std::string pushed;  // the not-commandable reason the policy has
    std::string shown;   // what GetSiteStatus says (also why a commandable one is not commanded)
  };
  // A driver's part of one dispatch round.
  struct Job {
    size_t link = 0;
    v1::ApplySetpointsRequest request;
    absl::StatusOr<v1::ApplySetpointsResponse> response = absl::UnknownError("not sent");
  };
  // Where a device's data goes.
  struct DeviceRoute {
    std::optional<std::string> meter_node;  // "grid" or a circuit id
    std::vector<std::string> evses;
  };
  struct EvseRoute {
    const site::EvseConfig* config = nullptr;
    std::optional<size_t> link;  // the driver that reported it
    std::string device;
    std::vector<site::Phase> phases;  // site phases it loads (a DC EVSE: its circuit's)
    bool ocpp = false;                // on an OCPP charger
  };

  // One measurement of an EVSE, as of `at` (the driver's measured_at).
  struct Measured {
    absl::Time at;
    std::optional<std::vector<double>> a;  // AC, in EVSE phase order
    std::optional<double> w;               // DC
  };
  // What the loop knows of an EVSE from its driver.
  struct EvseLive {
    bool connected = false;  // a vehicle is plugged in
    // What the policy uses: the measurement as of the last grid meter
    // sample (see HandleMeter), so that meter minus EVSEs is the base load.
    std::optional<std::vector<double>> measured_a;
    std::optional<double> measured_w;
    std::deque<Measured> history;  // recent measurements, oldest first
  };

  ControlLoop(const site::SiteConfig& config, std::vector<std::unique_ptr<DeviceLink>> links,
              std::unique_ptr<SessionLink> sessions, const Clock& clock, ControlLoopOptions options,
              control::ControlPolicy policy);

  Stamp Now() const { return {clock_.Now(), clock_.MonotonicNow()}; }
  // A monotonic time as wall time, for display.
  absl::Time ToWall(absl::Time mono) const;
  // A wall-clock deadline (of an API call) on the monotonic timeline.
  static absl::Time MonoOf(absl::Time wall, Stamp now);
  // A driver's wall-clock measurement time on the monotonic timeline.
  static absl::Time ToMono(const google::protobuf::Timestamp& measured_at, Stamp received);
  void Post(Input input);
  void Run();
  // Applies one input to the policy; returns the trigger it counts as, or
  // nullopt when it changed nothing the policy sees.
  std::optional<v1::AllocationTrigger> Handle(const Input& input);
  void HandleDevice(size_t link, const v1::DeviceState& device, Stamp now);
  void HandleEvse(size_t link, const std::string& device, const v1::EvseState& evse, Stamp now);
  void HandleEvseMeasurements(const std::string& evse_id, const v1::EvseMeasurements& m, Stamp now);
  // False when the reading is one already acted on (the same measured_at).
  bool HandleMeter(const std::string& device, const v1::MeterReading& reading, Stamp now);
  void HandleLinkDown(size_t link, Stamp now);
  void SetStale(const std::string& device, bool stale, Stamp now);
  // Marks the EVSEs `link` reported for PushCommandability.
  void RecheckLink(size_t link);
  void ForgetMeasurements(const std::string& device, Stamp now);
  void HandleSession(const v1::WatchSessionsResponse& event, Stamp now);
  // A vehicle is connected and (with a session service) authorized.
  bool IsActive(const std::string& evse_id, const EvseLive& live) const;
  // Why the loop cannot command the EVSE now (empty: it can).
  // An OCPP charger reported but not online since this loop started, never
  // commanded: building load, not held at its maximum (kOcppNeverOnline).
  bool OcppNeverOnline(const std::string& evse_id) const;
  std::string NotCommandable(const std::string& evse_id) const;
  // The policy's view of the EVSE from evse_live_, the gate and commands_.
  control::EvseUpdate UpdateOf(const std::string& evse_id, const EvseLive& live, absl::Time now);
  // Gives the policy the EVSE's state.
  void PushEvse(const std::string& evse_id, absl::Time now, std::optional<double> soc_pct = {},
                std::optional<double> session_energy_wh = {});
  // Pushes, in one recomputation, every EVSE whose commandability changed
  // (of those marked in recheck_).
  // Returns true if there was one.
  bool PushCommandability(absl::Time now);
  // Runs one decision of the policy and keeps it (timing it for
  // Allocation.compute_time).
  void Apply(absl::FunctionRef<absl::StatusOr<control::Decision>()> decide);
  // Sends each driver its batch when something changed or a refresh is due,
  // decreases first (see the header comment). Returns true if a changed
  // setpoint was taken by a driver.
  // `refresh`: send every driver its batch even if nothing changed (the tick).
  bool Dispatch(bool refresh);
  // Sets what every batch of this loop carries (controller id, TTL).
  void Prepare(v1::ApplySetpointsRequest& request) const;
  // Sends a failing driver its batch off the loop thread; the result is
  // booked on the loop thread when it comes (options.stepped: at once).
  void Retry(size_t link, v1::ApplySetpointsRequest request);
  // Runs the jobs' calls, one thread per driver, and waits for them all.
  void RunJobs(std::vector<Job>& jobs);
  // One driver's batch, with its sequence (asking the driver where it stands
  // when unknown, and once more when refused as outdated).
  absl::StatusOr<v1::ApplySetpointsResponse> Send(size_t link, v1::ApplySetpointsRequest& request);
  // Books a job's answers; returns true if a changed setpoint was taken.
  bool Book(const Job& job, absl::Time now);
  void Publish(v1::AllocationTrigger trigger, std::optional<absl::Time> sample_at,
               absl::Time dispatched_at);

  const site::SiteConfig config_;  // a copy: routes point into it
  const std::vector<std::unique_ptr<DeviceLink>> links_;
  const std::unique_ptr<SessionLink> sessions_;
  const Clock& clock_;
  const ControlLoopOptions options_;
  std::map<std::string, DeviceRoute> devices_;  // by device id; built once
  std::map<std::string, EvseRoute> evse_routes_;

  // Loop thread only.
  control::ControlPolicy policy_;
  std::optional<control::Decision> decision_;
  absl::Duration decision_compute_;  // how long the policy took for decision_
  std::map<std::string, EvseCommand> commands_;
  // Per link: its initial snapshots are all in, so its batches are complete.
  std::vector<bool> link_ready_;
  // Per link: its last call failed (it is retried at the tick only, by
  // Retry), and a retry is in flight.
  std::vector<bool> link_failing_;
  std::vector<bool> retrying_;
  std::vector<std::thread> retries_;  // per link, the last retry's thread
  std::set<std::string> stale_devices_;
  // EVSEs whose commandability may have changed since PushCommandability.
  std::set<std::string> recheck_;
  absl::Time next_tick_ = absl::InfinitePast();  // monotonic
  std::map<std::string, EvseLive> evse_live_;
  std::set<std::string> authorized_;                // EVSEs with an energy-authorized session
  std::optional<std::set<std::string>> resyncing_;  // rebuilt from a new stream's snapshot
  std::optional<absl::Time> pending_sample_at_;     // oldest meter sample not yet acted on
  // Per node, the driver's time of the last meter reading acted on: a reading
  // sent again with the same time (a slow-register poll) is no new sample.
  std::map<std::string, absl::Time> last_measured_at_;
  std::optional<v1::Allocation> published_;  // the last allocation streamed
  LoopSnapshot working_;                     // copied to snapshot_ after each round

  // Per link: the next sequence, 0 while unknown (ask the driver); used by
  // the dispatch and retry threads.
  absl::Mutex sequence_mu_;
  std::vector<uint64_t> next_sequence_ ABSL_GUARDED_BY(sequence_mu_);

  mutable absl::Mutex mu_;
  std::deque<Input> inputs_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  LoopSnapshot snapshot_ ABSL_GUARDED_BY(mu_);
  uint64_t allocation_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<absl::Duration> reactions_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace evgate::load_balancer

#endif  // EVGATE_SERVICES_LOAD_BALANCER_CONTROL_LOOP_H_
