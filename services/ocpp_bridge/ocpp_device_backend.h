// The OCPP chargers as devices of evgate.v1.DeviceDriver: the load balancer
// and the session service see a DS60 or an ICE-22 exactly as they see a
// wallbox on a bus ("ocpp" is its bus id).
//
// State, from the Central System: the link is stale while the charger is not
// connected and Accepted (so the load balancer counts it at its worst case,
// never as obeying); each EVSE's connector status from StatusNotification
// (with the IEC 61851 state it implies: Available A, Preparing / Suspended* /
// Finishing B, Charging C, Faulted F); measurements from MeterValues.
//
// Setpoints become OCPP smart-charging profiles on the EVSE's connector,
// unit W (a DC charger's limit is its power):
//   - at every accepted boot or reconnect, a TxDefaultProfile at stack level
//     0 with the EVSE's failsafe power and no end ("failsafe profile");
//   - each setpoint, a TxDefaultProfile at stack level 1 whose validTo is the
//     setpoint's TTL ("live profile", the same profile id each time so that it
//     replaces the last one). If evgate stops sending, the live profile
//     expires and the charger falls back to the failsafe profile by itself.
//   TxDefaultProfile rather than TxProfile: a TxProfile needs the charger's
//   transactionId and ends with the transaction, while the load balancer
//   limits an EVSE before and between transactions too.
//   A pause is a limit of 0 W. Discharge is a negative limit in W (OCPP 1.6
//   has no discharge message; the schema allows a negative limit, and it is
//   the convention V2X chargers on 1.6 use — docs/v2x.md), accepted only for
//   a bidirectional EVSE and up to its max_discharge_power_w; others refuse it
//   as NOT_SUPPORTED. A charger whose
//   ChargingScheduleAllowedChargingRateUnit lacks "Power" is refused as
//   NOT_SUPPORTED too.
// A setpoint counts as applied only when the charger answers Accepted;
// Rejected or a CALLERROR is DEVICE_REJECTED, no answer within the wait is
// TIMEOUT, a charger not connected is DEVICE_OFFLINE.
//
// Faults: each connector's last StatusNotification read by
// connector_faults.h (the DS60's status codes, the ICE-22's alarms, the OCPP
// errorCode, a Faulted status), in the EVSE's state (connector 0: the
// device's) and as fault_raised / fault_cleared events when they change.
//
// Transactions: a StartTransaction whose idTag was Accepted becomes a
// `transaction_started` event at the connector's EVSE (the session service
// opens the session); a StopTransaction becomes a telemetry event with
// meterStop, then a fault of catalog "ocpp_stop_reason" raised and cleared at
// once, its vendor_code the OCPP Reason, which the session service takes as
// the stop reason of the EVSE's open session.
//
// Verify, don't trust (setpoint_check.h): every meter sample is compared
// with the limit in force, and after an accepted live profile (at most every
// `readback_interval`) the charger's GetCompositeSchedule is read back. A
// charger that disobeys gets a SETPOINT_NOT_FOLLOWED fault (catalog
// "evgate", not blocking: it can charge, it cannot be trusted to limit) and
// its setpoints are answered DEVICE_REJECTED while it lasts, although still
// sent, so the load balancer counts it at its worst case, never as obeying.
// A charger that answers GetCompositeSchedule NotSupported/NotImplemented is
// checked by its meter only.
//
// Thread-safe.
#ifndef EVGATE_SERVICES_OCPP_BRIDGE_OCPP_DEVICE_BACKEND_H_
#define EVGATE_SERVICES_OCPP_BRIDGE_OCPP_DEVICE_BACKEND_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "device_drivers/driver/device_backend.h"
#include "runtime/clock.h"
#include "services/ocpp_bridge/central_system.h"
#include "services/ocpp_bridge/setpoint_check.h"
#include "site_controller/config/site_config.h"

namespace evgate::ocpp {

inline constexpr char kOcppBusId[] = "ocpp";
// The catalog of the stop-reason faults (the session service's
// kOcppStopReasonCatalog).
inline constexpr char kOcppStopReasonVendor[] = "ocpp_stop_reason";

struct OcppDeviceBackendOptions {
  // How long ApplySetpoints waits for the chargers' answers, at most (and at
  // most half the TTL).
  absl::Duration answer_wait = absl::Seconds(2);
  // How often expired live profiles are noticed (the setpoint in force
  // becomes the failsafe).
  absl::Duration tick = absl::Milliseconds(500);
  // How often the composite schedule is read back, at most.
  absl::Duration readback_interval = absl::Seconds(30);
  SetpointCheckOptions check;
};

class OcppDeviceBackend final : public devices::DeviceBackend, public ChargePointListener {
 public:
  // `clock` must outlive it. Call central_system->SetListener(this) before
  // the server starts.
  OcppDeviceBackend(const site::SiteConfig& site, std::shared_ptr<CentralSystem> central_system,
                    const Clock& clock, OcppDeviceBackendOptions options = {});
  ~OcppDeviceBackend() override;

  // DeviceBackend
  std::string bus_id() const override { return kOcppBusId; }
  std::vector<std::string> DeviceIds() const override;
  std::optional<v1::DeviceState> GetDevice(const std::string& device_id) const override;
  // Kind "ocpp"; the charge points' traffic is in ListChargePoints and the
  // exporter's OCPP metrics, not in bus counters.
  evgate::v1::BusHealth GetBusHealth() const override;
  std::vector<std::string> EvseIds() const override;
  std::vector<std::optional<v1::SetpointValue>> SetpointsInForce(
      const std::vector<std::string>& evse_ids) const override;
  std::vector<v1::SetpointResult> ApplySetpoints(const std::vector<v1::Setpoint>& setpoints,
                                                 absl::Duration ttl,
                                                 const std::string& batch_id) override;
  v1::CommandResponse Command(const v1::CommandRequest& request) override;
  void SetSink(devices::DeviceEventSink* sink) override { sink_ = sink; }
  absl::Status Start() override;
  void Stop() override;

  // ChargePointListener
  void OnChargePointChanged(const std::string& charge_point_id) override;
  void OnMeterValues(const std::string& charge_point_id, int connector_id) override;
  void OnAccepted(const std::string& charge_point_id) override;
  void OnTransactionStarted(const std::string& charge_point_id, int connector_id,
                            const std::string& id_tag, int64_t transaction_id) override;
  void OnTransactionStopped(const std::string& charge_point_id, int connector_id,
                            int64_t transaction_id, const std::string& reason) override;

  // Expired live profiles -> the failsafe is in force (published). The
  // backend's thread calls it every `tick`; public for tests.
  void Tick();

  // The profile ids evgate uses for an EVSE's connector.
  static int FailsafeProfileId(int connector) { return 1000 + connector; }
  static int LiveProfileId(int connector) { return 2000 + connector; }
  // The station limit (site.yaml stations[].max_power_w, else the profile's)
  // as a ChargePointMaxProfile on connector 0, set at every accepted boot.
  static int ChargePointMaxProfileId() { return 3000; }

 private:
  struct Evse {
    std::string evse_id;
    std::string station_id;
    int connector = 1;
    double min_power_w = 0;
    double max_power_w = 0;
    double failsafe_power_w = 0;
    bool bidirectional = false;
    double max_discharge_power_w = 0;
    // What runs now, as far as evgate knows (nullopt: nothing sent yet in
    // this process).
    std::optional<v1::SetpointInForce> in_force;
    // Last published state and faults, to publish changes only.
    std::string published;
    std::vector<v1::Fault> published_faults;
    // Whether it follows its limit.
    SetpointCheck check;
    absl::Time readback_at = absl::InfinitePast();
    bool readback_unsupported = false;
  };
  struct Device {
    std::string device_id;
    std::string profile;
    std::string charge_point_id;
    std::vector<Evse> evses;
    double station_max_power_w = 0;  // its stations' maxima together; 0 = none
    bool was_online = false;
    std::vector<v1::Fault> published_faults;  // device-wide (connector 0)
  };

  v1::DeviceState BuildDevice(const Device& device, const std::optional<v1::ChargePoint>& cp) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::EvseState BuildEvse(const Device& device, const Evse& evse,
                          const std::optional<v1::ChargePoint>& cp) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Publishes what changed for one device (link, EVSE states).
  void PublishChanges(const std::string& charge_point_id) ABSL_LOCKS_EXCLUDED(mu_);
  Device* FindByChargePoint(const std::string& charge_point_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Evse* FindByConnector(const std::string& charge_point_id, int connector_id,
                              std::string* device_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(v1::WatchDevicesResponse event) ABSL_LOCKS_EXCLUDED(mu_);
  // GetCompositeSchedule of the EVSE's connector, compared with `expected_w`.
  void ReadBack(const std::string& charge_point_id, const std::string& evse_id, int connector,
                double expected_w) ABSL_LOCKS_EXCLUDED(mu_);
  Evse* FindEvse(const std::string& evse_id, Device** device) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<CentralSystem> central_system_;
  const Clock& clock_;
  const OcppDeviceBackendOptions options_;
  devices::DeviceEventSink* sink_ = nullptr;

  mutable absl::Mutex mu_;
  std::vector<Device> devices_ ABSL_GUARDED_BY(mu_);
  uint64_t setpoints_expired_total_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread ticker_;
  absl::Notification stopping_;
};

// The SetChargingProfile payload of a constant limit in W on `connector`
// from `now`: `stack_level`, `profile_id`, valid until `valid_to` (none =
// no end), of `purpose` (TxDefaultProfile, or ChargePointMaxProfile on
// connector 0).
nlohmann::json PowerLimitProfile(int connector, int profile_id, int stack_level, double limit_w,
                                 absl::Time now, std::optional<absl::Time> valid_to,
                                 const std::string& purpose = "TxDefaultProfile");

// The limit in W that a GetCompositeSchedule.conf puts in force at `now`:
// nullopt when it has no schedule (status Rejected, or none given); an error
// when it cannot be compared (a schedule in A).
absl::StatusOr<std::optional<double>> CompositeScheduleLimitW(const nlohmann::json& conf,
                                                              absl::Time now);

// The IEC 61851 state an OCPP connector status implies.
v1::Iec61851State IecStateOf(v1::ConnectorStatus status);

}  // namespace evgate::ocpp

#endif  // EVGATE_SERVICES_OCPP_BRIDGE_OCPP_DEVICE_BACKEND_H_
