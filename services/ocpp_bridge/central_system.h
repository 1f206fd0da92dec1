// evgate's local OCPP 1.6J Central System: what it knows of each charge point
// that site.yaml configures, and its answers to their CALLs. The websocket
// server (ws_server.h) tells it about connections; the OcppBridge service
// reads it (ListChargePoints) and sends commands through it.
//
// Boot, the way OCPP 1.6 section 4.2 allows a Central System to configure a
// charger before it starts charging:
//   1. The first BootNotification of a charger in this process is answered
//      Pending (interval `pending_interval`), and evgate reads its
//      configuration (SupportedFeatureProfiles, ChargeProfileMaxStackLevel,
//      ChargingScheduleAllowedChargingRateUnit, MeterValuesSampledData,
//      MeterValueSampleInterval) and sets MeterValueSampleInterval and
//      MeterValuesSampledData. A key the charger lacks, rejects or has
//      read-only is noted in ChargerConfiguration::problems, never a reason to
//      refuse the charger.
//   2. Then evgate asks for a new BootNotification (TriggerMessage), and
//      answers it - and every later one - Accepted with `heartbeat_interval`.
//      A charger that does not take TriggerMessage is accepted at its next
//      retry, `pending_interval` later.
//   3. After every Accepted boot, and at every reconnect of a charger already
//      accepted (it does not boot again after a network drop), evgate asks for
//      a StatusNotification of every connector and MeterValues of each EVSE,
//      so its state is never stale (evcc #15677, #15991).
//   4. A charger that connects and sends no BootNotification within
//      `boot_wait` (it booted while the bridge was down) is asked for one.
//
// Messages of a charge point (the RPC endpoint has already validated them
// against the 1.6 schemas): Heartbeat, StatusNotification (connector 0..n),
// MeterValues (the latest reading per connector, meter_values.h), Authorize
// (through the IdTagAuthorizer), StartTransaction / StopTransaction (the
// TransactionBook: a repeated start gets the same transactionId, a repeated
// or unknown stop is answered Accepted and recorded once), DataTransfer
// (UnknownVendorId: evgate takes no vendor extension yet),
// FirmwareStatusNotification and DiagnosticsStatusNotification (recorded,
// logged). A CALL of an action that only a Central System sends (e.g.
// "Reset") is NotSupported.
//
// Thread-safe. The server calls it from its threads; CALLs to charge points
// are never made while its lock is held.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_CENTRAL_SYSTEM_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_CENTRAL_SYSTEM_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "evgate/v1/ocpp.pb.h"
#include "nlohmann/json.hpp"
#include "runtime/clock.h"
#include "services/ocpp_bridge/meter_values.h"
#include "services/ocpp_bridge/transaction_book.h"
#include "services/ocpp_bridge/ws_server.h"
#include "site_controller/config/site_config.h"

namespace evgate::ocpp {

struct CentralSystemOptions {
  // Heartbeat interval given in an Accepted BootNotification answer. The
  // websocket ping (ws_server.h idle_timeout) is what detects a dead link;
  // the heartbeat keeps the charger's clock in step.
  absl::Duration heartbeat_interval = absl::Seconds(300);
  // Retry interval given in a Pending answer.
  absl::Duration pending_interval = absl::Seconds(30);
  // A charger connected this long without a BootNotification is asked for one.
  absl::Duration boot_wait = absl::Seconds(5);
  // MeterValueSampleInterval set at boot, seconds.
  int meter_sample_interval_s = 10;
  // MeterValuesSampledData set at boot.
  std::string meter_values_sampled_data =
      "Energy.Active.Import.Register,Energy.Active.Export.Register,Power.Active.Import,"
      "Power.Active.Export,Current.Import,SoC";
  // Unknown identities remembered for ListChargePoints (the most recent).
  size_t max_unknown_identities = 50;
};

// What evgate read of a charger's configuration at boot.
struct ChargerConfiguration {
  // GetConfiguration was answered.
  bool read = false;
  std::vector<std::string> feature_profiles;
  std::optional<int> max_stack_level;
  // "Current", "Power".
  std::vector<std::string> allowed_rate_units;
  std::optional<int> sample_interval_s;
  std::string sampled_data;
  // What did not go as asked, e.g. "MeterValueSampleInterval: Rejected".
  std::vector<std::string> problems;
};

// Decides on an idTag (the real one asks the session service).
class IdTagAuthorizer {
 public:
  virtual ~IdTagAuthorizer() = default;
  // The OCPP 1.6 idTagInfo for `id_tag` used at `evse_id` ("" = anywhere):
  // {"status": "Accepted"|"Blocked"|"Expired"|"Invalid"|"ConcurrentTx",
  // "expiryDate"?, "parentIdTag"?}. An error means no decision could be made
  // (the session service is unreachable).
  virtual absl::StatusOr<nlohmann::json> Authorize(const std::string& id_tag,
                                                   const std::string& evse_id) = 0;
};

// Who wants to know when a charge point changes (the OCPP device backend).
// Called from the server's threads, never with the Central System's lock
// held, so it may read the Central System back.
class ChargePointListener {
 public:
  virtual ~ChargePointListener() = default;
  // Connection, registration or a connector's status changed.
  virtual void OnChargePointChanged(const std::string& charge_point_id) = 0;
  // New meter values for a connector.
  virtual void OnMeterValues(const std::string& charge_point_id, int connector_id) = 0;
  // The charge point is registered and may be given charging profiles: its
  // BootNotification was Accepted, or it reconnected after one.
  virtual void OnAccepted(const std::string& charge_point_id) = 0;
  // The charger started transaction `transaction_id` on `connector_id` for
  // `id_tag`, and the idTag was Accepted. Once per transaction in this
  // process; after a restart of the bridge a StartTransaction the charger
  // repeats is announced again (the session service takes it as the same
  // session).
  virtual void OnTransactionStarted(const std::string& charge_point_id, int connector_id,
                                    const std::string& id_tag, int64_t transaction_id) = 0;
  // The charger stopped transaction `transaction_id` of `connector_id`, for
  // OCPP Reason `reason` ("" = absent, Local by the spec). Once per
  // transaction: never for a repeated or an orphan StopTransaction. The
  // connector's meter reading already holds meterStop.
  virtual void OnTransactionStopped(const std::string& charge_point_id, int connector_id,
                                    int64_t transaction_id, const std::string& reason) = 0;
};

class CentralSystem final : public ConnectionObserver {
 public:
  // `clock`, `authorizer` and `book` must outlive it.
  CentralSystem(const site::SiteConfig& site, const Clock& clock, CentralSystemOptions options,
                IdTagAuthorizer* authorizer, TransactionBook* book);

  // ConnectionObserver.
  RpcEndpoint::CallHandler OnConnected(std::shared_ptr<ChargePointLink> link) override;
  void OnDisconnected(const ChargePointLink& link, absl::string_view why) override;
  void OnRefused(absl::string_view identity, absl::string_view remote, int http_status,
                 absl::string_view why) override;

  // Set before the server starts; null = none.
  void SetListener(ChargePointListener* listener) { listener_ = listener; }

  // Time-driven work (boot_wait); call about once a second.
  void Tick();

  // Configured charge points, then the unknown identities seen, each list
  // ordered by charge_point_id.
  std::vector<v1::ChargePoint> ListChargePoints() const;

  // Sends a CALL to a connected charge point. NOT_FOUND when site.yaml does
  // not configure it, UNAVAILABLE when it is not connected; otherwise OK and
  // `done` runs exactly once (RpcEndpoint::Done).
  absl::Status Call(const std::string& charge_point_id, std::string action, nlohmann::json payload,
                    RpcEndpoint::Done done);

  // One configured charge point; nullopt when site.yaml has no such one.
  std::optional<v1::ChargePoint> GetChargePoint(const std::string& charge_point_id) const;
  // Whether it may be given charging profiles now: connected and Accepted.
  bool IsAccepted(const std::string& charge_point_id) const;

  std::optional<MeterReading> LatestMeterReading(const std::string& charge_point_id,
                                                 int connector_id) const;
  std::optional<ChargerConfiguration> Configuration(const std::string& charge_point_id) const;

 private:
  // One more message in ChargePoint.messages.
  void CountMessage(const std::string& identity, const std::string& direction,
                    const std::string& action, const std::string& result) ABSL_LOCKS_EXCLUDED(mu_);

  struct Charger {
    v1::ChargePoint info;
    // connector -> EVSE id, from site.yaml.
    std::map<int, std::string> evses;
    std::shared_ptr<ChargePointLink> link;
    absl::Time link_since_monotonic;
    bool boot_seen_on_link = false;
    bool boot_requested_on_link = false;
    // Configured in this process (boot step 1 done).
    bool configured = false;
    bool configuring = false;
    ChargerConfiguration configuration;
    std::map<int, MeterReading> readings;
    std::string firmware_status;
    std::string diagnostics_status;
  };
  using Answer = std::variant<nlohmann::json, CallError>;
  // Work to do once the lock is released (CALLs to the charger).
  using After = std::vector<std::function<void()>>;

  Answer Handle(const std::string& identity, const ChargePointLink* link, const ocpp::Call& call);
  Answer OnBootNotification(Charger& charger, const nlohmann::json& req, After& after)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer OnStatusNotification(Charger& charger, const nlohmann::json& req, After& after)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Answer OnMeterValues(Charger& charger, const nlohmann::json& req, After& after)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the listener's calls.
  void NotifyChanged(const std::string& identity, After& after);
  void NotifyAccepted(const std::string& identity, After& after);
  // Authorize / Start / Stop run without the lock (they wait for the session
  // service and the disk).
  Answer OnAuthorize(const std::string& identity, const nlohmann::json& req);
  Answer OnStartTransaction(const std::string& identity, const nlohmann::json& req);
  Answer OnStopTransaction(const std::string& identity, const nlohmann::json& req);
  // A stop recorded for the first time: meter reading, listener.
  void Stopped(const std::string& identity, const StopTransactionRecord& stop)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Boot step 1, as a chain of CALLs on `link`.
  void Configure(const std::string& identity, std::shared_ptr<ChargePointLink> link);
  void ConfigureStep(const std::string& identity, std::shared_ptr<ChargePointLink> link, int step);
  // Boot step 3.
  void RequestState(const Charger& charger, After& after) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends a CALL, counting it in pending_calls until it ends. Without the lock.
  void Send(const std::shared_ptr<ChargePointLink>& link, std::string action,
            nlohmann::json payload, RpcEndpoint::Done done) ABSL_LOCKS_EXCLUDED(mu_);
  std::string EvseOf(const std::string& identity, int connector_id) const ABSL_LOCKS_EXCLUDED(mu_);

  const Clock& clock_;
  const CentralSystemOptions options_;
  IdTagAuthorizer* const authorizer_;
  TransactionBook* const book_;
  const int security_profile_;
  ChargePointListener* listener_ = nullptr;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Charger> chargers_ ABSL_GUARDED_BY(mu_);
  // Unknown identities that tried to connect, oldest first.
  std::deque<v1::ChargePoint> unknown_ ABSL_GUARDED_BY(mu_);
  // Transactions announced to the listener and not stopped yet.
  absl::flat_hash_set<int64_t> announced_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_CENTRAL_SYSTEM_H_
