#include "services/ocpp_bridge/central_system.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/ocpp_bridge/ocpp16_enums.h"

namespace evgate::ocpp {
namespace {

using google::protobuf::util::TimeUtil;
using nlohmann::json;

constexpr log::Logger kLog("ocpp_bridge");

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

// The keys read at boot.
constexpr const char* kConfigurationKeys[] = {"SupportedFeatureProfiles",
                                              "ChargeProfileMaxStackLevel",
                                              "ChargingScheduleAllowedChargingRateUnit",
                                              "MeterValuesSampledData", "MeterValueSampleInterval"};

// Actions only a Central System sends: a charge point sending one gets
// NotSupported.
bool IsCentralSystemAction(absl::string_view action) {
  static constexpr absl::string_view kActions[] = {"CancelReservation",
                                                   "ChangeAvailability",
                                                   "ChangeConfiguration",
                                                   "ClearCache",
                                                   "ClearChargingProfile",
                                                   "GetCompositeSchedule",
                                                   "GetConfiguration",
                                                   "GetDiagnostics",
                                                   "GetLocalListVersion",
                                                   "RemoteStartTransaction",
                                                   "RemoteStopTransaction",
                                                   "ReserveNow",
                                                   "Reset",
                                                   "SendLocalList",
                                                   "SetChargingProfile",
                                                   "TriggerMessage",
                                                   "UnlockConnector",
                                                   "UpdateFirmware"};
  return std::find(std::begin(kActions), std::end(kActions), action) != std::end(kActions);
}

std::string OutcomeText(const CallOutcome& outcome) {
  if (outcome.error) return absl::StrCat(outcome.error->code_name, " ", outcome.error->description);
  if (!outcome.status.ok()) return outcome.status.ToString();
  return outcome.result ? outcome.result->value("status", std::string("answered")) : "answered";
}

std::optional<int> ParseInt(const std::string& text) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value)) return std::nullopt;
  return value;
}

std::vector<std::string> SplitList(const std::string& text) {
  return absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipEmpty());
}

CallError Internal(absl::string_view why) {
  return MakeCallError("", RpcErrorCode::kInternalError, std::string(why));
}

}  // namespace

CentralSystem::CentralSystem(const site::SiteConfig& site, const Clock& clock,
                             CentralSystemOptions options, IdTagAuthorizer* authorizer,
                             TransactionBook* book)
    : clock_(clock),
      options_(std::move(options)),
      authorizer_(authorizer),
      book_(book),
      security_profile_(site.ocpp.local ? site.ocpp.local->security_profile : 0) {
  absl::MutexLock lock(&mu_);
  for (const site::DeviceConfig& device : site.devices) {
    if (!device.charge_point_id) continue;
    Charger& charger = chargers_[*device.charge_point_id];
    charger.info.set_charge_point_id(*device.charge_point_id);
    charger.info.set_device_id(device.id);
    charger.info.set_connection_state(v1::CHARGE_POINT_CONNECTION_STATE_DISCONNECTED);
    for (const site::StationConfig& station : site.stations) {
      if (station.device != device.id) continue;
      for (const site::EvseConfig& evse : station.evses) charger.evses[evse.connector] = evse.id;
    }
  }
}

RpcEndpoint::CallHandler CentralSystem::OnConnected(std::shared_ptr<ChargePointLink> link) {
  const std::string identity = link->identity();
  After after;
  {
    absl::MutexLock lock(&mu_);
    auto it = chargers_.find(identity);
    if (it == chargers_.end()) {
      // The server accepts only configured identities; this is a bug, not a
      // charger to serve.
      kLog.Error("%s connected but is not configured; closing", identity);
      after.push_back([link] { link->Close(1008, "not a configured charge point"); });
    } else {
      Charger& charger = it->second;
      charger.link = link;
      charger.link_since_monotonic = clock_.MonotonicNow();
      charger.boot_seen_on_link = false;
      charger.boot_requested_on_link = false;
      v1::ChargePoint& info = charger.info;
      info.set_connection_state(v1::CHARGE_POINT_CONNECTION_STATE_CONNECTED);
      info.set_remote_address(link->remote());
      *info.mutable_connected_since() = ToProto(clock_.Now());
      info.set_protocol_version(v1::OCPP_VERSION_1_6J);
      info.set_security_profile(security_profile_);
      kLog.Info("%s connected from %s", identity, link->remote());
      // A reconnect without a reboot: ask for the state it may have changed
      // while we could not hear it.
      NotifyChanged(identity, after);
      if (charger.configured && info.registration_status() == v1::REGISTRATION_STATUS_ACCEPTED) {
        RequestState(charger, after);
        NotifyAccepted(identity, after);
      }
    }
  }
  for (auto& f : after) f();
  const ChargePointLink* raw = link.get();
  return [this, identity, raw](const ocpp::Call& call) {
    std::variant<nlohmann::json, ocpp::CallError> answer = Handle(identity, raw, call);
    const auto* error = std::get_if<ocpp::CallError>(&answer);
    CountMessage(identity, "in", call.action,
                 error == nullptr ? "ok" : ocpp::RpcErrorCodeName(error->code));
    return answer;
  };
}

void CentralSystem::OnDisconnected(const ChargePointLink& link, absl::string_view why) {
  After after;
  {
    absl::MutexLock lock(&mu_);
    auto it = chargers_.find(link.identity());
    if (it == chargers_.end()) return;
    Charger& charger = it->second;
    if (charger.link.get() != &link) return;  // already replaced by a newer link
    charger.link.reset();
    charger.info.set_connection_state(v1::CHARGE_POINT_CONNECTION_STATE_DISCONNECTED);
    charger.info.clear_connected_since();
    charger.info.clear_remote_address();
    kLog.Info("%s disconnected: %s", link.identity(), why);
    NotifyChanged(link.identity(), after);
  }
  for (auto& f : after) f();
}

void CentralSystem::NotifyChanged(const std::string& identity, After& after) {
  if (listener_ == nullptr) return;
  after.push_back([this, identity] { listener_->OnChargePointChanged(identity); });
}

void CentralSystem::NotifyAccepted(const std::string& identity, After& after) {
  if (listener_ == nullptr) return;
  after.push_back([this, identity] { listener_->OnAccepted(identity); });
}

std::optional<v1::ChargePoint> CentralSystem::GetChargePoint(
    const std::string& charge_point_id) const {
  absl::MutexLock lock(&mu_);
  auto it = chargers_.find(charge_point_id);
  if (it == chargers_.end()) return std::nullopt;
  return it->second.info;
}

bool CentralSystem::IsAccepted(const std::string& charge_point_id) const {
  absl::MutexLock lock(&mu_);
  auto it = chargers_.find(charge_point_id);
  return it != chargers_.end() && it->second.link != nullptr &&
         it->second.info.registration_status() == v1::REGISTRATION_STATUS_ACCEPTED;
}

void CentralSystem::OnRefused(absl::string_view identity, absl::string_view remote, int http_status,
                              absl::string_view why) {
  if (identity.empty()) return;  // refused before it said who it is
  absl::MutexLock lock(&mu_);
  auto it = chargers_.find(std::string(identity));
  if (it != chargers_.end()) {
    // A configured charger (or someone using its name) failed to
    // authenticate. A live connection of the charger stays as it is.
    if (it->second.link == nullptr) {
      it->second.info.set_connection_state(v1::CHARGE_POINT_CONNECTION_STATE_REJECTED);
      it->second.info.set_remote_address(std::string(remote));
    }
    return;
  }
  // Unknown identity: remember the most recent ones, each once.
  for (auto u = unknown_.begin(); u != unknown_.end(); ++u) {
    if (u->charge_point_id() == identity) {
      unknown_.erase(u);
      break;
    }
  }
  v1::ChargePoint info;
  info.set_charge_point_id(std::string(identity));
  info.set_connection_state(v1::CHARGE_POINT_CONNECTION_STATE_REJECTED);
  info.set_remote_address(std::string(remote));
  *info.mutable_last_message_at() = ToProto(clock_.Now());
  unknown_.push_back(std::move(info));
  while (unknown_.size() > options_.max_unknown_identities) unknown_.pop_front();
  (void)http_status;
  (void)why;  // the server has logged both
}

void CentralSystem::Tick() {
  After after;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.MonotonicNow();
    for (auto& [identity, charger] : chargers_) {
      if (charger.link == nullptr || charger.boot_seen_on_link || charger.boot_requested_on_link) {
        continue;
      }
      if (now - charger.link_since_monotonic < options_.boot_wait) continue;
      charger.boot_requested_on_link = true;
      kLog.Info("%s sent no BootNotification within %s of connecting; asking for one", identity,
                absl::FormatDuration(options_.boot_wait));
      after.push_back([this, link = charger.link, id = identity] {
        Send(link, "TriggerMessage", {{"requestedMessage", "BootNotification"}},
             [id](CallOutcome outcome) {
               kLog.Info("%s: TriggerMessage BootNotification: %s", id, OutcomeText(outcome));
             });
      });
    }
  }
  for (auto& f : after) f();
}

std::vector<v1::ChargePoint> CentralSystem::ListChargePoints() const {
  std::vector<v1::ChargePoint> configured;
  std::vector<v1::ChargePoint> unknown;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [identity, charger] : chargers_) configured.push_back(charger.info);
    unknown.assign(unknown_.begin(), unknown_.end());
  }
  auto by_id = [](const v1::ChargePoint& a, const v1::ChargePoint& b) {
    return a.charge_point_id() < b.charge_point_id();
  };
  std::sort(configured.begin(), configured.end(), by_id);
  std::sort(unknown.begin(), unknown.end(), by_id);
  configured.insert(configured.end(), unknown.begin(), unknown.end());
  return configured;
}

absl::Status CentralSystem::Call(const std::string& charge_point_id, std::string action,
                                 json payload, RpcEndpoint::Done done) {
  std::shared_ptr<ChargePointLink> link;
  {
    absl::MutexLock lock(&mu_);
    auto it = chargers_.find(charge_point_id);
    if (it == chargers_.end()) {
      return absl::NotFoundError(
          absl::StrCat("charge point '", charge_point_id, "' is not configured in site.yaml"));
    }
    link = it->second.link;
  }
  if (link == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("charge point '", charge_point_id, "' is not connected"));
  }
  Send(link, std::move(action), std::move(payload), std::move(done));
  return absl::OkStatus();
}

std::optional<MeterReading> CentralSystem::LatestMeterReading(const std::string& charge_point_id,
                                                              int connector_id) const {
  absl::MutexLock lock(&mu_);
  auto it = chargers_.find(charge_point_id);
  if (it == chargers_.end()) return std::nullopt;
  auto reading = it->second.readings.find(connector_id);
  if (reading == it->second.readings.end()) return std::nullopt;
  return reading->second;
}

std::optional<ChargerConfiguration> CentralSystem::Configuration(
    const std::string& charge_point_id) const {
  absl::MutexLock lock(&mu_);
  auto it = chargers_.find(charge_point_id);
  if (it == chargers_.end() || !it->second.configured) return std::nullopt;
  return it->second.configuration;
}

void CentralSystem::Send(const std::shared_ptr<ChargePointLink>& link, std::string action,
                         json payload, RpcEndpoint::Done done) {
  const std::string identity = link->identity();
  {
    absl::MutexLock lock(&mu_);
    auto it = chargers_.find(identity);
    if (it != chargers_.end()) {
      it->second.info.set_pending_calls(it->second.info.pending_calls() + 1);
    }
  }
  link->Call(action, std::move(payload),
             [this, identity, action, done = std::move(done)](CallOutcome outcome) {
               CountMessage(identity, "out", action,
                            outcome.result  ? "ok"
                            : outcome.error ? ocpp::RpcErrorCodeName(outcome.error->code)
                            : outcome.status.code() == absl::StatusCode::kDeadlineExceeded
                                ? "timeout"
                                : "closed");
               {
                 absl::MutexLock lock(&mu_);
                 auto it = chargers_.find(identity);
                 if (it != chargers_.end() && it->second.info.pending_calls() > 0) {
                   it->second.info.set_pending_calls(it->second.info.pending_calls() - 1);
                 }
               }
               if (done) done(std::move(outcome));
             });
}

void CentralSystem::CountMessage(const std::string& identity, const std::string& direction,
                                 const std::string& action, const std::string& result) {
  absl::MutexLock lock(&mu_);
  auto it = chargers_.find(identity);
  if (it == chargers_.end()) return;
  for (v1::OcppMessageCount& m : *it->second.info.mutable_messages()) {
    if (m.direction() == direction && m.action() == action && m.result() == result) {
      m.set_count(m.count() + 1);
      return;
    }
  }
  v1::OcppMessageCount* m = it->second.info.add_messages();
  m->set_direction(direction);
  m->set_action(action);
  m->set_result(result);
  m->set_count(1);
}

std::string CentralSystem::EvseOf(const std::string& identity, int connector_id) const {
  absl::MutexLock lock(&mu_);
  auto it = chargers_.find(identity);
  if (it == chargers_.end()) return "";
  auto evse = it->second.evses.find(connector_id);
  return evse == it->second.evses.end() ? "" : evse->second;
}

CentralSystem::Answer CentralSystem::Handle(const std::string& identity,
                                            const ChargePointLink* link, const ocpp::Call& call) {
  const json& req = call.payload;
  if (call.action == "Authorize") return OnAuthorize(identity, req);
  if (call.action == "StartTransaction") return OnStartTransaction(identity, req);
  if (call.action == "StopTransaction") return OnStopTransaction(identity, req);

  After after;
  Answer answer;
  {
    absl::MutexLock lock(&mu_);
    auto it = chargers_.find(identity);
    if (it == chargers_.end()) return Internal("not a configured charge point");
    Charger& charger = it->second;
    *charger.info.mutable_last_message_at() = ToProto(clock_.Now());
    if (charger.link.get() != link) {
      // A message still arriving on a link that a reconnect replaced: answer
      // it, but the newer link is the one whose state counts.
      kLog.Debug("%s: %s on a replaced connection", identity, call.action);
    }
    if (call.action == "BootNotification") {
      answer = OnBootNotification(charger, req, after);
    } else if (call.action == "Heartbeat") {
      *charger.info.mutable_last_heartbeat() = ToProto(clock_.Now());
      answer = json{{"currentTime", FormatOcppTime(clock_.Now())}};
    } else if (call.action == "StatusNotification") {
      answer = OnStatusNotification(charger, req, after);
    } else if (call.action == "MeterValues") {
      answer = OnMeterValues(charger, req, after);
    } else if (call.action == "DataTransfer") {
      kLog.Info("%s: DataTransfer vendorId \"%s\" messageId \"%s\": no vendor extension taken",
                identity, req.value("vendorId", ""), req.value("messageId", ""));
      answer = json{{"status", "UnknownVendorId"}};
    } else if (call.action == "FirmwareStatusNotification") {
      charger.firmware_status = req.value("status", "");
      kLog.Info("%s: firmware %s", identity, charger.firmware_status);
      answer = json::object();
    } else if (call.action == "DiagnosticsStatusNotification") {
      charger.diagnostics_status = req.value("status", "");
      kLog.Info("%s: diagnostics %s", identity, charger.diagnostics_status);
      answer = json::object();
    } else if (IsCentralSystemAction(call.action)) {
      answer = MakeCallError("", RpcErrorCode::kNotSupported,
                             absl::StrCat(call.action, " is sent by a Central System, not to one"));
    } else {
      answer = MakeCallError("", RpcErrorCode::kNotImplemented,
                             absl::StrCat("evgate does not take ", call.action));
    }
  }
  for (auto& f : after) f();
  return answer;
}

CentralSystem::Answer CentralSystem::OnBootNotification(Charger& charger, const json& req,
                                                        After& after) {
  v1::ChargePoint& info = charger.info;
  info.set_vendor(req.value("chargePointVendor", ""));
  info.set_model(req.value("chargePointModel", ""));
  info.set_serial_number(
      req.value("chargePointSerialNumber", req.value("chargeBoxSerialNumber", "")));
  info.set_firmware_version(req.value("firmwareVersion", ""));
  charger.boot_seen_on_link = true;
  const std::string identity = info.charge_point_id();
  if (charger.configured) {
    info.set_registration_status(v1::REGISTRATION_STATUS_ACCEPTED);
    kLog.Info("%s booted (%s %s, firmware %s): Accepted", identity, info.vendor(), info.model(),
              info.firmware_version());
    RequestState(charger, after);
    NotifyChanged(identity, after);
    NotifyAccepted(identity, after);
    return json{{"status", "Accepted"},
                {"currentTime", FormatOcppTime(clock_.Now())},
                {"interval", absl::ToInt64Seconds(options_.heartbeat_interval)}};
  }
  info.set_registration_status(v1::REGISTRATION_STATUS_PENDING);
  NotifyChanged(identity, after);
  kLog.Info("%s booted (%s %s, firmware %s): Pending until configured", identity, info.vendor(),
            info.model(), info.firmware_version());
  if (!charger.configuring && charger.link != nullptr) {
    charger.configuring = true;
    after.push_back([this, identity, link = charger.link] { Configure(identity, link); });
  }
  return json{{"status", "Pending"},
              {"currentTime", FormatOcppTime(clock_.Now())},
              {"interval", absl::ToInt64Seconds(options_.pending_interval)}};
}

void CentralSystem::Configure(const std::string& identity, std::shared_ptr<ChargePointLink> link) {
  ConfigureStep(identity, std::move(link), 0);
}

void CentralSystem::ConfigureStep(const std::string& identity,
                                  std::shared_ptr<ChargePointLink> link, int step) {
  // 0: GetConfiguration, 1: MeterValueSampleInterval, 2: MeterValuesSampledData,
  // 3: done -> TriggerMessage BootNotification.
  auto next = [this, identity, link, step](CallOutcome outcome) {
    if (absl::IsUnavailable(outcome.status)) {
      absl::MutexLock lock(&mu_);
      auto it = chargers_.find(identity);
      if (it != chargers_.end()) it->second.configuring = false;
      kLog.Info("%s: configuration interrupted: %s", identity, outcome.status.message());
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      auto it = chargers_.find(identity);
      if (it == chargers_.end()) return;
      ChargerConfiguration& config = it->second.configuration;
      if (step == 0) {
        if (outcome.result) {
          config.read = true;
          for (const json& key : outcome.result->value("configurationKey", json::array())) {
            const std::string name = key.value("key", "");
            const std::string value = key.value("value", "");
            if (name == "SupportedFeatureProfiles") config.feature_profiles = SplitList(value);
            if (name == "ChargeProfileMaxStackLevel") config.max_stack_level = ParseInt(value);
            if (name == "ChargingScheduleAllowedChargingRateUnit") {
              config.allowed_rate_units = SplitList(value);
            }
            if (name == "MeterValuesSampledData") config.sampled_data = value;
            if (name == "MeterValueSampleInterval") config.sample_interval_s = ParseInt(value);
          }
          for (const json& key : outcome.result->value("unknownKey", json::array())) {
            config.problems.push_back(absl::StrCat(key.get<std::string>(), ": unknown key"));
          }
        } else {
          config.problems.push_back(absl::StrCat("GetConfiguration: ", OutcomeText(outcome)));
        }
      } else {
        const char* key = step == 1 ? "MeterValueSampleInterval" : "MeterValuesSampledData";
        const std::string status =
            outcome.result ? outcome.result->value("status", "") : std::string();
        if (status == "Accepted" || status == "RebootRequired") {
          if (step == 1) config.sample_interval_s = options_.meter_sample_interval_s;
          if (step == 2) config.sampled_data = options_.meter_values_sampled_data;
        } else {
          config.problems.push_back(absl::StrCat(key, ": ", OutcomeText(outcome)));
        }
      }
      if (step == 2) {
        it->second.configured = true;
        it->second.configuring = false;
        kLog.Info("%s configured (profiles %s, max stack level %s, rate units %s)%s", identity,
                  absl::StrJoin(config.feature_profiles, ","),
                  config.max_stack_level ? absl::StrCat(*config.max_stack_level) : "?",
                  absl::StrJoin(config.allowed_rate_units, ","),
                  config.problems.empty()
                      ? ""
                      : absl::StrCat("; ", absl::StrJoin(config.problems, "; ")));
      }
    }
    if (step < 2) {
      ConfigureStep(identity, link, step + 1);
    } else {
      Send(link, "TriggerMessage", {{"requestedMessage", "BootNotification"}},
           [identity](CallOutcome trigger) {
             kLog.Info("%s: TriggerMessage BootNotification: %s", identity, OutcomeText(trigger));
           });
    }
  };
  switch (step) {
    case 0: {
      json keys = json::array();
      for (const char* key : kConfigurationKeys) keys.push_back(key);
      Send(link, "GetConfiguration", {{"key", keys}}, std::move(next));
      return;
    }
    case 1:
      Send(link, "ChangeConfiguration",
           {{"key", "MeterValueSampleInterval"},
            {"value", absl::StrCat(options_.meter_sample_interval_s)}},
           std::move(next));
      return;
    default:
      Send(link, "ChangeConfiguration",
           {{"key", "MeterValuesSampledData"}, {"value", options_.meter_values_sampled_data}},
           std::move(next));
      return;
  }
}

void CentralSystem::RequestState(const Charger& charger, After& after) {
  std::vector<int> connectors;
  for (const auto& [connector, evse] : charger.evses) connectors.push_back(connector);
  after.push_back([this, link = charger.link, connectors] {
    const std::string identity = link->identity();
    auto log_outcome = [identity](std::string what) {
      return [identity, what](CallOutcome outcome) {
        kLog.Debug("%s: TriggerMessage %s: %s", identity, what, OutcomeText(outcome));
      };
    };
    Send(link, "TriggerMessage", {{"requestedMessage", "StatusNotification"}},
         log_outcome("StatusNotification"));
    for (int connector : connectors) {
      Send(link, "TriggerMessage",
           {{"requestedMessage", "MeterValues"}, {"connectorId", connector}},
           log_outcome(absl::StrCat("MeterValues ", connector)));
    }
  });
}

CentralSystem::Answer CentralSystem::OnStatusNotification(Charger& charger, const json& req,
                                                          After& after) {
  const int connector_id = req.value("connectorId", 0);
  v1::ChargePointConnector* connector = nullptr;
  for (v1::ChargePointConnector& c : *charger.info.mutable_connectors()) {
    if (static_cast<int>(c.connector_id()) == connector_id) connector = &c;
  }
  if (connector == nullptr) {
    connector = charger.info.add_connectors();
    connector->set_connector_id(connector_id);
    auto evse = charger.evses.find(connector_id);
    if (evse != charger.evses.end()) {
      connector->set_evse_id(evse->second);
    } else if (connector_id != 0) {
      kLog.Warning("%s reports connector %d, which site.yaml does not map to an EVSE",
                   charger.info.charge_point_id(), connector_id);
    }
    std::sort(charger.info.mutable_connectors()->begin(), charger.info.mutable_connectors()->end(),
              [](const v1::ChargePointConnector& a, const v1::ChargePointConnector& b) {
                return a.connector_id() < b.connector_id();
              });
    for (v1::ChargePointConnector& c : *charger.info.mutable_connectors()) {
      if (static_cast<int>(c.connector_id()) == connector_id) connector = &c;
    }
  }
  connector->set_status(ParseChargePointStatus(req.value("status", "")));
  connector->set_error_code(ParseChargePointErrorCode(req.value("errorCode", "")));
  connector->set_vendor_error_code(req.value("vendorErrorCode", ""));
  connector->set_info(req.value("info", ""));
  absl::Time when = clock_.Now();
  if (req.contains("timestamp")) {
    absl::StatusOr<absl::Time> t = ParseOcppTime(req["timestamp"].get<std::string>());
    if (t.ok()) when = *t;
  }
  *connector->mutable_updated_at() = ToProto(when);
  if (connector->status() == v1::CONNECTOR_STATUS_AVAILABLE) {
    // No vehicle: the last one's SOC must not pass for the next one's.
    auto reading = charger.readings.find(connector_id);
    if (reading != charger.readings.end()) reading->second.soc_pct.reset();
  }
  NotifyChanged(charger.info.charge_point_id(), after);
  return json::object();
}

CentralSystem::Answer CentralSystem::OnMeterValues(Charger& charger, const json& req,
                                                   After& after) {
  const int connector_id = req.value("connectorId", 0);
  for (const json& meter_value : req.value("meterValue", json::array())) {
    absl::StatusOr<MeterReading> reading = ParseMeterValue(meter_value);
    if (!reading.ok()) {
      kLog.Warning("%s connector %d: a meter value skipped: %s", charger.info.charge_point_id(),
                   connector_id, reading.status().message());
      continue;
    }
    for (const std::string& skipped : reading->skipped) {
      kLog.Debug("%s connector %d: %s", charger.info.charge_point_id(), connector_id, skipped);
    }
    auto [it, inserted] = charger.readings.try_emplace(connector_id, *reading);
    if (!inserted && reading->timestamp >= it->second.timestamp) it->second = *std::move(reading);
  }
  if (listener_ != nullptr) {
    after.push_back([this, id = charger.info.charge_point_id(), connector_id] {
      listener_->OnMeterValues(id, connector_id);
    });
  }
  return json::object();
}

CentralSystem::Answer CentralSystem::OnAuthorize(const std::string& identity, const json& req) {
  const std::string id_tag = req.value("idTag", "");
  absl::StatusOr<json> info = authorizer_->Authorize(id_tag, "");
  if (!info.ok()) {
    kLog.Warning("%s: Authorize %s: no decision: %s", identity, id_tag, info.status().message());
    return Internal(absl::StrCat("authorization unavailable: ", info.status().message()));
  }
  return json{{"idTagInfo", *info}};
}

CentralSystem::Answer CentralSystem::OnStartTransaction(const std::string& identity,
                                                        const json& req) {
  StartTransactionRecord start;
  start.charge_point_id = identity;
  start.connector_id = req.value("connectorId", 0);
  start.id_tag = req.value("idTag", "");
  start.meter_start_wh = req.value("meterStart", int64_t{0});
  absl::StatusOr<absl::Time> timestamp = ParseOcppTime(req.value("timestamp", ""));
  if (!timestamp.ok()) {
    return MakeCallError("", RpcErrorCode::kPropertyConstraintViolation,
                         std::string(timestamp.status().message()));
  }
  start.timestamp = *timestamp;
  if (req.contains("reservationId")) start.reservation_id = req["reservationId"].get<int64_t>();
  // Recorded first, so that nothing is lost when no decision can be made:
  // the charger retries and gets the same transactionId.
  absl::StatusOr<int64_t> id = book_->Start(start);
  if (!id.ok()) {
    kLog.Error("%s: StartTransaction not recorded: %s", identity, id.status().message());
    return Internal(absl::StrCat("transaction not recorded: ", id.status().message()));
  }
  absl::StatusOr<json> info =
      authorizer_->Authorize(start.id_tag, EvseOf(identity, start.connector_id));
  if (!info.ok()) {
    kLog.Warning("%s: StartTransaction %d recorded, authorization unavailable: %s", identity, *id,
                 info.status().message());
    return Internal(absl::StrCat("authorization unavailable: ", info.status().message()));
  }
  kLog.Info("%s connector %d: transaction %d started by %s at %d Wh (%s)", identity,
            start.connector_id, *id, start.id_tag, start.meter_start_wh, info->value("status", ""));
  // Announced once the decision is known, so that a start retried while the
  // session service was unreachable still opens the session.
  bool announce = false;
  if (info->value("status", "") == "Accepted") {
    absl::MutexLock lock(&mu_);
    announce = announced_.insert(*id).second;
  }
  if (announce && listener_ != nullptr) {
    listener_->OnTransactionStarted(identity, start.connector_id, start.id_tag, *id);
  }
  return json{{"transactionId", *id}, {"idTagInfo", *info}};
}

void CentralSystem::Stopped(const std::string& identity, const StopTransactionRecord& stop) {
  absl::StatusOr<std::optional<TransactionRecord>> record = book_->Get(stop.transaction_id);
  if (!record.ok() || !record->has_value()) {
    kLog.Error("%s: transaction %d stopped but not readable back: %s", identity,
               stop.transaction_id,
               record.ok() ? "not found" : std::string(record.status().message()));
    return;
  }
  const int connector_id = (*record)->start.connector_id;
  {
    absl::MutexLock lock(&mu_);
    announced_.erase(stop.transaction_id);
    auto it = chargers_.find(identity);
    if (it == chargers_.end()) return;
    // meterStop is the register at the end; nothing flows any more.
    MeterReading& reading = it->second.readings[connector_id];
    if (stop.timestamp >= reading.timestamp) {
      reading.timestamp = stop.timestamp;
      reading.context = "Transaction.End";
      reading.energy_import_wh = static_cast<double>(stop.meter_stop_wh);
      reading.power_import_w = 0;
      reading.power_export_w.reset();
      reading.current_import_total_a.reset();
      reading.current_export_total_a.reset();
      reading.current_import_a = {};
      reading.soc_pct.reset();  // the vehicle's, not the connector's: it is leaving
    }
  }
  if (listener_ != nullptr) {
    listener_->OnTransactionStopped(identity, connector_id, stop.transaction_id, stop.reason);
  }
}

CentralSystem::Answer CentralSystem::OnStopTransaction(const std::string& identity,
                                                       const json& req) {
  StopTransactionRecord stop;
  stop.charge_point_id = identity;
  stop.transaction_id = req.value("transactionId", int64_t{0});
  stop.meter_stop_wh = req.value("meterStop", int64_t{0});
  absl::StatusOr<absl::Time> timestamp = ParseOcppTime(req.value("timestamp", ""));
  if (!timestamp.ok()) {
    return MakeCallError("", RpcErrorCode::kPropertyConstraintViolation,
                         std::string(timestamp.status().message()));
  }
  stop.timestamp = *timestamp;
  stop.reason = req.value("reason", "");
  stop.id_tag = req.value("idTag", "");
  if (req.contains("transactionData")) stop.transaction_data_json = req["transactionData"].dump();
  absl::StatusOr<TransactionBook::StopResult> result = book_->Stop(stop);
  if (!result.ok()) {
    kLog.Error("%s: StopTransaction %d not recorded: %s", identity, stop.transaction_id,
               result.status().message());
    return Internal(absl::StrCat("transaction stop not recorded: ", result.status().message()));
  }
  switch (*result) {
    case TransactionBook::StopResult::kRecorded:
      kLog.Info("%s: transaction %d stopped at %d Wh (%s)", identity, stop.transaction_id,
                stop.meter_stop_wh, stop.reason.empty() ? "Local" : stop.reason);
      Stopped(identity, stop);
      break;
    case TransactionBook::StopResult::kRepeated:
      kLog.Info("%s: transaction %d stop repeated; recorded once", identity, stop.transaction_id);
      break;
    case TransactionBook::StopResult::kOrphan:
      kLog.Warning(
          "%s: StopTransaction for transaction %d, which evgate did not give it; kept "
          "as an orphan stop",
          identity, stop.transaction_id);
      break;
  }
  json answer = json::object();
  if (!stop.id_tag.empty()) {
    // The card's status, not whether it may start: asked for the EVSE of the
    // transaction it ends, so that its own session (open until the stop
    // reaches the session service) is not taken for a concurrent one.
    std::string evse_id;
    absl::StatusOr<std::optional<TransactionRecord>> record = book_->Get(stop.transaction_id);
    if (record.ok() && record->has_value()) {
      evse_id = EvseOf(identity, (*record)->start.connector_id);
    }
    absl::StatusOr<json> info = authorizer_->Authorize(stop.id_tag, evse_id);
    if (info.ok()) answer["idTagInfo"] = *info;
  }
  return answer;
}

}  // namespace evgate::ocpp
