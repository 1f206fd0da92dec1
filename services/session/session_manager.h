// The session lifecycle, per EVSE (connector), driven by device events, the
// API and time.
//
// Inputs:
//   - device events (DeviceEventHandler): RFID taps, EVSE state changes,
//     telemetry, faults, link health, from DeviceDriver.WatchDevices;
//   - the API: Authorize, StartSession, StopSession, WatchSessions;
//   - Tick(): timeouts and limits (the service calls it every second).
//
// Lifecycle (SessionState; the connector status, OCPP-aligned, is kept
// alongside):
//   start   RFID tap (reader of the EVSE, or of its station: the EVSE of
//           the card's open session, else one with a vehicle waiting, else
//           the first free one), StartSession, plug-in at a free-vend EVSE
//           (START_MODE_FREE_VEND_PLUG_IN), or energy seen flowing with no
//           session (START_MODE_DEVICE_LOCAL: recorded, not authorized).
//           Without a vehicle the session is PENDING_PLUG_IN and becomes
//           ACTIVE at plug-in (start time and meter start are taken then);
//           no plug-in within `connection_timeout` → CANCELLED
//           (AUTHORIZATION_TIMEOUT). A card or remote start at an EVSE with
//           a DEVICE_LOCAL session closes that one and opens its own.
//   stop    a tap of the same card, a master card or a card with the same
//           parent id tag (LOCAL); StopSession (REMOTE or the given reason);
//           the energy or time limit of the session; the vehicle unplugged
//           (EV_DISCONNECTED); the EVSE ending it itself (connector status
//           Finishing: the reason the device gave, else OTHER); a fault that
//           blocks charging (FAULT, EMERGENCY_STOP, ... with the vendor
//           code). A stop requested while energy flows makes the session
//           FINISHING (no longer energy_authorized, so the load balancer
//           pauses the EVSE) until the EVSE stops or `finishing_timeout`
//           passes; it then closes with the final meter.
//   energy  import/export registers of the EVSE (energy = register − meter
//           at start; discharge counted separately), else the device's own
//           session energy; never decreasing within a session. Peak power
//           is the largest |power| seen.
//
// Durability: every change is written to the SessionStore (one transaction
// per batch of device events or per API call) before it is published to
// WatchSessions or answered; if the write fails, the change is undone in
// memory and the API call fails with the database error.
//
// Restart: open sessions are loaded from the store. Once the device source
// reports the EVSE's state, an ACTIVE or FINISHING session whose vehicle is
// still connected is resumed (same id, energy continues from the
// registers); one whose vehicle is gone, or whose EVSE does not report
// within `resume_timeout`, is closed INTERRUPTED with
// CONTROLLER_RESTART and the last meter value recorded before the restart.
// PENDING_PLUG_IN sessions keep their plug-in deadline.
//
// Thread-safe. Device events must come from one thread at a time (as a
// DeviceEventSource delivers them).
#ifndef EVGATE_SERVICES_SESSION_SESSION_MANAGER_H_
#define EVGATE_SERVICES_SESSION_SESSION_MANAGER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "evgate/v1/device.pb.h"
#include "evgate/v1/session.pb.h"
#include "runtime/clock.h"
#include "services/session/authorizer.h"
#include "services/session/device_events.h"
#include "services/session/session_store.h"
#include "services/session/session_watch.h"
#include "site_controller/config/site_config.h"

namespace evgate::session {

struct SessionManagerOptions {
  // Authorized but not plugged in within this time → CANCELLED.
  absl::Duration connection_timeout = absl::Seconds(120);
  // After a restart, open sessions whose EVSE has not reported its state
  // within this time are closed.
  absl::Duration resume_timeout = absl::Seconds(120);
  // A FINISHING session is closed at the latest this long after the stop.
  absl::Duration finishing_timeout = absl::Seconds(60);
  // Events a WatchSessions stream may have waiting before it is ended with
  // RESOURCE_EXHAUSTED.
  size_t max_queued_watch_events = 10000;
  // Seed of the random part of session ids.
  uint64_t random_seed = 0;
};

class SessionManager final : public DeviceEventHandler {
 public:
  // One input of a batch of device events.
  struct DeviceInput {
    enum class Kind { kStreamStarted, kEvent, kStreamLost };
    Kind kind = Kind::kEvent;
    v1::WatchDevicesResponse event;
    absl::Status status;  // kStreamLost
  };

  // Loads the open sessions from `store`. `config`, `store`, `authorizer`
  // and `clock` must outlive the manager.
  static absl::StatusOr<std::unique_ptr<SessionManager>> Create(const site::SiteConfig& config,
                                                                SessionStore* store,
                                                                Authorizer* authorizer,
                                                                const Clock& clock,
                                                                SessionManagerOptions options);

  // --- device events: each call is one batch (one database transaction) ----
  void OnStreamStarted() override;
  void OnDeviceEvent(const v1::WatchDevicesResponse& event) override;
  void OnStreamLost(const absl::Status& status) override;
  void HandleDeviceInputs(const std::vector<DeviceInput>& inputs);

  // Timeouts, limits, FINISHING and restart deadlines at the clock's now.
  void Tick();

  // --- API (errors carry the canonical code and an actionable message) ---
  absl::StatusOr<v1::AuthorizeResponse> Authorize(const v1::AuthorizeRequest& request);
  absl::StatusOr<v1::Session> StartSession(const v1::StartSessionRequest& request);
  absl::StatusOr<v1::Session> StopSession(const v1::StopSessionRequest& request);

  // A new WatchSessions stream: the snapshot of the open sessions (of
  // `evse_ids`, empty = all) and SNAPSHOT_COMPLETE are queued at once,
  // changes follow. NOT_FOUND for an unknown EVSE.
  absl::StatusOr<std::shared_ptr<SessionWatch>> Watch(const std::vector<std::string>& evse_ids);
  void EndWatch(const std::shared_ptr<SessionWatch>& watch);
  // Ends every stream with `status` (shutdown).
  void EndAllWatches(const absl::Status& status);

  // The open session of each EVSE (tests, logs).
  std::vector<v1::Session> OpenSessions() const;

 private:
  struct OpenSession {
    // User-provided so that std::optional sees it as default-constructible
    // inside the (then incomplete) SessionManager.
    OpenSession() {}
    SessionRecord record;
    std::string parent_id_tag;  // of the card, for CONCURRENT_TX and stops
    bool needs_resume = false;  // loaded at start, EVSE state not yet seen
    bool link_lost = false;     // the device went stale during the session
    absl::Time finishing_since = absl::InfinitePast();
    v1::Session& s() { return record.session; }
  };

  // What evgate knows about one EVSE: configuration, the live view from
  // the devices, and its open session.
  struct Evse {
    std::string evse_id;
    std::string station_id;
    std::string device_id;
    uint32_t connector_id = 1;
    bool bidirectional = false;
    bool free_vend = false;

    // Live view; `state_known` is false until a snapshot or state change of
    // the current stream arrived.
    bool state_known = false;
    bool stale = false;
    v1::ConnectorStatus status = v1::CONNECTOR_STATUS_UNSPECIFIED;
    v1::Iec61851State iec = v1::IEC61851_STATE_UNSPECIFIED;
    std::optional<bool> connected;  // last known, kept across streams
    bool plug_in_edge = false;      // connected went false -> true
    bool charging_edge = false;     // status became CHARGING
    v1::EvseMeasurements measurements;
    // Active faults that block charging, of this EVSE and of its device.
    std::vector<v1::Fault> evse_faults;
    std::vector<v1::Fault> device_faults;
    const v1::Fault* BlockingFault() const {
      if (!evse_faults.empty()) return &evse_faults.front();
      return device_faults.empty() ? nullptr : &device_faults.front();
    }

    std::optional<OpenSession> open;
  };

  // Changes made in memory and not yet committed.
  struct Pending {
    std::map<std::string, SessionRecord> saves;  // by session id
    std::vector<std::pair<v1::SessionEventType, v1::Session>> events;
    std::map<std::string, std::optional<OpenSession>> rollback;  // by EVSE id
  };

  SessionManager(const site::SiteConfig& config, SessionStore* store, Authorizer* authorizer,
                 const Clock& clock, SessionManagerOptions options);

  // Writes `pending` and publishes its events; on failure restores the
  // touched EVSEs and returns the error.
  absl::Status Flush(Pending& pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Touch(Evse& evse, Pending& pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Record(Evse& evse, v1::SessionEventType type, Pending& pending)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void ApplyEvent(const v1::WatchDevicesResponse& event, Pending& pending)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyEvseState(Evse& evse, const v1::EvseState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyMeasurements(Evse& evse, const v1::EvseMeasurements& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyFault(Evse& evse, const v1::Fault& fault, bool raised, bool device_wide,
                  Pending& pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleTap(const v1::WatchDevicesResponse& event) ABSL_LOCKS_EXCLUDED(mu_);

  // Brings the EVSE's session in line with its live view and the time.
  void Reconcile(Evse& evse, Pending& pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Updates energy, power, SOC; true if anything changed.
  bool UpdateMeter(Evse& evse) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Opens an authorized session (closing a DEVICE_LOCAL one first).
  void OpenSessionAt(Evse& evse, const std::string& id_tag, const v1::AuthorizeResponse& auth,
                     v1::StartMode start_mode, v1::ChargeMode mode,
                     std::optional<double> energy_limit_wh,
                     std::optional<google::protobuf::Duration> time_limit, Pending& pending)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Activate(Evse& evse, Pending& pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops as described in the header: cancel, FINISHING or close.
  void RequestStop(Evse& evse, v1::StopReason reason, const std::string& vendor_code,
                   const std::string& vendor_description, Pending& pending)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Close(Evse& evse, v1::SessionState state, v1::StopReason reason,
             const std::string& vendor_code, const std::string& vendor_description,
             Pending& pending) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The EVSE of a tap at a station-wide reader.
  Evse* PickEvseForTap(const std::string& device_id, const std::string& id_tag)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The open session of `id_tag` or of another card with the same parent,
  // elsewhere than `except_evse`; nullptr if none.
  const OpenSession* ConcurrentSession(const std::string& id_tag, const std::string& parent,
                                       const std::string& except_evse) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewSessionId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Evse* FindEvse(const std::string& evse_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const site::SiteConfig& config_;
  SessionStore* const store_;
  Authorizer* const authorizer_;
  const Clock& clock_;
  const SessionManagerOptions options_;
  const absl::Time started_at_;

  mutable absl::Mutex mu_;
  std::map<std::string, Evse> evses_ ABSL_GUARDED_BY(mu_);
  // Device id -> its EVSE ids, in site.yaml order.
  std::map<std::string, std::vector<std::string>> device_evses_ ABSL_GUARDED_BY(mu_);
  std::set<std::shared_ptr<SessionWatch>> watches_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
  int64_t last_id_ms_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_id_random_hi_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_id_random_lo_ ABSL_GUARDED_BY(mu_) = 0;
};

// Whether a vehicle is connected, from the control pilot state when the EVSE
// reports it, else from the connector status; nullopt when neither says.
std::optional<bool> VehicleConnected(v1::Iec61851State iec, v1::ConnectorStatus status);

}  // namespace evgate::session

#endif  // EVGATE_SERVICES_SESSION_SESSION_MANAGER_H_
