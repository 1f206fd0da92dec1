#include "device_drivers/sim/ocpp_charger_simulator.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "services/ocpp_bridge/meter_values.h"

namespace evgate::sim {
namespace {

using nlohmann::json;
using ocpp::FormatOcppTime;
using ocpp::ParseOcppTime;

// A transaction message is sent again this long after it went unanswered.
constexpr absl::Duration kTransactionRetry = absl::Seconds(5);
// A boot answered Pending or Rejected without an interval is retried after.
constexpr absl::Duration kBootRetry = absl::Seconds(10);
constexpr double kNoPowerW = 1;  // below this a connector delivers nothing

struct Key {
  const char* name;
  const char* value;
  bool read_only;
};
constexpr Key kKeys[] = {
    {"AuthorizeRemoteTxRequests", "false", false},
    {"ChargeProfileMaxStackLevel", "8", true},
    {"ChargingScheduleAllowedChargingRateUnit", "Current,Power", true},
    {"ChargingScheduleMaxPeriods", "24", true},
    {"ClockAlignedDataInterval", "0", false},
    {"ConnectionTimeOut", "60", false},
    {"HeartbeatInterval", "300", false},
    {"MaxChargingProfilesInstalled", "16", true},
    {"MeterValueSampleInterval", "60", false},
    {"MeterValuesSampledData", "Energy.Active.Import.Register,Power.Active.Import,SoC", false},
    {"StopTransactionOnEVSideDisconnect", "true", true},
    {"StopTransactionOnInvalidId", "true", false},
    {"SupportedFeatureProfiles", "Core,SmartCharging,RemoteTrigger", true},
    {"WebSocketPingInterval", "0", false},
};
// Keys whose value must be a whole number of seconds.
bool IsIntervalKey(const std::string& key) {
  return key == "HeartbeatInterval" || key == "MeterValueSampleInterval" ||
         key == "ClockAlignedDataInterval" || key == "ConnectionTimeOut" ||
         key == "WebSocketPingInterval";
}

std::optional<absl::Time> TimeField(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return std::nullopt;
  absl::StatusOr<absl::Time> t = ParseOcppTime(j[key].get<std::string>());
  if (!t.ok()) return std::nullopt;
  return *t;
}

json Sample(std::string value, const char* measurand, const char* unit, const char* context) {
  return json{
      {"value", std::move(value)}, {"context", context}, {"measurand", measurand}, {"unit", unit}};
}

// Limits in a schedule are multiples of 0.1 (the schema's multipleOf).
double Tenths(double v) { return std::round(v * 10) / 10; }

}  // namespace

OcppChargerSimulator::OcppChargerSimulator(OcppChargerSimConfig config)
    : config_(std::move(config)) {
  absl::MutexLock lock(&mu_);
  for (const OcppChargerSimConnector& c : config_.connectors) {
    Connector connector;
    connector.config = c;
    connectors_.push_back(connector);
  }
  for (const Key& key : kKeys) keys_[key.name] = key.value;
  keys_["NumberOfConnectors"] = absl::StrCat(connectors_.size());
}

OcppChargerSimulator::Connector* OcppChargerSimulator::Find(int connector) {
  for (Connector& c : connectors_) {
    if (c.config.connector == connector) return &c;
  }
  return nullptr;
}

const OcppChargerSimulator::Connector* OcppChargerSimulator::Find(int connector) const {
  for (const Connector& c : connectors_) {
    if (c.config.connector == connector) return &c;
  }
  return nullptr;
}

// ---- connection and queue ----------------------------------------------------

void OcppChargerSimulator::Connected(absl::Time now) {
  absl::MutexLock lock(&mu_);
  connected_ = true;
  accepted_ = false;
  boot_retry_at_ = now;
  QueueBoot();
}

void OcppChargerSimulator::Disconnected() {
  absl::MutexLock lock(&mu_);
  connected_ = false;
  accepted_ = false;
  boot_queued_ = false;
  next_heartbeat_ = absl::InfiniteFuture();
  if (in_flight_ && in_flight_->transactional) queue_.push_front(*in_flight_);
  in_flight_.reset();
  // Only transaction messages outlive the connection; the rest is asked or
  // sent again after the next boot.
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [](const Pending& p) { return !p.transactional; }),
               queue_.end());
  reported_status0_.clear();
  for (Connector& c : connectors_) {
    c.reported_status.clear();
    c.authorizing = false;
  }
}

bool OcppChargerSimulator::connected() const {
  absl::MutexLock lock(&mu_);
  return connected_;
}

void OcppChargerSimulator::SetOnline(bool online) {
  absl::MutexLock lock(&mu_);
  online_ = online;
}

bool OcppChargerSimulator::online() const {
  absl::MutexLock lock(&mu_);
  return online_;
}

bool OcppChargerSimulator::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

void OcppChargerSimulator::Queue(std::string action, json payload, int connector,
                                 bool transactional, bool needs_transaction_id) {
  Pending p;
  p.seq = next_seq_++;
  p.action = std::move(action);
  p.payload = std::move(payload);
  p.connector = connector;
  p.transactional = transactional;
  p.needs_transaction_id = needs_transaction_id;
  queue_.push_back(std::move(p));
}

void OcppChargerSimulator::QueueBoot() {
  if (boot_queued_) return;
  boot_queued_ = true;
  json boot = {{"chargePointVendor", config_.vendor.substr(0, 20)},
               {"chargePointModel", config_.model.substr(0, 20)},
               {"firmwareVersion", "evgate-sim"}};
  if (!config_.serial.empty()) boot["chargePointSerialNumber"] = config_.serial.substr(0, 25);
  Pending p;
  p.seq = next_seq_++;
  p.action = "BootNotification";
  p.payload = std::move(boot);
  queue_.push_front(std::move(p));
}

std::optional<OcppSimCall> OcppChargerSimulator::TakeNext(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (!connected_ || in_flight_) return std::nullopt;
  if (!accepted_) {
    // Nothing but the boot before it is accepted (OCPP 1.6 section 4.2).
    if (now < boot_retry_at_) return std::nullopt;
    auto boot = std::find_if(queue_.begin(), queue_.end(),
                             [](const Pending& p) { return p.action == "BootNotification"; });
    if (boot == queue_.end()) return std::nullopt;
    in_flight_ = *boot;
    queue_.erase(boot);
    return OcppSimCall{in_flight_->seq, in_flight_->action, in_flight_->payload};
  }
  if (now >= next_heartbeat_) {
    Queue("Heartbeat", json::object(), 0, false);
    const int interval = std::max(1, std::atoi(keys_["HeartbeatInterval"].c_str()));
    next_heartbeat_ = now + absl::Seconds(interval);
  }
  if (queue_.empty()) return std::nullopt;
  Pending& next = queue_.front();
  if (next.not_before > now) return std::nullopt;
  if (next.needs_transaction_id) {
    auto id = transaction_ids_.find(next.local_transaction);
    // Its StartTransaction is not answered yet; it comes first in the queue.
    if (id == transaction_ids_.end()) return std::nullopt;
    next.payload["transactionId"] = id->second;
    next.needs_transaction_id = false;
  }
  in_flight_ = std::move(next);
  queue_.pop_front();
  return OcppSimCall{in_flight_->seq, in_flight_->action, in_flight_->payload};
}

void OcppChargerSimulator::OnResult(uint64_t seq, const OcppSimResult& result, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (!in_flight_ || in_flight_->seq != seq) return;
  Pending p = std::move(*in_flight_);
  in_flight_.reset();
  if (!result.result) {
    if (p.action == "BootNotification") {
      boot_retry_at_ = now + kBootRetry;
      queue_.push_front(std::move(p));
    } else if (p.transactional) {
      // Sent again, first: transaction messages keep their order.
      p.not_before = now + kTransactionRetry;
      queue_.push_front(std::move(p));
    } else if (p.action == "Authorize") {
      if (Connector* c = Find(p.connector)) {
        c->authorizing = false;
        c->authorize_after = now + config_.authorize_retry;
      }
    }
    return;
  }
  const json& answer = *result.result;
  if (p.action == "BootNotification") {
    const std::string status = answer.value("status", "");
    const int interval = answer.value("interval", 0);
    if (status == "Accepted") {
      accepted_ = true;
      boot_queued_ = false;
      if (interval > 0) keys_["HeartbeatInterval"] = absl::StrCat(interval);
      next_heartbeat_ =
          now + absl::Seconds(std::max(1, std::atoi(keys_["HeartbeatInterval"].c_str())));
      reported_status0_.clear();
      for (Connector& c : connectors_) c.reported_status.clear();
      QueueStatusChanges(now);
    } else {
      boot_retry_at_ = now + (interval > 0 ? absl::Seconds(interval) : kBootRetry);
      queue_.push_front(std::move(p));
    }
    return;
  }
  if (p.action == "Authorize") {
    Connector* c = Find(p.connector);
    if (c == nullptr) return;
    c->authorizing = false;
    const std::string status = answer["idTagInfo"].value("status", "");
    const std::string id_tag = p.payload.value("idTag", "");
    if (status == "Accepted" && c->vehicle && c->vehicle->id_tag == id_tag && !c->in_transaction &&
        !c->unavailable) {
      StartTransaction(*c, id_tag, now);
    } else {
      // Refused: the driver does not present it again.
      c->authorize_after = absl::InfiniteFuture();
    }
    QueueStatusChanges(now);
    return;
  }
  if (p.action == "StartTransaction") {
    transaction_ids_[p.local_transaction] = answer.value("transactionId", int64_t{0});
    Connector* c = Find(p.connector);
    if (c != nullptr && c->in_transaction && c->local_transaction == p.local_transaction) {
      c->transaction_id = transaction_ids_[p.local_transaction];
      const std::string status = answer["idTagInfo"].value("status", "");
      if (status != "Accepted" && keys_["StopTransactionOnInvalidId"] == "true") {
        StopTransaction(*c, "DeAuthorized", now);
        QueueStatusChanges(now);
      }
    }
  }
}

// ---- transactions and status -------------------------------------------------

void OcppChargerSimulator::StartTransaction(Connector& c, const std::string& id_tag,
                                            absl::Time now) {
  c.in_transaction = true;
  c.local_transaction = next_local_transaction_++;
  c.transaction_id.reset();
  c.transaction_start = now;
  c.id_tag = id_tag;
  Queue("StartTransaction",
        {{"connectorId", c.config.connector},
         {"idTag", id_tag},
         {"meterStart", static_cast<int64_t>(std::llround(c.register_wh))},
         {"timestamp", FormatOcppTime(now)}},
        c.config.connector, true);
  queue_.back().local_transaction = c.local_transaction;
  const int interval = std::atoi(keys_["MeterValueSampleInterval"].c_str());
  c.next_meter_values = interval > 0 ? now + absl::Seconds(interval) : absl::InfiniteFuture();
}

void OcppChargerSimulator::StopTransaction(Connector& c, const std::string& reason,
                                           absl::Time now) {
  if (!c.in_transaction) return;
  Queue("StopTransaction",
        {{"transactionId", 0},
         {"idTag", c.id_tag},
         {"meterStop", static_cast<int64_t>(std::llround(c.register_wh))},
         {"timestamp", FormatOcppTime(now)},
         {"reason", reason}},
        c.config.connector, true, true);
  queue_.back().local_transaction = c.local_transaction;
  c.in_transaction = false;
  c.transaction_id.reset();
  c.id_tag.clear();
  c.target_w = 0;
  c.power_w = 0;
  // A TxProfile ends with its transaction (OCPP 1.6 section 3.13.2).
  profiles_.erase(std::remove_if(profiles_.begin(), profiles_.end(),
                                 [&](const Profile& p) {
                                   return p.purpose == "TxProfile" &&
                                          p.connector == c.config.connector;
                                 }),
                  profiles_.end());
}

std::string OcppChargerSimulator::StatusOf(const Connector& c, absl::Time now) const {
  if (!c.fault.empty() || !fault0_.empty()) return "Faulted";
  if (c.unavailable && !c.in_transaction) return "Unavailable";
  if (!c.vehicle) return "Available";
  if (!c.in_transaction) return "Preparing";
  const double limit = LimitW(c, now);
  if (limit < 0) {
    // Discharging is energy transfer too (1.6 has no status of its own for it); at its SOC
    // lower limit the charger stops.
    return DischargeW(c, limit) < 0 ? "Charging" : "SuspendedEVSE";
  }
  if (c.full) return "SuspendedEV";
  // The charger offers nothing: its limit is below what it can deliver.
  if (limit < std::max(kNoPowerW, c.config.min_power_w)) return "SuspendedEVSE";
  return "Charging";
}

void OcppChargerSimulator::QueueStatus(int connector, absl::Time now) {
  std::string status;
  std::string vendor_code;
  if (connector == 0) {
    status = fault0_.empty() ? "Available" : "Faulted";
    vendor_code = fault0_;
    reported_status0_ = status + vendor_code;
  } else {
    Connector* c = Find(connector);
    if (c == nullptr) return;
    status = StatusOf(*c, now);
    vendor_code = !c->fault.empty() ? c->fault : fault0_;
    c->reported_status = status + vendor_code;
  }
  json payload = {{"connectorId", connector},
                  {"status", status},
                  {"errorCode", vendor_code.empty() ? "NoError" : "OtherError"},
                  {"timestamp", FormatOcppTime(now)}};
  if (!vendor_code.empty()) payload["vendorErrorCode"] = vendor_code.substr(0, 50);
  Queue("StatusNotification", std::move(payload), connector, false);
}

void OcppChargerSimulator::QueueStatusChanges(absl::Time now) {
  if (!accepted_) return;
  if (reported_status0_ != (fault0_.empty() ? "Available" : "Faulted") + fault0_) {
    QueueStatus(0, now);
  }
  for (Connector& c : connectors_) {
    const std::string vendor_code = !c.fault.empty() ? c.fault : fault0_;
    if (c.reported_status != StatusOf(c, now) + vendor_code) QueueStatus(c.config.connector, now);
  }
}

void OcppChargerSimulator::QueueMeterValues(Connector& c, absl::Time now, const char* context) {
  json samples = json::array();
  const std::array<double, 3> ac = AcCurrentLocked(c);
  for (absl::string_view m : absl::StrSplit(keys_["MeterValuesSampledData"], ',')) {
    const std::string measurand(absl::StripAsciiWhitespace(m));
    if (measurand == "Energy.Active.Import.Register") {
      samples.push_back(
          Sample(absl::StrFormat("%.0f", c.register_wh), measurand.c_str(), "Wh", context));
    } else if (measurand == "Energy.Active.Export.Register" && c.config.bidirectional) {
      samples.push_back(
          Sample(absl::StrFormat("%.0f", c.export_register_wh), measurand.c_str(), "Wh", context));
    } else if (measurand == "Power.Active.Import") {
      samples.push_back(Sample(absl::StrFormat("%.0f", std::max(0.0, c.power_w)), measurand.c_str(),
                               "W", context));
    } else if (measurand == "Power.Active.Export" && c.config.bidirectional) {
      samples.push_back(Sample(absl::StrFormat("%.0f", std::max(0.0, -c.power_w)),
                               measurand.c_str(), "W", context));
    } else if (measurand == "Power.Offered") {
      samples.push_back(
          Sample(absl::StrFormat("%.0f", LimitW(c, now)), measurand.c_str(), "W", context));
    } else if (measurand == "SoC" && c.vehicle) {
      json soc = Sample(absl::StrFormat("%.0f", SocLocked(c)), "SoC", "Percent", context);
      soc["location"] = "EV";
      samples.push_back(std::move(soc));
    } else if (measurand == "Current.Import") {
      static constexpr const char* kPhases[] = {"L1", "L2", "L3"};
      for (int p = 0; p < c.config.phases && p < 3; ++p) {
        json current = Sample(absl::StrFormat("%.1f", ac[p]), "Current.Import", "A", context);
        current["phase"] = kPhases[p];
        samples.push_back(std::move(current));
      }
    }
  }
  if (samples.empty()) return;
  json payload = {
      {"connectorId", c.config.connector},
      {"meterValue",
       json::array({{{"timestamp", FormatOcppTime(now)}, {"sampledValue", std::move(samples)}}})}};
  if (c.in_transaction) {
    payload["transactionId"] = 0;
    Queue("MeterValues", std::move(payload), c.config.connector, true, true);
    queue_.back().local_transaction = c.local_transaction;
  } else {
    Queue("MeterValues", std::move(payload), c.config.connector, false);
  }
}

double OcppChargerSimulator::SocLocked(const Connector& c) const {
  if (!c.vehicle) return 0;
  const double start = c.vehicle->soc_at_plug_in_pct;
  const double to_full = std::max(1.0, c.vehicle->energy_to_full_wh);
  return std::clamp(start + (100 - start) * c.delivered_wh / to_full, 0.0, 100.0);
}

double OcppChargerSimulator::DischargeW(const Connector& c, double limit_w) const {
  if (!c.config.bidirectional || limit_w >= 0 || !c.vehicle) return 0;
  if (SocLocked(c) <= c.config.soc_min_pct) return 0;
  double w = std::max(limit_w, -c.config.max_discharge_power_w);
  if (c.vehicle->max_power_w > 0) w = std::max(w, -c.vehicle->max_power_w);
  if (c.island_load_w) {
    // Forming an island: the loads decide, not the limit (which only caps).
    w = std::max(w, -std::max(0.0, *c.island_load_w));
    return w;
  }
  return -w < std::max(kNoPowerW, c.config.min_power_w) ? 0 : w;
}

void OcppChargerSimulator::SetIslandLoad(int connector, std::optional<double> load_w) {
  absl::MutexLock lock(&mu_);
  if (Connector* c = Find(connector)) c->island_load_w = load_w;
}

std::array<double, 3> OcppChargerSimulator::AcCurrentLocked(const Connector& c) const {
  std::array<double, 3> a{};
  const int phases = std::clamp(c.config.phases, 1, 3);
  // Charging draws DC / efficiency from the AC side; discharging feeds DC x efficiency back.
  const double efficiency = std::max(0.01, c.config.efficiency);
  const double ac_w = c.power_w >= 0 ? c.power_w / efficiency : c.power_w * efficiency;
  for (int p = 0; p < phases; ++p) a[p] = ac_w / (phases * config_.voltage_v);
  return a;
}

// ---- physics -------------------------------------------------------------------

void OcppChargerSimulator::Step(absl::Time now) {
  absl::MutexLock lock(&mu_);
  const double dt_h = last_step_ == absl::InfinitePast()
                          ? 0.0
                          : std::max(0.0, absl::ToDoubleHours(now - last_step_));
  last_step_ = now;
  std::vector<double> demand(connectors_.size(), 0.0);
  double total = 0;
  for (size_t i = 0; i < connectors_.size(); ++i) {
    Connector& c = connectors_[i];
    // Energy of the last interval, at the power it had.
    if (c.power_w >= 0) {
      c.register_wh += c.power_w * dt_h;
    } else {
      c.export_register_wh -= c.power_w * dt_h;
    }
    c.delivered_wh += c.power_w * dt_h;
    if (c.vehicle) c.full = c.delivered_wh >= c.vehicle->energy_to_full_wh;
    const bool can_transfer = c.in_transaction && c.vehicle && c.fault.empty() && fault0_.empty();
    if (!can_transfer) continue;
    const double limit = LimitW(c, now);
    if (limit < 0) {
      // Discharge is not part of the station's shared maximum (it frees power, not uses it).
      demand[i] = DischargeW(c, limit);
      continue;
    }
    if (c.full) continue;
    double want = std::min(limit, c.config.max_power_w);
    if (c.vehicle->max_power_w > 0) want = std::min(want, c.vehicle->max_power_w);
    if (want < std::max(kNoPowerW, c.config.min_power_w)) want = 0;
    demand[i] = want;
    total += want;
  }
  double cap = config_.station_max_power_w > 0 ? config_.station_max_power_w : total;
  if (std::optional<double> station = StationLimitW(now)) cap = std::min(cap, *station);
  const double scale = total > cap && total > 0 ? std::max(0.0, cap) / total : 1.0;
  for (size_t i = 0; i < connectors_.size(); ++i) {
    Connector& c = connectors_[i];
    c.target_w = demand[i] > 0 ? demand[i] * scale : demand[i];
    // The power slews towards the target: from 0 to the connector's maximum
    // (or back) in ramp_time, as a DC charger's power modules do.
    const double ramp_s = std::max(1e-3, absl::ToDoubleSeconds(config_.ramp_time));
    const double step = c.config.max_power_w / ramp_s * dt_h * 3600;
    if (c.power_w < c.target_w) {
      c.power_w = std::min(c.target_w, c.power_w + step);
    } else {
      c.power_w = std::max(c.target_w, c.power_w - step);
    }
    if (c.in_transaction && now >= c.next_meter_values) {
      QueueMeterValues(c, now, "Sample.Periodic");
      const int interval = std::atoi(keys_["MeterValueSampleInterval"].c_str());
      c.next_meter_values = interval > 0 ? now + absl::Seconds(interval) : absl::InfiniteFuture();
    }
    if (accepted_ && c.vehicle && !c.in_transaction && !c.vehicle->id_tag.empty() &&
        !c.authorizing && now >= c.authorize_after && !c.unavailable && c.fault.empty()) {
      c.authorizing = true;
      Queue("Authorize", {{"idTag", c.vehicle->id_tag}}, c.config.connector, false);
    }
  }
  QueueStatusChanges(now);
}

absl::Status OcppChargerSimulator::PlugIn(int connector, OcppSimVehicle vehicle, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Connector* c = Find(connector);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("no connector ", connector));
  if (c->vehicle) {
    return absl::FailedPreconditionError(
        absl::StrCat("connector ", connector, " already has a vehicle"));
  }
  if (vehicle.energy_to_full_wh <= 0) vehicle.energy_to_full_wh = 40000;
  c->vehicle = std::move(vehicle);
  c->delivered_wh = 0;
  c->full = false;
  c->authorize_after = now;
  QueueStatusChanges(now);
  return absl::OkStatus();
}

absl::Status OcppChargerSimulator::Unplug(int connector, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Connector* c = Find(connector);
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("no connector ", connector));
  if (!c->vehicle) {
    return absl::FailedPreconditionError(absl::StrCat("no vehicle at connector ", connector));
  }
  StopTransaction(*c, "EVDisconnected", now);
  c->vehicle.reset();
  c->full = false;
  c->authorizing = false;
  c->power_w = 0;
  c->target_w = 0;
  QueueStatusChanges(now);
  return absl::OkStatus();
}

absl::Status OcppChargerSimulator::SetFault(int connector, const std::string& vendor_code,
                                            bool active, absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::string* fault = &fault0_;
  if (connector != 0) {
    Connector* c = Find(connector);
    if (c == nullptr) return absl::NotFoundError(absl::StrCat("no connector ", connector));
    fault = &c->fault;
  }
  if (active) {
    *fault = vendor_code;
  } else if (*fault == vendor_code || vendor_code.empty()) {
    fault->clear();
  }
  QueueStatusChanges(now);
  return absl::OkStatus();
}

std::optional<OcppSimConnectorView> OcppChargerSimulator::Describe(int connector,
                                                                   absl::Time now) const {
  absl::MutexLock lock(&mu_);
  const Connector* c = Find(connector);
  if (c == nullptr) return std::nullopt;
  OcppSimConnectorView v;
  v.connector = connector;
  v.status = StatusOf(*c, now);
  v.vendor_error_code = !c->fault.empty() ? c->fault : fault0_;
  if (!v.vendor_error_code.empty()) v.error_code = "OtherError";
  v.limit_w = LimitW(*c, now);
  v.power_w = c->power_w;
  v.energy_register_wh = c->register_wh;
  v.export_register_wh = c->export_register_wh;
  v.transaction_id = c->transaction_id;
  v.transaction_pending = c->in_transaction && !c->transaction_id;
  v.vehicle = c->vehicle;
  v.session_energy_wh = c->delivered_wh;
  v.soc_pct = SocLocked(*c);
  v.full = c->full;
  return v;
}

std::array<double, 3> OcppChargerSimulator::AcCurrent(int connector) const {
  absl::MutexLock lock(&mu_);
  const Connector* c = Find(connector);
  if (c == nullptr) return {};
  return AcCurrentLocked(*c);
}

// ---- smart charging ------------------------------------------------------------

std::optional<double> OcppChargerSimulator::ProfileLimitW(const Profile& p, const Connector* c,
                                                          absl::Time t) const {
  if (p.valid_from && t < *p.valid_from) return std::nullopt;
  if (p.valid_to && t >= *p.valid_to) return std::nullopt;
  absl::Time start = p.start_schedule.value_or(p.received);
  if (p.kind == "Relative") {
    start = c != nullptr && c->in_transaction ? c->transaction_start : t;
  } else if (p.kind == "Recurring") {
    const absl::Duration every = p.recurrency == "Weekly" ? absl::Hours(24 * 7) : absl::Hours(24);
    if (t < start) return std::nullopt;
    start += every * std::floor((t - start) / every);
  }
  if (t < start) return std::nullopt;
  const double elapsed_s = absl::ToDoubleSeconds(t - start);
  if (p.duration_s && elapsed_s >= *p.duration_s) return std::nullopt;
  std::optional<double> limit;
  int phases = 3;
  for (size_t i = 0; i < p.periods.size(); ++i) {
    if (p.periods[i].first <= elapsed_s) {
      limit = p.periods[i].second;
      phases = p.number_phases[i];
    }
  }
  if (!limit) return std::nullopt;
  if (p.rate_unit == "A") return *limit * config_.voltage_v * phases;
  return *limit;
}

double OcppChargerSimulator::LimitW(const Connector& c, absl::Time t) const {
  std::optional<double> limit;
  // A TxProfile of the running transaction wins over the default profiles.
  int best_level = -1;
  if (c.in_transaction) {
    for (const Profile& p : profiles_) {
      if (p.purpose != "TxProfile" || p.connector != c.config.connector) continue;
      if (p.transaction_id && c.transaction_id && *p.transaction_id != *c.transaction_id) continue;
      if (p.stack_level < best_level) continue;
      if (std::optional<double> l = ProfileLimitW(p, &c, t)) {
        best_level = p.stack_level;
        limit = l;
      }
    }
  }
  if (!limit) {
    bool best_on_connector = false;
    for (const Profile& p : profiles_) {
      if (p.purpose != "TxDefaultProfile") continue;
      if (p.connector != 0 && p.connector != c.config.connector) continue;
      const bool on_connector = p.connector != 0;
      // Higher stack level wins; at the same level the connector's own.
      if (p.stack_level < best_level ||
          (p.stack_level == best_level && (best_on_connector || !on_connector))) {
        continue;
      }
      if (std::optional<double> l = ProfileLimitW(p, &c, t)) {
        best_level = p.stack_level;
        best_on_connector = on_connector;
        limit = l;
      }
    }
  }
  double w = std::min(limit.value_or(c.config.max_power_w), c.config.max_power_w);
  if (config_.station_max_power_w > 0) w = std::min(w, config_.station_max_power_w);
  if (std::optional<double> station = StationLimitW(t)) w = std::min(w, *station);
  // A negative limit asks a bidirectional connector to discharge; others take it as 0.
  if (w < 0 && !c.config.bidirectional) return 0;
  return w;
}

std::optional<double> OcppChargerSimulator::StationLimitW(absl::Time t) const {
  std::optional<double> limit;
  int best_level = -1;
  for (const Profile& p : profiles_) {
    if (p.purpose != "ChargePointMaxProfile" || p.stack_level < best_level) continue;
    if (std::optional<double> l = ProfileLimitW(p, nullptr, t)) {
      best_level = p.stack_level;
      limit = l;
    }
  }
  return limit;
}

json OcppChargerSimulator::OnSetChargingProfile(const json& req, absl::Time now) {
  const int connector = req.value("connectorId", -1);
  const json& cp = req["csChargingProfiles"];
  const json rejected = {{"status", "Rejected"}};
  Profile p;
  p.id = cp.value("chargingProfileId", 0);
  p.connector = connector;
  p.stack_level = cp.value("stackLevel", 0);
  p.purpose = cp.value("chargingProfilePurpose", "");
  p.kind = cp.value("chargingProfileKind", "");
  p.recurrency = cp.value("recurrencyKind", "Daily");
  p.received = now;
  if (cp.contains("transactionId")) p.transaction_id = cp["transactionId"].get<int64_t>();
  p.valid_from = TimeField(cp, "validFrom");
  p.valid_to = TimeField(cp, "validTo");
  const json& schedule = cp["chargingSchedule"];
  p.start_schedule = TimeField(schedule, "startSchedule");
  if (schedule.contains("duration")) p.duration_s = schedule["duration"].get<int>();
  p.rate_unit = schedule.value("chargingRateUnit", "");
  for (const json& period : schedule["chargingSchedulePeriod"]) {
    p.periods.emplace_back(period.value("startPeriod", 0), period.value("limit", 0.0));
    p.number_phases.push_back(period.value("numberPhases", 3));
  }
  if (p.stack_level > std::atoi(keys_["ChargeProfileMaxStackLevel"].c_str())) return rejected;
  if (p.periods.empty() ||
      static_cast<int>(p.periods.size()) > std::atoi(keys_["ChargingScheduleMaxPeriods"].c_str())) {
    return rejected;
  }
  if (connector != 0 && Find(connector) == nullptr) return rejected;
  if (p.purpose == "ChargePointMaxProfile" && connector != 0) return rejected;
  if (p.purpose == "TxProfile") {
    const Connector* c = connector == 0 ? nullptr : Find(connector);
    if (c == nullptr || !c->in_transaction) return rejected;
    if (p.transaction_id && c->transaction_id && *p.transaction_id != *c->transaction_id) {
      return rejected;
    }
  }
  // The same id, or the same purpose and stack level on the connector, is
  // replaced (OCPP 1.6 section 3.13.2).
  profiles_.erase(std::remove_if(profiles_.begin(), profiles_.end(),
                                 [&](const Profile& old) {
                                   return old.id == p.id || (old.connector == p.connector &&
                                                             old.purpose == p.purpose &&
                                                             old.stack_level == p.stack_level);
                                 }),
                  profiles_.end());
  if (static_cast<int>(profiles_.size()) >=
      std::atoi(keys_["MaxChargingProfilesInstalled"].c_str())) {
    return rejected;
  }
  profiles_.push_back(std::move(p));
  return {{"status", "Accepted"}};
}

json OcppChargerSimulator::OnClearChargingProfile(const json& req) {
  const size_t before = profiles_.size();
  profiles_.erase(
      std::remove_if(
          profiles_.begin(), profiles_.end(),
          [&](const Profile& p) {
            if (req.contains("id")) return p.id == req["id"].get<int>();
            if (req.contains("connectorId") && p.connector != req["connectorId"].get<int>()) {
              return false;
            }
            if (req.contains("chargingProfilePurpose") &&
                p.purpose != req["chargingProfilePurpose"].get<std::string>()) {
              return false;
            }
            if (req.contains("stackLevel") && p.stack_level != req["stackLevel"].get<int>()) {
              return false;
            }
            return true;
          }),
      profiles_.end());
  return {{"status", profiles_.size() < before ? "Accepted" : "Unknown"}};
}

json OcppChargerSimulator::OnGetCompositeSchedule(const json& req, absl::Time now) {
  const int connector = req.value("connectorId", -1);
  const int duration = std::max(1, req.value("duration", 0));
  const std::string unit = req.value("chargingRateUnit", "W");
  const Connector* c = connector == 0 ? nullptr : Find(connector);
  if (connector != 0 && c == nullptr) return {{"status", "Rejected"}};
  const absl::Time end = now + absl::Seconds(duration);
  // Every moment in the window where a limit may change.
  std::set<absl::Time> moments = {now};
  auto add = [&](absl::Time t) {
    if (t > now && t < end) moments.insert(t);
  };
  for (const Profile& p : profiles_) {
    if (p.valid_from) add(*p.valid_from);
    if (p.valid_to) add(*p.valid_to);
    absl::Time start = p.start_schedule.value_or(p.received);
    if (p.kind == "Relative")
      start = c != nullptr && c->in_transaction ? c->transaction_start : now;
    std::vector<absl::Time> starts = {start};
    if (p.kind == "Recurring") {
      const absl::Duration every = p.recurrency == "Weekly" ? absl::Hours(24 * 7) : absl::Hours(24);
      if (now > start) start += every * std::floor((now - start) / every);
      starts = {start, start + every};
    }
    for (absl::Time s : starts) {
      for (const auto& period : p.periods) add(s + absl::Seconds(period.first));
      if (p.duration_s) add(s + absl::Seconds(*p.duration_s));
    }
  }
  const double per_amp_w = config_.voltage_v * 3;
  json periods = json::array();
  std::optional<double> last;
  for (absl::Time t : moments) {
    double w = c != nullptr ? LimitW(*c, t)
                            : std::min(StationLimitW(t).value_or(config_.station_max_power_w),
                                       config_.station_max_power_w);
    const double limit = Tenths(unit == "A" ? w / per_amp_w : w);
    if (last && *last == limit) continue;
    last = limit;
    periods.push_back(
        {{"startPeriod", static_cast<int>(absl::ToInt64Seconds(t - now))}, {"limit", limit}});
  }
  return {{"status", "Accepted"},
          {"connectorId", connector},
          {"scheduleStart", FormatOcppTime(now)},
          {"chargingSchedule",
           {{"duration", duration},
            {"startSchedule", FormatOcppTime(now)},
            {"chargingRateUnit", unit},
            {"chargingSchedulePeriod", std::move(periods)}}}};
}

// ---- the Central System's calls ------------------------------------------------

json OcppChargerSimulator::OnGetConfiguration(const json& req) {
  json known = json::array();
  json unknown = json::array();
  auto add = [&](const std::string& key) {
    auto it = keys_.find(key);
    if (it == keys_.end()) {
      unknown.push_back(key);
      return;
    }
    bool read_only = key == "NumberOfConnectors";
    for (const Key& k : kKeys) {
      if (key == k.name) read_only = k.read_only;
    }
    known.push_back({{"key", key}, {"readonly", read_only}, {"value", it->second}});
  };
  if (req.contains("key") && !req["key"].empty()) {
    for (const json& key : req["key"]) add(key.get<std::string>());
  } else {
    for (const auto& [key, value] : keys_) add(key);
  }
  json answer = {{"configurationKey", known}};
  if (!unknown.empty()) answer["unknownKey"] = unknown;
  return answer;
}

json OcppChargerSimulator::OnChangeConfiguration(const json& req, absl::Time now) {
  const std::string key = req.value("key", "");
  const std::string value = req.value("value", "");
  auto it = keys_.find(key);
  if (it == keys_.end()) return {{"status", "NotSupported"}};
  for (const Key& k : kKeys) {
    if (key == k.name && k.read_only) return {{"status", "Rejected"}};
  }
  if (key == "NumberOfConnectors") return {{"status", "Rejected"}};
  int seconds = 0;
  if (IsIntervalKey(key) && (!absl::SimpleAtoi(value, &seconds) || seconds < 0)) {
    return {{"status", "Rejected"}};
  }
  it->second = value;
  if (key == "HeartbeatInterval" && accepted_) {
    next_heartbeat_ = now + absl::Seconds(std::max(1, seconds));
  }
  return {{"status", "Accepted"}};
}

json OcppChargerSimulator::OnTriggerMessage(const json& req, absl::Time now) {
  const std::string what = req.value("requestedMessage", "");
  const bool has_connector = req.contains("connectorId");
  const int connector = req.value("connectorId", 0);
  if (has_connector && connector != 0 && Find(connector) == nullptr) {
    return {{"status", "Rejected"}};
  }
  if (what == "BootNotification") {
    QueueBoot();
    boot_retry_at_ = now;
  } else if (what == "Heartbeat") {
    Queue("Heartbeat", json::object(), 0, false);
  } else if (what == "StatusNotification") {
    if (!has_connector || connector == 0) QueueStatus(0, now);
    for (Connector& c : connectors_) {
      if (!has_connector || connector == 0 || c.config.connector == connector) {
        QueueStatus(c.config.connector, now);
      }
    }
  } else if (what == "MeterValues") {
    for (Connector& c : connectors_) {
      if (!has_connector || connector == 0 || c.config.connector == connector) {
        QueueMeterValues(c, now, "Trigger");
      }
    }
  } else if (what == "DiagnosticsStatusNotification") {
    Queue("DiagnosticsStatusNotification", {{"status", "Idle"}}, 0, false);
  } else if (what == "FirmwareStatusNotification") {
    Queue("FirmwareStatusNotification", {{"status", "Idle"}}, 0, false);
  } else {
    return {{"status", "NotImplemented"}};
  }
  return {{"status", "Accepted"}};
}

json OcppChargerSimulator::OnRemoteStart(const json& req, absl::Time now) {
  Connector* c = nullptr;
  if (req.contains("connectorId")) {
    c = Find(req["connectorId"].get<int>());
  } else {
    for (Connector& candidate : connectors_) {
      if (candidate.vehicle && !candidate.in_transaction) {
        c = &candidate;
        break;
      }
    }
  }
  if (c == nullptr || !c->vehicle || c->in_transaction || c->unavailable || !c->fault.empty()) {
    return {{"status", "Rejected"}};
  }
  StartTransaction(*c, req.value("idTag", ""), now);
  if (req.contains("chargingProfile")) {
    json set = {{"connectorId", c->config.connector},
                {"csChargingProfiles", req["chargingProfile"]}};
    set["csChargingProfiles"].erase("transactionId");
    (void)OnSetChargingProfile(set, now);
  }
  QueueStatusChanges(now);
  return {{"status", "Accepted"}};
}

json OcppChargerSimulator::OnRemoteStop(const json& req, absl::Time now) {
  const int64_t id = req.value("transactionId", int64_t{-1});
  for (Connector& c : connectors_) {
    if (c.in_transaction && c.transaction_id && *c.transaction_id == id) {
      StopTransaction(c, "Remote", now);
      QueueStatusChanges(now);
      return {{"status", "Accepted"}};
    }
  }
  return {{"status", "Rejected"}};
}

std::variant<json, ocpp::CallError> OcppChargerSimulator::Handle(const ocpp::Call& call,
                                                                 absl::Time now) {
  absl::MutexLock lock(&mu_);
  const json& req = call.payload;
  const std::string& action = call.action;
  if (action == "GetConfiguration") return OnGetConfiguration(req);
  if (action == "ChangeConfiguration") return OnChangeConfiguration(req, now);
  if (action == "TriggerMessage") return OnTriggerMessage(req, now);
  if (action == "SetChargingProfile") return OnSetChargingProfile(req, now);
  if (action == "ClearChargingProfile") return OnClearChargingProfile(req);
  if (action == "GetCompositeSchedule") return OnGetCompositeSchedule(req, now);
  if (action == "RemoteStartTransaction") return OnRemoteStart(req, now);
  if (action == "RemoteStopTransaction") return OnRemoteStop(req, now);
  if (action == "ClearCache") return json{{"status", "Accepted"}};
  if (action == "DataTransfer") return json{{"status", "UnknownVendorId"}};
  if (action == "Reset") {
    const std::string reason = req.value("type", "") == "Hard" ? "HardReset" : "SoftReset";
    for (Connector& c : connectors_) StopTransaction(c, reason, now);
    // Boots again (on the same connection): the stops go out once accepted.
    accepted_ = false;
    next_heartbeat_ = absl::InfiniteFuture();
    QueueBoot();
    boot_retry_at_ = now;
    return json{{"status", "Accepted"}};
  }
  if (action == "ChangeAvailability") {
    const int connector = req.value("connectorId", -1);
    const bool inoperative = req.value("type", "") == "Inoperative";
    bool busy = false;
    bool found = false;
    for (Connector& c : connectors_) {
      if (connector != 0 && c.config.connector != connector) continue;
      found = true;
      c.unavailable = inoperative;
      busy = busy || c.in_transaction;
    }
    if (!found) return json{{"status", "Rejected"}};
    QueueStatusChanges(now);
    return json{{"status", busy && inoperative ? "Scheduled" : "Accepted"}};
  }
  if (action == "UnlockConnector") {
    Connector* c = Find(req.value("connectorId", -1));
    if (c == nullptr) return json{{"status", "NotSupported"}};
    StopTransaction(*c, "UnlockCommand", now);
    QueueStatusChanges(now);
    return json{{"status", "Unlocked"}};
  }
  return ocpp::MakeCallError(call.message_id, ocpp::RpcErrorCode::kNotSupported,
                             absl::StrCat("the simulated charger does not take ", action));
}

}  // namespace evgate::sim
