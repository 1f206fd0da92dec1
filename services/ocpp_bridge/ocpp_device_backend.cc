#include "services/ocpp_bridge/ocpp_device_backend.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/ocpp_bridge/connector_faults.h"
#include "services/ocpp_bridge/meter_values.h"

namespace evgate::ocpp {
namespace {

using google::protobuf::util::TimeUtil;
using nlohmann::json;

constexpr log::Logger kLog("ocpp_bridge");

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(ts));
}

v1::SetpointValue PowerValue(double watts) {
  v1::SetpointValue value;
  value.set_power_limit_w(watts);
  return value;
}

// The limit a setpoint asks for in W; nullopt for a kind a DC charger cannot
// take (a current limit).
std::optional<double> LimitOf(const v1::SetpointValue& value) {
  if (value.has_pause()) return 0.0;
  if (value.kind_case() == v1::SetpointValue::kPowerLimitW) return value.power_limit_w();
  return std::nullopt;
}

// fault_raised / fault_cleared events for the difference between the faults
// last published and `now`; `published` becomes `now`.
void DiffFaults(const std::string& device_id, const std::string& evse_id,
                const google::protobuf::RepeatedPtrField<v1::Fault>& now,
                std::vector<v1::Fault>& published, std::vector<v1::WatchDevicesResponse>& out) {
  auto same = [](const v1::Fault& a, const v1::Fault& b) {
    return a.vendor() == b.vendor() && a.vendor_code() == b.vendor_code() && a.code() == b.code();
  };
  auto contains = [&same](const auto& faults, const v1::Fault& f) {
    return std::any_of(faults.begin(), faults.end(),
                       [&](const v1::Fault& other) { return same(f, other); });
  };
  for (const v1::Fault& old : published) {
    if (contains(now, old)) continue;
    v1::WatchDevicesResponse& event = out.emplace_back();
    event.set_device_id(device_id);
    event.mutable_fault_cleared()->set_evse_id(evse_id);
    *event.mutable_fault_cleared()->mutable_fault() = old;
  }
  for (const v1::Fault& fault : now) {
    if (contains(published, fault)) continue;
    v1::WatchDevicesResponse& event = out.emplace_back();
    event.set_device_id(device_id);
    event.mutable_fault_raised()->set_evse_id(evse_id);
    *event.mutable_fault_raised()->mutable_fault() = fault;
  }
  published.assign(now.begin(), now.end());
}

}  // namespace

nlohmann::json PowerLimitProfile(int connector, int profile_id, int stack_level, double limit_w,
                                 absl::Time now, std::optional<absl::Time> valid_to,
                                 const std::string& purpose) {
  json profile = {{"chargingProfileId", profile_id},
                  {"stackLevel", stack_level},
                  {"chargingProfilePurpose", purpose},
                  {"chargingProfileKind", "Absolute"},
                  {"chargingSchedule",
                   {{"chargingRateUnit", "W"},
                    {"startSchedule", FormatOcppTime(now)},
                    // Whole watts: the schema's multipleOf 0.1 and every charger's
                    // resolution are far finer than the load balancer's steps.
                    {"chargingSchedulePeriod",
                     json::array({{{"startPeriod", 0}, {"limit", std::round(limit_w)}}})}}}};
  profile["validFrom"] = FormatOcppTime(now);
  if (valid_to) profile["validTo"] = FormatOcppTime(*valid_to);
  return {{"connectorId", connector}, {"csChargingProfiles", profile}};
}

v1::Iec61851State IecStateOf(v1::ConnectorStatus status) {
  switch (status) {
    case v1::CONNECTOR_STATUS_AVAILABLE:
    case v1::CONNECTOR_STATUS_RESERVED:
      return v1::IEC61851_STATE_A;
    case v1::CONNECTOR_STATUS_PREPARING:
    case v1::CONNECTOR_STATUS_SUSPENDED_EV:
    case v1::CONNECTOR_STATUS_SUSPENDED_EVSE:
    case v1::CONNECTOR_STATUS_FINISHING:
      return v1::IEC61851_STATE_B;
    case v1::CONNECTOR_STATUS_CHARGING:
      return v1::IEC61851_STATE_C;
    case v1::CONNECTOR_STATUS_FAULTED:
      return v1::IEC61851_STATE_F;
    default:
      return v1::IEC61851_STATE_UNSPECIFIED;
  }
}

OcppDeviceBackend::OcppDeviceBackend(const site::SiteConfig& site,
                                     std::shared_ptr<CentralSystem> central_system,
                                     const Clock& clock, OcppDeviceBackendOptions options)
    : central_system_(std::move(central_system)), clock_(clock), options_(options) {
  absl::MutexLock lock(&mu_);
  for (const site::DeviceConfig& config : site.devices) {
    if (!config.charge_point_id) continue;
    Device device;
    device.device_id = config.id;
    device.profile = config.profile_name;
    device.charge_point_id = *config.charge_point_id;
    for (const site::StationConfig& station : site.stations) {
      if (station.device != config.id) continue;
      const double station_max = station.max_power_w > 0     ? station.max_power_w
                                 : config.profile != nullptr ? config.profile->station_max_power_w
                                                             : 0;
      device.station_max_power_w += station_max;
      for (const site::EvseConfig& evse_config : station.evses) {
        Evse evse;
        evse.evse_id = evse_config.id;
        evse.station_id = station.id;
        evse.connector = evse_config.connector;
        if (evse_config.dc) {
          const site::DcEvseLimits& dc = *evse_config.dc;
          evse.min_power_w = dc.min_power_w;
          evse.max_power_w = dc.max_power_w > 0 ? dc.max_power_w : station_max;
          evse.failsafe_power_w = dc.failsafe_power_w;
          evse.bidirectional = dc.bidirectional;
          evse.max_discharge_power_w = dc.max_discharge_power_w;
        }
        device.evses.push_back(std::move(evse));
      }
    }
    devices_.push_back(std::move(device));
  }
}

OcppDeviceBackend::~OcppDeviceBackend() { Stop(); }

std::vector<std::string> OcppDeviceBackend::DeviceIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const Device& device : devices_) ids.push_back(device.device_id);
  return ids;
}

std::vector<std::string> OcppDeviceBackend::EvseIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const Device& device : devices_) {
    for (const Evse& evse : device.evses) ids.push_back(evse.evse_id);
  }
  return ids;
}

OcppDeviceBackend::Device* OcppDeviceBackend::FindByChargePoint(
    const std::string& charge_point_id) {
  for (Device& device : devices_) {
    if (device.charge_point_id == charge_point_id) return &device;
  }
  return nullptr;
}

const OcppDeviceBackend::Evse* OcppDeviceBackend::FindByConnector(
    const std::string& charge_point_id, int connector_id, std::string* device_id) {
  Device* device = FindByChargePoint(charge_point_id);
  if (device == nullptr) return nullptr;
  for (const Evse& evse : device->evses) {
    if (evse.connector != connector_id) continue;
    *device_id = device->device_id;
    return &evse;
  }
  return nullptr;
}

OcppDeviceBackend::Evse* OcppDeviceBackend::FindEvse(const std::string& evse_id, Device** device) {
  for (Device& d : devices_) {
    for (Evse& evse : d.evses) {
      if (evse.evse_id == evse_id) {
        *device = &d;
        return &evse;
      }
    }
  }
  return nullptr;
}

v1::EvseState OcppDeviceBackend::BuildEvse(const Device& device, const Evse& evse,
                                           const std::optional<v1::ChargePoint>& cp) const {
  v1::EvseState state;
  state.set_evse_id(evse.evse_id);
  state.set_connector_id(evse.connector);
  state.set_kind(v1::EVSE_KIND_DC);
  v1::EvseCapabilities* caps = state.mutable_capabilities();
  caps->set_min_power_w(evse.min_power_w);
  caps->set_max_power_w(evse.max_power_w);
  caps->set_bidirectional(evse.bidirectional);
  if (evse.bidirectional) caps->set_max_discharge_power_w(evse.max_discharge_power_w);
  if (cp) {
    for (const v1::ChargePointConnector& c : cp->connectors()) {
      if (static_cast<int>(c.connector_id()) != evse.connector) continue;
      state.set_connector_status(c.status());
      state.set_iec61851_state(IecStateOf(c.status()));
      for (v1::Fault& fault : ConnectorFaults(device.profile, c)) {
        *state.add_faults() = std::move(fault);
      }
    }
  }
  std::optional<MeterReading> reading =
      central_system_->LatestMeterReading(device.charge_point_id, evse.connector);
  if (reading) {
    v1::EvseMeasurements* m = state.mutable_measurements();
    if (reading->power_import_w || reading->power_export_w) {
      m->set_power_w(reading->power_import_w.value_or(0) - reading->power_export_w.value_or(0));
    }
    if (reading->energy_import_wh) m->set_energy_import_wh(*reading->energy_import_wh);
    if (reading->energy_export_wh) m->set_energy_export_wh(*reading->energy_export_wh);
    if (reading->soc_pct) m->set_soc_pct(*reading->soc_pct);
    if (reading->voltage_total_v) m->set_dc_voltage_v(*reading->voltage_total_v);
    if (reading->current_import_total_a) m->set_dc_current_a(*reading->current_import_total_a);
    *m->mutable_measured_at() = ToProto(reading->timestamp);
  }
  if (evse.in_force) *state.mutable_setpoint() = *evse.in_force;
  if (std::optional<std::string> problem = evse.check.problem()) {
    v1::Fault* fault = state.add_faults();
    fault->set_code("SETPOINT_NOT_FOLLOWED");
    fault->set_severity(v1::FAULT_SEVERITY_ERROR);
    fault->set_component(v1::FAULT_COMPONENT_OTHER);
    fault->set_vendor("evgate");
    fault->set_vendor_code("SETPOINT_NOT_FOLLOWED");
    fault->set_description(absl::StrCat(device.charge_point_id, " connector ", evse.connector,
                                        " does not follow its limit: ", *problem));
    fault->set_ocpp_error_code(v1::OCPP_ERROR_CODE_OTHER_ERROR);
  }
  return state;
}

v1::DeviceState OcppDeviceBackend::BuildDevice(const Device& device,
                                               const std::optional<v1::ChargePoint>& cp) const {
  v1::DeviceState state;
  state.set_device_id(device.device_id);
  state.set_kind(v1::DEVICE_KIND_DC_CHARGER);
  state.set_profile(device.profile);
  state.set_bus_id(kOcppBusId);
  state.set_address(device.charge_point_id);
  if (!device.evses.empty()) state.set_station_id(device.evses[0].station_id);
  v1::LinkHealth* link = state.mutable_link();
  const bool online = central_system_->IsAccepted(device.charge_point_id);
  link->set_stale(!online);
  if (cp) {
    v1::DeviceIdentity* identity = state.mutable_identity();
    identity->set_vendor(cp->vendor());
    identity->set_model(cp->model());
    identity->set_serial_number(cp->serial_number());
    identity->set_firmware_version(cp->firmware_version());
    if (cp->has_last_message_at()) *link->mutable_last_seen() = cp->last_message_at();
    if (!online) {
      link->set_last_error(cp->connection_state() == v1::CHARGE_POINT_CONNECTION_STATE_CONNECTED
                               ? "connected, not yet accepted"
                               : "not connected to the local Central System");
    }
  }
  if (cp) {
    for (const v1::ChargePointConnector& c : cp->connectors()) {
      if (c.connector_id() != 0) continue;
      for (v1::Fault& fault : ConnectorFaults(device.profile, c)) {
        *state.add_faults() = std::move(fault);
      }
    }
  }
  for (const Evse& evse : device.evses) *state.add_evses() = BuildEvse(device, evse, cp);
  state.set_availability(v1::AVAILABILITY_OPERATIVE);
  return state;
}

std::optional<v1::DeviceState> OcppDeviceBackend::GetDevice(const std::string& device_id) const {
  absl::MutexLock lock(&mu_);
  for (const Device& device : devices_) {
    if (device.device_id != device_id) continue;
    return BuildDevice(device, central_system_->GetChargePoint(device.charge_point_id));
  }
  return std::nullopt;
}

std::vector<std::optional<v1::SetpointValue>> OcppDeviceBackend::SetpointsInForce(
    const std::vector<std::string>& evse_ids) const {
  absl::MutexLock lock(&mu_);
  std::vector<std::optional<v1::SetpointValue>> values;
  for (const std::string& id : evse_ids) {
    std::optional<v1::SetpointValue> value;
    for (const Device& device : devices_) {
      for (const Evse& evse : device.evses) {
        if (evse.evse_id == id && evse.in_force) value = evse.in_force->value();
      }
    }
    values.push_back(std::move(value));
  }
  return values;
}

std::vector<v1::SetpointResult> OcppDeviceBackend::ApplySetpoints(
    const std::vector<v1::Setpoint>& setpoints, absl::Duration ttl, const std::string& batch_id) {
  struct Pending {
    absl::Mutex mu;
    absl::CondVar cv;
    int outstanding ABSL_GUARDED_BY(mu) = 0;
    std::vector<std::optional<CallOutcome>> outcomes ABSL_GUARDED_BY(mu);
  };
  auto pending = std::make_shared<Pending>();
  std::vector<v1::SetpointResult> results(setpoints.size());
  std::vector<double> limits(setpoints.size(), 0);
  std::vector<bool> sent(setpoints.size(), false);
  const absl::Time now = clock_.Now();
  {
    absl::MutexLock lock(&pending->mu);
    pending->outcomes.resize(setpoints.size());
  }
  for (size_t i = 0; i < setpoints.size(); ++i) {
    v1::SetpointResult& result = results[i];
    result.set_evse_id(setpoints[i].evse_id());
    result.set_status(v1::SETPOINT_STATUS_REJECTED);
    std::string charge_point_id;
    int connector = 0;
    std::optional<std::vector<std::string>> units;
    {
      absl::MutexLock lock(&mu_);
      Device* device = nullptr;
      Evse* evse = FindEvse(setpoints[i].evse_id(), &device);
      if (evse == nullptr) {
        result.set_reason(v1::SETPOINT_REJECT_REASON_UNKNOWN_EVSE);
        result.set_message("not an EVSE of an OCPP charger");
        continue;
      }
      std::optional<double> limit = LimitOf(setpoints[i].value());
      if (!limit) {
        result.set_reason(v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED);
        result.set_message("a DC charger takes a power limit in W or a pause");
        continue;
      }
      if (*limit < 0 && !evse->bidirectional) {
        result.set_reason(v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED);
        result.set_message(absl::StrCat(evse->evse_id, " is not bidirectional: no discharge"));
        continue;
      }
      if (*limit < 0 && (-*limit < evse->min_power_w || -*limit > evse->max_discharge_power_w)) {
        result.set_reason(v1::SETPOINT_REJECT_REASON_INVALID_VALUE);
        result.set_message(absl::StrCat("a discharge of ", -*limit, " W is outside ",
                                        evse->min_power_w, "..", evse->max_discharge_power_w,
                                        " W"));
        continue;
      }
      if (*limit > 0 && (*limit < evse->min_power_w || *limit > evse->max_power_w)) {
        result.set_reason(v1::SETPOINT_REJECT_REASON_INVALID_VALUE);
        result.set_message(absl::StrCat(*limit, " W is outside ", evse->min_power_w, "..",
                                        evse->max_power_w, " W (0 pauses)"));
        continue;
      }
      limits[i] = *limit;
      charge_point_id = device->charge_point_id;
      connector = evse->connector;
    }
    std::optional<ChargerConfiguration> config = central_system_->Configuration(charge_point_id);
    if (config && !config->allowed_rate_units.empty() &&
        std::find(config->allowed_rate_units.begin(), config->allowed_rate_units.end(), "Power") ==
            config->allowed_rate_units.end()) {
      result.set_reason(v1::SETPOINT_REJECT_REASON_NOT_SUPPORTED);
      result.set_message(absl::StrCat(charge_point_id,
                                      " takes charging limits only in A "
                                      "(ChargingScheduleAllowedChargingRateUnit)"));
      continue;
    }
    if (!central_system_->IsAccepted(charge_point_id)) {
      result.set_reason(v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE);
      result.set_message(absl::StrCat(charge_point_id, " is not connected and accepted"));
      continue;
    }
    {
      absl::MutexLock lock(&pending->mu);
      ++pending->outstanding;
    }
    absl::Status call = central_system_->Call(
        charge_point_id, "SetChargingProfile",
        PowerLimitProfile(connector, LiveProfileId(connector), 1, limits[i], now, now + ttl),
        [pending, i](CallOutcome outcome) {
          absl::MutexLock lock(&pending->mu);
          pending->outcomes[i] = std::move(outcome);
          --pending->outstanding;
          pending->cv.SignalAll();
        });
    if (!call.ok()) {
      absl::MutexLock lock(&pending->mu);
      --pending->outstanding;
      result.set_reason(v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE);
      result.set_message(std::string(call.message()));
      continue;
    }
    sent[i] = true;
  }

  // The chargers answer in parallel, each on its own connection.
  const absl::Duration wait = std::min(options_.answer_wait, ttl / 2);
  const absl::Time deadline = absl::Now() + wait;
  std::vector<std::optional<CallOutcome>> outcomes;
  {
    absl::MutexLock lock(&pending->mu);
    while (pending->outstanding > 0 && absl::Now() < deadline) {
      pending->cv.WaitWithDeadline(&pending->mu, deadline);
    }
    outcomes = pending->outcomes;
  }
  std::vector<std::string> changed;
  struct Readback {
    std::string charge_point_id;
    std::string evse_id;
    int connector;
    double expected_w;
  };
  std::vector<Readback> readbacks;
  for (size_t i = 0; i < setpoints.size(); ++i) {
    if (!sent[i]) continue;
    v1::SetpointResult& result = results[i];
    const std::optional<CallOutcome>& outcome = outcomes[i];
    if (!outcome) {
      result.set_reason(v1::SETPOINT_REJECT_REASON_TIMEOUT);
      result.set_message(
          absl::StrCat("no answer to SetChargingProfile within ", absl::FormatDuration(wait)));
      continue;
    }
    const std::string status =
        outcome->result ? outcome->result->value("status", std::string()) : std::string();
    if (status != "Accepted") {
      result.set_reason(outcome->status.ok() ? v1::SETPOINT_REJECT_REASON_DEVICE_REJECTED
                                             : v1::SETPOINT_REJECT_REASON_DEVICE_OFFLINE);
      result.set_message(
          outcome->error ? absl::StrCat("SetChargingProfile: ", outcome->error->code_name, " ",
                                        outcome->error->description)
          : !outcome->status.ok() ? std::string(outcome->status.message())
                                  : absl::StrCat("SetChargingProfile answered \"", status, "\""));
      continue;
    }
    result.set_status(v1::SETPOINT_STATUS_ACCEPTED);
    v1::SetpointInForce in_force;
    *in_force.mutable_value() =
        setpoints[i].value().has_pause() ? setpoints[i].value() : PowerValue(limits[i]);
    in_force.set_source(v1::SETPOINT_SOURCE_CONTROLLER);
    *in_force.mutable_applied_at() = ToProto(now);
    *in_force.mutable_expires_at() = ToProto(now + ttl);
    in_force.set_batch_id(batch_id);
    *result.mutable_in_force() = in_force;
    absl::MutexLock lock(&mu_);
    Device* device = nullptr;
    if (Evse* evse = FindEvse(setpoints[i].evse_id(), &device)) {
      evse->in_force = in_force;
      evse->check.LimitInForce(limits[i], now);
      changed.push_back(device->charge_point_id);
      if (std::optional<std::string> problem = evse->check.problem()) {
        // Sent, and the charger has it; but evgate cannot count on it.
        result.set_status(v1::SETPOINT_STATUS_REJECTED);
        result.set_reason(v1::SETPOINT_REJECT_REASON_DEVICE_REJECTED);
        result.set_message(
            absl::StrCat("accepted, but the charger does not follow its limit: ", *problem));
      }
      if (!evse->readback_unsupported && now - evse->readback_at >= options_.readback_interval) {
        evse->readback_at = now;
        readbacks.push_back({device->charge_point_id, evse->evse_id, evse->connector, limits[i]});
      }
    }
  }
  for (const std::string& id : changed) PublishChanges(id);
  for (const Readback& r : readbacks)
    ReadBack(r.charge_point_id, r.evse_id, r.connector, r.expected_w);
  return results;
}

void OcppDeviceBackend::ReadBack(const std::string& charge_point_id, const std::string& evse_id,
                                 int connector, double expected_w) {
  const json request = {{"connectorId", connector}, {"duration", 60}, {"chargingRateUnit", "W"}};
  absl::Status sent = central_system_->Call(
      charge_point_id, "GetCompositeSchedule", request,
      [this, charge_point_id, evse_id, expected_w](CallOutcome outcome) {
        bool changed = false;
        {
          absl::MutexLock lock(&mu_);
          Device* device = nullptr;
          Evse* evse = FindEvse(evse_id, &device);
          if (evse == nullptr) return;
          if (outcome.error && (outcome.error->code == RpcErrorCode::kNotSupported ||
                                outcome.error->code == RpcErrorCode::kNotImplemented)) {
            evse->readback_unsupported = true;
            kLog.Warning("%s: no GetCompositeSchedule (%s); %s is checked by its meter only",
                         charge_point_id, outcome.error->code_name, evse_id);
            return;
          }
          if (!outcome.result) return;  // no answer: nothing learnt
          absl::StatusOr<std::optional<double>> limit =
              CompositeScheduleLimitW(*outcome.result, clock_.Now());
          if (!limit.ok()) {
            kLog.Info("%s: composite schedule of %s not comparable: %s", charge_point_id, evse_id,
                      limit.status().message());
            return;
          }
          changed = evse->check.Readback(*limit, expected_w);
          if (changed) {
            std::optional<std::string> problem = evse->check.problem();
            if (problem) {
              kLog.Warning("%s: %s does not follow its limit: %s", charge_point_id, evse_id,
                           *problem);
            } else {
              kLog.Info("%s: %s follows its limit again (composite schedule)", charge_point_id,
                        evse_id);
            }
          }
        }
        if (changed) PublishChanges(charge_point_id);
      });
  if (!sent.ok()) {
    kLog.Debug("%s: GetCompositeSchedule not sent: %s", charge_point_id, sent.message());
  }
}

absl::StatusOr<std::optional<double>> CompositeScheduleLimitW(const json& conf, absl::Time now) {
  if (conf.value("status", std::string()) != "Accepted" || !conf.contains("chargingSchedule")) {
    return std::nullopt;
  }
  const json& schedule = conf["chargingSchedule"];
  if (schedule.value("chargingRateUnit", std::string()) != "W") {
    return absl::FailedPreconditionError(absl::StrCat(
        "the schedule is in ", schedule.value("chargingRateUnit", std::string("?")), ", not W"));
  }
  // Periods start at startPeriod seconds after the schedule's start.
  // The schedule's own start wins over the answer's scheduleStart; without
  // either, it starts now.
  absl::Time start = now;
  for (const json* holder : {&conf, &schedule}) {
    const char* key = holder == &conf ? "scheduleStart" : "startSchedule";
    if (!holder->contains(key)) continue;
    if (absl::StatusOr<absl::Time> t = ParseOcppTime((*holder)[key].get<std::string>()); t.ok()) {
      start = *t;
    }
  }
  const double elapsed_s = absl::ToDoubleSeconds(now - start);
  std::optional<double> limit;
  int latest_start = -1;
  for (const json& period : schedule.value("chargingSchedulePeriod", json::array())) {
    const int start_period = period.value("startPeriod", 0);
    if (start_period <= elapsed_s && start_period > latest_start) {
      latest_start = start_period;
      limit = period.value("limit", 0.0);
    }
  }
  return limit;
}

v1::CommandResponse OcppDeviceBackend::Command(const v1::CommandRequest& /*request*/) {
  v1::CommandResponse response;
  response.set_status(v1::COMMAND_STATUS_NOT_SUPPORTED);
  response.set_message(
      "commands to OCPP chargers go through OcppBridge.SendChargerCommand (evgatectl ocpp "
      "command)");
  return response;
}

absl::Status OcppDeviceBackend::Start() {
  ticker_ = std::thread([this] {
    while (!stopping_.WaitForNotificationWithTimeout(options_.tick)) Tick();
  });
  return absl::OkStatus();
}

void OcppDeviceBackend::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (ticker_.joinable()) ticker_.join();
}

v1::BusHealth OcppDeviceBackend::GetBusHealth() const {
  v1::BusHealth health;
  health.set_bus_id(kOcppBusId);
  health.set_kind("ocpp");
  absl::MutexLock lock(&mu_);
  health.set_setpoints_expired_total(setpoints_expired_total_);
  return health;
}

void OcppDeviceBackend::Tick() {
  std::vector<std::string> changed;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    for (Device& device : devices_) {
      for (Evse& evse : device.evses) {
        if (!evse.in_force || evse.in_force->source() != v1::SETPOINT_SOURCE_CONTROLLER) continue;
        if (FromProto(evse.in_force->expires_at()) > now) continue;
        // The live profile has ended on the charger too: the failsafe runs.
        v1::SetpointInForce failsafe;
        *failsafe.mutable_value() = PowerValue(evse.failsafe_power_w);
        failsafe.set_source(v1::SETPOINT_SOURCE_FAILSAFE);
        *failsafe.mutable_applied_at() = evse.in_force->expires_at();
        evse.in_force = failsafe;
        ++setpoints_expired_total_;
        evse.check.LimitInForce(evse.failsafe_power_w, FromProto(failsafe.applied_at()));
        kLog.Warning("%s: no setpoint within its TTL; the charger runs its failsafe profile (%g W)",
                     evse.evse_id, evse.failsafe_power_w);
        changed.push_back(device.charge_point_id);
      }
    }
  }
  for (const std::string& id : changed) PublishChanges(id);
}

void OcppDeviceBackend::OnChargePointChanged(const std::string& charge_point_id) {
  PublishChanges(charge_point_id);
}

void OcppDeviceBackend::OnMeterValues(const std::string& charge_point_id, int connector_id) {
  std::optional<v1::ChargePoint> cp = central_system_->GetChargePoint(charge_point_id);
  v1::WatchDevicesResponse event;
  bool verdict_changed = false;
  {
    absl::MutexLock lock(&mu_);
    Device* device = FindByChargePoint(charge_point_id);
    if (device == nullptr) return;
    v1::DeviceState state = BuildDevice(*device, cp);
    v1::Telemetry* telemetry = event.mutable_telemetry();
    *telemetry->mutable_link() = state.link();
    for (size_t i = 0; i < device->evses.size(); ++i) {
      const v1::EvseState& evse = state.evses(static_cast<int>(i));
      if (static_cast<int>(evse.connector_id()) != connector_id) continue;
      v1::EvseTelemetry* t = telemetry->add_evses();
      t->set_evse_id(evse.evse_id());
      *t->mutable_measurements() = evse.measurements();
      const v1::EvseMeasurements& m = evse.measurements();
      // Judged when it arrives, on evgate's clock (the charger's may be off);
      // a sample older than the grace (a backlog after a reconnect) is not.
      const absl::Time now = clock_.Now();
      if (m.has_power_w() && now - FromProto(m.measured_at()) <= options_.check.grace &&
          device->evses[i].check.Meter(m.power_w(), now)) {
        verdict_changed = true;
        std::optional<std::string> problem = device->evses[i].check.problem();
        if (problem) {
          kLog.Warning("%s: %s does not follow its limit: %s", charge_point_id, evse.evse_id(),
                       *problem);
        } else {
          kLog.Info("%s: %s follows its limit again (meter)", charge_point_id, evse.evse_id());
        }
      }
    }
    if (telemetry->evses_size() == 0) return;
    event.set_device_id(device->device_id);
  }
  Publish(std::move(event));
  if (verdict_changed) PublishChanges(charge_point_id);
}

void OcppDeviceBackend::OnAccepted(const std::string& charge_point_id) {
  // The failsafe profile on every connector: what the charger runs whenever
  // no live profile is valid (evgate stopped, the link dropped).
  std::vector<std::pair<int, double>> failsafes;
  double station_max_w = 0;
  {
    absl::MutexLock lock(&mu_);
    Device* device = FindByChargePoint(charge_point_id);
    if (device == nullptr) return;
    for (const Evse& evse : device->evses)
      failsafes.emplace_back(evse.connector, evse.failsafe_power_w);
    station_max_w = device->station_max_power_w;
  }
  const absl::Time now = clock_.Now();
  // The station's limit on the whole charge point, which holds whatever the
  // connectors' profiles say (and when evgate is not there to share it).
  if (station_max_w > 0) {
    absl::Status sent = central_system_->Call(
        charge_point_id, "SetChargingProfile",
        PowerLimitProfile(0, ChargePointMaxProfileId(), 0, station_max_w, now, std::nullopt,
                          "ChargePointMaxProfile"),
        [charge_point_id, station_max_w](CallOutcome outcome) {
          const std::string status =
              outcome.result ? outcome.result->value("status", std::string()) : std::string();
          if (status == "Accepted") {
            kLog.Info("%s: station limit %g W set (ChargePointMaxProfile)", charge_point_id,
                      station_max_w);
          } else {
            kLog.Warning(
                "%s: the station limit (%g W, ChargePointMaxProfile) was not accepted (%s); "
                "the load balancer keeps the station within it, the charger alone does not",
                charge_point_id, station_max_w,
                outcome.error         ? outcome.error->code_name
                : outcome.status.ok() ? status
                                      : std::string(outcome.status.message()));
          }
        });
    if (!sent.ok()) {
      kLog.Warning("%s: station limit profile not sent: %s", charge_point_id, sent.message());
    }
  }
  for (const auto& [connector, watts] : failsafes) {
    absl::Status sent = central_system_->Call(
        charge_point_id, "SetChargingProfile",
        PowerLimitProfile(connector, FailsafeProfileId(connector), 0, watts, now, std::nullopt),
        [this, charge_point_id, connector = connector, watts = watts](CallOutcome outcome) {
          const std::string status =
              outcome.result ? outcome.result->value("status", std::string()) : std::string();
          if (status == "Accepted") {
            kLog.Info("%s connector %d: failsafe profile %g W set", charge_point_id, connector,
                      watts);
            // What the charger must hold to until a live profile comes.
            absl::MutexLock lock(&mu_);
            if (Device* device = FindByChargePoint(charge_point_id)) {
              for (Evse& evse : device->evses) {
                if (evse.connector == connector && !evse.in_force) {
                  evse.check.LimitInForce(watts, clock_.Now());
                }
              }
            }
          } else {
            kLog.Error(
                "%s connector %d: the failsafe profile (%g W) was not accepted (%s): the "
                "charger will not fall back to it if evgate stops",
                charge_point_id, connector, watts,
                outcome.error         ? outcome.error->code_name
                : outcome.status.ok() ? status
                                      : std::string(outcome.status.message()));
          }
        });
    if (!sent.ok())
      kLog.Warning("%s: failsafe profile not sent: %s", charge_point_id, sent.message());
  }
}

void OcppDeviceBackend::PublishChanges(const std::string& charge_point_id) {
  std::optional<v1::ChargePoint> cp = central_system_->GetChargePoint(charge_point_id);
  std::vector<v1::WatchDevicesResponse> events;
  std::vector<v1::WatchDevicesResponse> faults;  // after the states that carry them
  {
    absl::MutexLock lock(&mu_);
    Device* device = FindByChargePoint(charge_point_id);
    if (device == nullptr) return;
    v1::DeviceState state = BuildDevice(*device, cp);
    const bool online = !state.link().stale();
    if (online != device->was_online) {
      device->was_online = online;
      v1::WatchDevicesResponse event;
      event.set_device_id(device->device_id);
      *event.mutable_link_state_change()->mutable_link() = state.link();
      events.push_back(std::move(event));
    }
    DiffFaults(device->device_id, "", state.faults(), device->published_faults, faults);
    for (int i = 0; i < state.evses_size(); ++i) {
      Evse& evse = device->evses[i];
      DiffFaults(device->device_id, evse.evse_id, state.evses(i).faults(), evse.published_faults,
                 faults);
      v1::EvseState evse_state = state.evses(i);
      // Measurements change with every sample; a state change is the rest.
      v1::EvseState key = evse_state;
      key.clear_measurements();
      std::string serialized = key.SerializeAsString();
      if (serialized == evse.published) continue;
      v1::EvseState previous;
      if (!evse.published.empty()) previous.ParseFromString(evse.published);
      evse.published = std::move(serialized);
      v1::WatchDevicesResponse event;
      event.set_device_id(device->device_id);
      v1::EvseStateChange* change = event.mutable_evse_state_change();
      *change->mutable_state() = std::move(evse_state);
      change->set_previous_iec61851_state(previous.iec61851_state());
      change->set_previous_connector_status(previous.connector_status());
      events.push_back(std::move(event));
    }
  }
  for (v1::WatchDevicesResponse& event : faults) events.push_back(std::move(event));
  for (v1::WatchDevicesResponse& event : events) Publish(std::move(event));
}

void OcppDeviceBackend::Publish(v1::WatchDevicesResponse event) {
  *event.mutable_at() = ToProto(clock_.Now());
  if (sink_ != nullptr) sink_->Publish(std::move(event));
}

void OcppDeviceBackend::OnTransactionStarted(const std::string& charge_point_id, int connector_id,
                                             const std::string& id_tag, int64_t transaction_id) {
  v1::WatchDevicesResponse event;
  {
    absl::MutexLock lock(&mu_);
    std::string device_id;
    const Evse* evse = FindByConnector(charge_point_id, connector_id, &device_id);
    if (evse == nullptr) {
      kLog.Warning("%s: transaction %d on connector %d, which is no EVSE of site.yaml",
                   charge_point_id, transaction_id, connector_id);
      return;
    }
    event.set_device_id(device_id);
    v1::TransactionStarted* started = event.mutable_transaction_started();
    started->set_evse_id(evse->evse_id);
    started->set_id_tag(id_tag);
    started->set_transaction_id(absl::StrCat(transaction_id));
  }
  Publish(std::move(event));
}

void OcppDeviceBackend::OnTransactionStopped(const std::string& charge_point_id, int connector_id,
                                             int64_t transaction_id, const std::string& reason) {
  // meterStop first, so that the session ends with the charger's register.
  OnMeterValues(charge_point_id, connector_id);
  v1::WatchDevicesResponse raised;
  {
    absl::MutexLock lock(&mu_);
    std::string device_id;
    const Evse* evse = FindByConnector(charge_point_id, connector_id, &device_id);
    if (evse == nullptr) return;
    raised.set_device_id(device_id);
    raised.mutable_fault_raised()->set_evse_id(evse->evse_id);
    v1::Fault* fault = raised.mutable_fault_raised()->mutable_fault();
    fault->set_code("TRANSACTION_STOPPED");
    fault->set_severity(v1::FAULT_SEVERITY_INFO);
    fault->set_component(v1::FAULT_COMPONENT_OTHER);
    fault->set_vendor(kOcppStopReasonVendor);
    fault->set_vendor_code(reason);
    fault->set_description(absl::StrCat("transaction ", transaction_id, " stopped (",
                                        reason.empty() ? "Local" : reason, ")"));
    fault->set_ocpp_error_code(v1::OCPP_ERROR_CODE_NO_ERROR);
    *fault->mutable_since() = ToProto(clock_.Now());
  }
  // A stop reason is an event, not a condition: cleared at once.
  v1::WatchDevicesResponse cleared;
  cleared.set_device_id(raised.device_id());
  cleared.mutable_fault_cleared()->set_evse_id(raised.fault_raised().evse_id());
  *cleared.mutable_fault_cleared()->mutable_fault() = raised.fault_raised().fault();
  Publish(std::move(raised));
  Publish(std::move(cleared));
}

}  // namespace evgate::ocpp
