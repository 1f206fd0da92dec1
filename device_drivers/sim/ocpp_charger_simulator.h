// A simulated OCPP 1.6J DC charger (the DS60's two connectors, the ICE-22's
// one), the charge point side of the protocol without the websocket: the
// connection (ocpp_charge_point_client.h) feeds it the Central System's
// CALLs and sends the CALLs it asks for, one at a time.
//
// What it does, as the manuals' chargers do over OCPP:
//   - Boot: BootNotification when connected and whenever the Central System
//     triggers one; Pending/Rejected retried after the interval given; once
//     Accepted, StatusNotification for connector 0..n and Heartbeat every
//     HeartbeatInterval.
//   - Configuration: GetConfiguration / ChangeConfiguration of its keys
//     (HeartbeatInterval, MeterValueSampleInterval, MeterValuesSampledData,
//     ChargingScheduleAllowedChargingRateUnit, ...); unknown keys are
//     reported as such, read-only keys Rejected.
//   - Smart charging: Set/ClearChargingProfile (ChargePointMaxProfile on
//     connector 0, TxDefaultProfile on 0 or a connector, TxProfile for the
//     running transaction), each connector's limit the composite of its
//     profiles now (stack levels, validFrom/validTo, Absolute, Relative and
//     Recurring schedules, in W or A), answered truthfully by
//     GetCompositeSchedule. Without any profile a connector may deliver its
//     maximum. The station's maximum is shared in proportion to demand.
//   - Transactions: a vehicle plugged in with a card -> Preparing ->
//     Authorize -> StartTransaction -> Charging (SuspendedEVSE at a limit
//     below the minimum power, SuspendedEV once full); MeterValues every
//     MeterValueSampleInterval; unplugged -> StopTransaction (EVDisconnected)
//     -> Available. RemoteStart/RemoteStopTransaction, UnlockConnector and
//     Reset end or start transactions as the spec says. A StopTransaction
//     whose StartTransaction is not answered yet waits for its
//     transactionId; transaction messages survive a lost connection and are
//     sent again, in order, after the next accepted boot.
//   - The power slews to the limit (0 to maximum in `ramp_time`); the AC side
//     draws power / efficiency, spread over its phases at the nominal
//     voltage.
//   - V2X discharge (bidirectional connectors): a negative composite limit
//     makes the vehicle discharge at up to its magnitude (and the connector's
//     max_discharge_power_w); the SOC falls, the AC side feeds power x
//     efficiency back (negative currents), Power.Active.Export and
//     Energy.Active.Export.Register report it, and at its SOC lower limit
//     the charger stops discharging (SuspendedEVSE). OCPP 1.6 has no
//     discharge message; a negative limit in W is the convention evgate uses
//     (docs/v2x.md). A connector that is not bidirectional treats a negative
//     limit as 0.
//   - Faults: an injected vendor code (e.g. a DS60 status code "012252")
//     makes its connector Faulted with errorCode OtherError and that
//     vendorErrorCode; charging stops until it clears.
//
// Not simulated: reservations, local authorization lists, firmware updates.
//
// Thread-safe: the connection's thread and the site physics call it.
#ifndef EVGATE_DEVICE_DRIVERS_SIM_OCPP_CHARGER_SIMULATOR_H_
#define EVGATE_DEVICE_DRIVERS_SIM_OCPP_CHARGER_SIMULATOR_H_

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "services/ocpp_bridge/rpc_frame.h"

namespace evgate::sim {

struct OcppChargerSimConnector {
  int connector = 1;
  double max_power_w = 0;    // DC, at the vehicle
  double min_power_w = 0;    // below it the connector suspends (SuspendedEVSE)
  double efficiency = 0.95;  // AC input = DC / efficiency
  int phases = 3;            // AC phases it draws on (its L1..L3)
  // V2X (ICE-22): a negative limit discharges the vehicle at up to its magnitude, at most
  // max_discharge_power_w, and the charger stops by itself at its "V2X SOC Lower Limit".
  bool bidirectional = false;
  double max_discharge_power_w = 0;
  double soc_min_pct = 30;
};

struct OcppChargerSimConfig {
  std::string charge_point_id;
  std::string vendor = "evgate-sim";
  std::string model;
  std::string serial;
  double station_max_power_w = 0;
  double voltage_v = 230;  // nominal phase voltage of the AC side
  std::vector<OcppChargerSimConnector> connectors;
  // How long the power takes from 0 to the connector's maximum (and back).
  absl::Duration ramp_time = absl::Seconds(2);
  // How long a refused or unanswered Authorize waits before it is asked again.
  absl::Duration authorize_retry = absl::Seconds(5);
};

struct OcppSimVehicle {
  double max_power_w = 0;  // 0 = the connector's maximum
  double energy_to_full_wh = 40000;
  double soc_at_plug_in_pct = 20;
  std::string id_tag;  // the card the driver presents; empty = none
};

// One CALL the charger wants sent. `seq` identifies it in OnResult.
struct OcppSimCall {
  uint64_t seq = 0;
  std::string action;
  nlohmann::json payload;
};

// How a CALL of ours ended, as ocpp::CallOutcome (without the endpoint).
struct OcppSimResult {
  std::optional<nlohmann::json> result;  // CALLRESULT payload
  bool call_error = false;               // the Central System answered a CALLERROR
  // Neither: no answer (timeout, connection lost); a transaction message is
  // sent again.
};

// What a connector shows now.
struct OcppSimConnectorView {
  int connector = 0;
  std::string status;  // OCPP ChargePointStatus
  std::string error_code = "NoError";
  std::string vendor_error_code;
  double limit_w = 0;  // composite limit now (its maximum without profiles; < 0: discharge)
  double power_w = 0;  // DC power delivered now (< 0: discharging)
  double energy_register_wh = 0;
  double export_register_wh = 0;
  std::optional<int64_t> transaction_id;
  bool transaction_pending = false;  // started, not yet answered
  std::optional<OcppSimVehicle> vehicle;
  double session_energy_wh = 0;
  double soc_pct = 0;
  bool full = false;
};

class OcppChargerSimulator {
 public:
  explicit OcppChargerSimulator(OcppChargerSimConfig config);

  const OcppChargerSimConfig& config() const { return config_; }

  // The connection is open (a BootNotification is due) / closed.
  void Connected(absl::Time now);
  void Disconnected();
  bool connected() const;
  bool accepted() const;
  // Whether the charger wants to be online: false makes the connection drop
  // and stay down (a charger that lost its network), true reconnects.
  void SetOnline(bool online);
  bool online() const;

  // Answers a CALL of the Central System (already valid against its schema).
  std::variant<nlohmann::json, ocpp::CallError> Handle(const ocpp::Call& call, absl::Time now);

  // The next CALL to send at `now`, if any; at most one is out at a time
  // (the next comes after OnResult of this one).
  std::optional<OcppSimCall> TakeNext(absl::Time now);
  void OnResult(uint64_t seq, const OcppSimResult& result, absl::Time now);

  // Physics: power follows the limits, energy integrates, meter values and
  // status changes are queued.
  void Step(absl::Time now);

  absl::Status PlugIn(int connector, OcppSimVehicle vehicle, absl::Time now);
  absl::Status Unplug(int connector, absl::Time now);
  // A vendor error code (e.g. a DS60 status code) on a connector (0: the
  // whole charger), or cleared.
  absl::Status SetFault(int connector, const std::string& vendor_code, bool active, absl::Time now);

  std::optional<OcppSimConnectorView> Describe(int connector, absl::Time now) const;
  // AC current per own phase L1..L3 of a connector, A.
  std::array<double, 3> AcCurrent(int connector) const;
  // Off grid: what the island's loads take, W (a grid-forming discharge supplies no more, even
  // when its limit allows more); nullopt: on the grid.
  void SetIslandLoad(int connector, std::optional<double> load_w);

 private:
  struct Profile {
    int id = 0;
    int connector = 0;
    int stack_level = 0;
    std::string purpose;  // ChargePointMaxProfile, TxDefaultProfile, TxProfile
    std::string kind;     // Absolute, Relative, Recurring
    std::string recurrency;
    std::optional<int64_t> transaction_id;
    std::optional<absl::Time> valid_from;
    std::optional<absl::Time> valid_to;
    std::optional<absl::Time> start_schedule;
    std::optional<int> duration_s;
    absl::Time received;    // an Absolute schedule without startSchedule starts here
    std::string rate_unit;  // W or A
    std::vector<std::pair<int, double>> periods;  // startPeriod, limit (W or A)
    std::vector<int> number_phases;               // per period, 3 when absent
  };
  struct Connector {
    OcppChargerSimConnector config;
    std::optional<OcppSimVehicle> vehicle;
    double delivered_wh = 0;  // this session
    bool full = false;
    double register_wh = 0;
    double export_register_wh = 0;
    std::optional<double> island_load_w;
    double power_w = 0;
    double target_w = 0;
    // Transaction: started (the StartTransaction queued), its id once answered.
    bool in_transaction = false;
    uint64_t local_transaction = 0;  // ours, until the Central System numbers it
    std::optional<int64_t> transaction_id;
    std::string id_tag;
    absl::Time transaction_start;
    bool authorizing = false;
    absl::Time authorize_after = absl::InfinitePast();
    bool unavailable = false;
    std::string fault;  // vendor code; empty = none
    std::string reported_status;
    absl::Time next_meter_values = absl::InfinitePast();
  };
  struct Pending {
    uint64_t seq = 0;
    std::string action;
    nlohmann::json payload;
    int connector = 0;
    // Start/Stop/transaction MeterValues: kept across reconnects.
    bool transactional = false;
    // A StopTransaction or MeterValues waiting for its transactionId.
    bool needs_transaction_id = false;
    uint64_t local_transaction = 0;
    absl::Time not_before = absl::InfinitePast();
  };

  Connector* Find(int connector) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Connector* Find(int connector) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Queue(std::string action, nlohmann::json payload, int connector, bool transactional,
             bool needs_transaction_id = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string StatusOf(const Connector& c, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueStatus(int connector, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueStatusChanges(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueMeterValues(Connector& c, absl::Time now, const char* context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartTransaction(Connector& c, const std::string& id_tag, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopTransaction(Connector& c, const std::string& reason, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void QueueBoot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double SocLocked(const Connector& c) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What a bidirectional connector discharges at a negative limit, W (<= 0; 0 at its SOC
  // lower limit, below its minimum power, or when it is not bidirectional).
  double DischargeW(const Connector& c, double limit_w) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::array<double, 3> AcCurrentLocked(const Connector& c) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The limit of one profile at `t`, W; nullopt when it does not apply then.
  std::optional<double> ProfileLimitW(const Profile& p, const Connector* c, absl::Time t) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Composite of a connector's profiles at `t`, W (its maximum without any).
  double LimitW(const Connector& c, absl::Time t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The station-wide ChargePointMaxProfile at `t`, W.
  std::optional<double> StationLimitW(absl::Time t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  nlohmann::json OnGetConfiguration(const nlohmann::json& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json OnChangeConfiguration(const nlohmann::json& req, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json OnTriggerMessage(const nlohmann::json& req, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json OnSetChargingProfile(const nlohmann::json& req, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json OnClearChargingProfile(const nlohmann::json& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json OnGetCompositeSchedule(const nlohmann::json& req, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json OnRemoteStart(const nlohmann::json& req, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nlohmann::json OnRemoteStop(const nlohmann::json& req, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const OcppChargerSimConfig config_;

  mutable absl::Mutex mu_;
  std::vector<Connector> connectors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> keys_ ABSL_GUARDED_BY(mu_);
  std::vector<Profile> profiles_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool online_ ABSL_GUARDED_BY(mu_) = true;
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  bool boot_queued_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time boot_retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time next_heartbeat_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::string reported_status0_ ABSL_GUARDED_BY(mu_);
  std::string fault0_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  std::optional<Pending> in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t next_local_transaction_ ABSL_GUARDED_BY(mu_) = 1;
  // transactionId of each local transaction, once StartTransaction is answered.
  std::map<uint64_t, int64_t> transaction_ids_ ABSL_GUARDED_BY(mu_);
  absl::Time last_step_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace evgate::sim

#endif  // EVGATE_DEVICE_DRIVERS_SIM_OCPP_CHARGER_SIMULATOR_H_
