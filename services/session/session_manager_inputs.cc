// SessionManager: device events, RFID taps and the periodic tick (the class: session_manager.h).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/session/internal/manager_text.h"
#include "services/session/session_manager.h"
#include "services/session/stop_reasons.h"

namespace evgate::session {
namespace {

constexpr log::Logger kLog("session");

using google::protobuf::util::TimeUtil;
using internal::FromProto;
using internal::IsOpenAuthorized;
using internal::Name;
using internal::TimeText;
using internal::ToProto;

}  // namespace

void SessionManager::ApplyMeasurements(Evse& evse, const v1::EvseMeasurements& m) {
  // A driver's bad number (NaN, infinite, a negative energy or an SOC
  // outside 0-100) is not a measurement: the last good value stays.
  v1::EvseMeasurements clean = m;
  auto finite = [](double v) { return std::isfinite(v); };
  if (clean.has_power_w() && !finite(clean.power_w())) clean.clear_power_w();
  if (clean.has_energy_import_wh() &&
      !(finite(clean.energy_import_wh()) && clean.energy_import_wh() >= 0)) {
    clean.clear_energy_import_wh();
  }
  if (clean.has_energy_export_wh() &&
      !(finite(clean.energy_export_wh()) && clean.energy_export_wh() >= 0)) {
    clean.clear_energy_export_wh();
  }
  if (clean.has_session_energy_wh() &&
      !(finite(clean.session_energy_wh()) && clean.session_energy_wh() >= 0)) {
    clean.clear_session_energy_wh();
  }
  if (clean.has_soc_pct() && !(clean.soc_pct() >= 0 && clean.soc_pct() <= 100)) {
    clean.clear_soc_pct();
  }
  evse.measurements.clear_temperatures();
  evse.measurements.MergeFrom(clean);
}

void SessionManager::ApplyEvseState(Evse& evse, const v1::EvseState& state) {
  evse.state_known = true;
  if (state.connector_status() == v1::CONNECTOR_STATUS_CHARGING &&
      evse.status != v1::CONNECTOR_STATUS_CHARGING) {
    evse.charging_edge = true;
  }
  evse.status = state.connector_status();
  evse.iec = state.iec61851_state();
  const std::optional<bool> connected = VehicleConnected(evse.iec, evse.status);
  if (connected) {
    if (evse.connected == false && *connected) evse.plug_in_edge = true;
    evse.connected = connected;
  }
  // Fresh state from a device that answers again, with the vehicle still
  // there: the session simply went on.
  if (evse.open && !evse.stale && connected == true) evse.open->link_lost = false;
  if (state.has_measurements()) ApplyMeasurements(evse, state.measurements());
  evse.evse_faults.clear();
  for (const v1::Fault& f : state.faults()) {
    if (f.blocks_charging()) evse.evse_faults.push_back(f);
  }
}

void SessionManager::ApplyFault(Evse& evse, const v1::Fault& fault, bool raised, bool device_wide,
                                Pending& pending) {
  std::vector<v1::Fault>& faults = device_wide ? evse.device_faults : evse.evse_faults;
  auto same = [&fault](const v1::Fault& f) {
    return f.vendor() == fault.vendor() && f.vendor_code() == fault.vendor_code() &&
           f.code() == fault.code();
  };
  faults.erase(std::remove_if(faults.begin(), faults.end(), same), faults.end());
  if (!raised) return;
  if (IsStopReasonCatalog(fault.vendor())) {
    // The charger says why it ended the session.
    if (evse.open && evse.open->s().state() != v1::SESSION_STATE_PENDING_PLUG_IN) {
      VendorStop stop = MapVendorStopCode(fault.vendor(), fault.vendor_code(), false);
      const std::string description =
          !stop.description.empty() ? stop.description : fault.description();
      const v1::SessionState state = stop.reason == v1::STOP_REASON_POWER_LOSS
                                         ? v1::SESSION_STATE_INTERRUPTED
                                         : v1::SESSION_STATE_COMPLETED;
      const v1::StopReason reason = evse.open->s().state() == v1::SESSION_STATE_FINISHING &&
                                            stop.reason == v1::STOP_REASON_OTHER
                                        ? evse.open->s().stop_reason()
                                        : stop.reason;
      Close(evse, state, reason, fault.vendor_code(), description, pending);
    }
    return;
  }
  if (fault.blocks_charging()) faults.push_back(fault);
}

void SessionManager::ApplyEvent(const v1::WatchDevicesResponse& event, Pending& pending) {
  auto device = device_evses_.find(event.device_id());
  const std::vector<std::string> no_evses;
  const std::vector<std::string>& evse_ids =
      device == device_evses_.end() ? no_evses : device->second;
  auto reconcile_device = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const std::string& id : evse_ids) Reconcile(*FindEvse(id), pending);
  };
  auto evse_of = [&](const std::string& evse_id, uint32_t connector)
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> Evse* {
    if (!evse_id.empty()) {
      Evse* evse = FindEvse(evse_id);
      return evse != nullptr && evse->device_id == event.device_id() ? evse : nullptr;
    }
    for (const std::string& id : evse_ids) {
      Evse* evse = FindEvse(id);
      if (evse->connector_id == connector) return evse;
    }
    return nullptr;
  };

  switch (event.event_case()) {
    case v1::WatchDevicesResponse::kSnapshot: {
      const v1::DeviceState& device_state = event.snapshot();
      for (const std::string& id : evse_ids) {
        Evse& evse = *FindEvse(id);
        evse.stale = device_state.link().stale();
        if (evse.stale && evse.open) evse.open->link_lost = true;
        evse.device_faults.clear();
        for (const v1::Fault& f : device_state.faults()) {
          if (f.blocks_charging()) evse.device_faults.push_back(f);
        }
      }
      for (const v1::EvseState& state : device_state.evses()) {
        if (Evse* evse = evse_of(state.evse_id(), state.connector_id())) {
          ApplyEvseState(*evse, state);
        }
      }
      reconcile_device();
      return;
    }
    case v1::WatchDevicesResponse::kInitialSnapshotComplete:
      for (auto& [id, evse] : evses_) Reconcile(evse, pending);
      return;
    case v1::WatchDevicesResponse::kEvseStateChange: {
      const v1::EvseState& state = event.evse_state_change().state();
      if (Evse* evse = evse_of(state.evse_id(), state.connector_id())) {
        ApplyEvseState(*evse, state);
        Reconcile(*evse, pending);
      }
      return;
    }
    case v1::WatchDevicesResponse::kFaultRaised:
    case v1::WatchDevicesResponse::kFaultCleared: {
      const bool raised = event.event_case() == v1::WatchDevicesResponse::kFaultRaised;
      const std::string& evse_id =
          raised ? event.fault_raised().evse_id() : event.fault_cleared().evse_id();
      const v1::Fault& fault =
          raised ? event.fault_raised().fault() : event.fault_cleared().fault();
      if (evse_id.empty()) {
        for (const std::string& id : evse_ids) {
          ApplyFault(*FindEvse(id), fault, raised, /*device_wide=*/true, pending);
        }
        reconcile_device();
      } else if (Evse* evse = evse_of(evse_id, 0)) {
        ApplyFault(*evse, fault, raised, /*device_wide=*/false, pending);
        Reconcile(*evse, pending);
      }
      return;
    }
    case v1::WatchDevicesResponse::kTelemetry: {
      const v1::Telemetry& telemetry = event.telemetry();
      if (telemetry.has_link()) {
        for (const std::string& id : evse_ids) {
          Evse& evse = *FindEvse(id);
          evse.stale = telemetry.link().stale();
          if (evse.stale && evse.open) evse.open->link_lost = true;
        }
      }
      for (const v1::EvseTelemetry& t : telemetry.evses()) {
        if (Evse* evse = evse_of(t.evse_id(), 0)) {
          ApplyMeasurements(*evse, t.measurements());
          Reconcile(*evse, pending);
        }
      }
      return;
    }
    case v1::WatchDevicesResponse::kLinkStateChange:
      for (const std::string& id : evse_ids) {
        Evse& evse = *FindEvse(id);
        evse.stale = event.link_state_change().link().stale();
        if (evse.stale && evse.open) {
          evse.open->link_lost = true;
          kLog.Warning("device %s stopped answering during session %s on %s; it stays open",
                       event.device_id(), evse.open->s().session_id(), id);
        }
      }
      reconcile_device();
      return;
    default:
      return;  // off-grid box changes and unknown events do not concern sessions
  }
}

SessionManager::Evse* SessionManager::PickEvseForTap(const std::string& device_id,
                                                     const std::string& id_tag) {
  auto it = device_evses_.find(device_id);
  if (it == device_evses_.end()) return nullptr;
  const std::vector<std::string>& ids = it->second;
  auto free = [](const Evse& e) {
    return !e.open || e.open->record.session.start_mode() == v1::START_MODE_DEVICE_LOCAL;
  };
  for (const std::string& id : ids) {
    Evse& e = *FindEvse(id);
    if (!free(e) && e.open->s().id_tag() == id_tag) return &e;
  }
  for (const std::string& id : ids) {
    Evse& e = *FindEvse(id);
    if (free(e) && e.connected == true) return &e;
  }
  for (const std::string& id : ids) {
    Evse& e = *FindEvse(id);
    if (free(e)) return &e;
  }
  return ids.size() == 1 ? FindEvse(ids.front()) : nullptr;
}

const SessionManager::OpenSession* SessionManager::ConcurrentSession(
    const std::string& id_tag, const std::string& parent, const std::string& except_evse) const {
  for (const auto& [id, evse] : evses_) {
    if (id == except_evse || !evse.open || !IsOpenAuthorized(evse.open->record.session)) continue;
    const OpenSession& o = *evse.open;
    if (o.record.session.id_tag() == id_tag || (!parent.empty() && o.parent_id_tag == parent)) {
      return &o;
    }
  }
  return nullptr;
}

void SessionManager::HandleTap(const v1::WatchDevicesResponse& event) {
  // A transaction the device started is a tap that the device has already
  // acted on: it opens or confirms a session, never stops one.
  const bool device_started = event.event_case() == v1::WatchDevicesResponse::kTransactionStarted;
  const std::string& raw_id_tag =
      device_started ? event.transaction_started().id_tag() : event.rfid_tap().id_tag();
  const std::string& tap_evse_id =
      device_started ? event.transaction_started().evse_id() : event.rfid_tap().evse_id();
  const char* what = device_started ? "transaction start" : "RFID tap";
  absl::StatusOr<std::string> id_tag = NormalizeIdTag(raw_id_tag, "id_tag");
  if (!id_tag.ok()) {
    kLog.Warning("%s at device %s ignored: %s", what, event.device_id(), id_tag.status().message());
    return;
  }
  std::string evse_id;
  {
    absl::MutexLock lock(&mu_);
    Evse* evse = nullptr;
    if (!tap_evse_id.empty()) {
      evse = FindEvse(tap_evse_id);
      if (evse != nullptr && evse->device_id != event.device_id()) evse = nullptr;
    } else if (!device_started) {
      evse = PickEvseForTap(event.device_id(), *id_tag);
    }
    if (evse == nullptr) {
      kLog.Warning("%s of card %s at device %s ignored: %s", what, *id_tag, event.device_id(),
                   tap_evse_id.empty() ? "no EVSE of this device is free"
                                       : "unknown EVSE " + tap_evse_id + " of this device");
      return;
    }
    evse_id = evse->evse_id;
    if (device_started && evse->open &&
        evse->open->s().start_mode() != v1::START_MODE_DEVICE_LOCAL &&
        evse->open->s().state() != v1::SESSION_STATE_FINISHING) {
      kLog.Info("%s started transaction %s with card %s: session %s (card %s)", evse_id,
                event.transaction_started().transaction_id(), *id_tag, evse->open->s().session_id(),
                evse->open->s().id_tag().empty() ? "none" : evse->open->s().id_tag());
      return;
    }
  }
  // Outside the lock: may ask the CSMS.
  absl::StatusOr<AuthorizationDecision> decision = authorizer_->Authorize(*id_tag, evse_id);

  absl::MutexLock lock(&mu_);
  Evse& evse = *FindEvse(evse_id);
  Pending pending;
  if (device_started && evse.open && evse.open->s().start_mode() != v1::START_MODE_DEVICE_LOCAL) {
    // Opened meanwhile (or still finishing the previous one): nothing to stop.
    kLog.Info("%s: transaction start of card %s while session %s is %s; left as it is", evse_id,
              *id_tag, evse.open->s().session_id(), Name(evse.open->s().state()));
  } else if (evse.open && evse.open->s().start_mode() != v1::START_MODE_DEVICE_LOCAL) {
    OpenSession& o = *evse.open;
    if (o.s().state() == v1::SESSION_STATE_FINISHING) {
      kLog.Info("RFID tap of card %s on %s: session %s is already stopping", *id_tag, evse_id,
                o.s().session_id());
      return;
    }
    const bool valid =
        decision.ok() && (decision->response.status() == v1::AUTHORIZATION_STATUS_ACCEPTED ||
                          decision->response.status() == v1::AUTHORIZATION_STATUS_NOT_ALLOWED_HERE);
    const bool master = valid && decision->response.master();
    const bool same_group =
        valid && !o.parent_id_tag.empty() && decision->response.parent_id_tag() == o.parent_id_tag;
    if (o.s().id_tag() == *id_tag || master || same_group) {
      RequestStop(evse, v1::STOP_REASON_LOCAL, "",
                  absl::StrCat("stopped by ", master && o.s().id_tag() != *id_tag ? "master " : "",
                               "card ", *id_tag, " at the EVSE"),
                  pending);
    } else {
      kLog.Info("RFID tap of card %s on %s refused: session %s of card %s is running there",
                *id_tag, evse_id, o.s().session_id(), o.s().id_tag());
    }
  } else if (!decision.ok()) {
    kLog.Error("%s of card %s on %s: cannot authorize: %s", what, *id_tag, evse_id,
               decision.status().message());
  } else if (decision->response.status() != v1::AUTHORIZATION_STATUS_ACCEPTED) {
    kLog.Info("%s on %s refused: %s", what, evse_id, decision->explanation);
  } else if (const OpenSession* other =
                 ConcurrentSession(*id_tag, decision->response.parent_id_tag(), evse_id)) {
    kLog.Info("%s of card %s on %s refused: CONCURRENT_TX, session %s runs on %s", what, *id_tag,
              evse_id, other->record.session.session_id(), other->record.session.evse_id());
  } else {
    OpenSessionAt(evse, *id_tag, decision->response, v1::START_MODE_RFID, v1::CHARGE_MODE_CHARGE,
                  std::nullopt, std::nullopt, pending);
  }
  (void)Flush(pending);
}

void SessionManager::OnStreamStarted() {
  HandleDeviceInputs({DeviceInput{DeviceInput::Kind::kStreamStarted, {}, {}}});
}

void SessionManager::OnDeviceEvent(const v1::WatchDevicesResponse& event) {
  HandleDeviceInputs({DeviceInput{DeviceInput::Kind::kEvent, event, {}}});
}

void SessionManager::OnStreamLost(const absl::Status& status) {
  HandleDeviceInputs({DeviceInput{DeviceInput::Kind::kStreamLost, {}, status}});
}

void SessionManager::HandleDeviceInputs(const std::vector<DeviceInput>& inputs) {
  const auto is_tap = [](const DeviceInput& input) {
    return input.kind == DeviceInput::Kind::kEvent &&
           (input.event.event_case() == v1::WatchDevicesResponse::kRfidTap ||
            input.event.event_case() == v1::WatchDevicesResponse::kTransactionStarted);
  };
  // Pending changes never outlive the lock they were made under: a
  // StopSession between two inputs must not be followed by a write of the
  // copies taken before it (that wrote a closed session back as ACTIVE).
  size_t i = 0;
  while (i < inputs.size()) {
    if (is_tap(inputs[i])) {
      HandleTap(inputs[i++].event);  // asks the authorizer without the lock
      continue;
    }
    absl::MutexLock lock(&mu_);
    Pending pending;
    for (; i < inputs.size() && !is_tap(inputs[i]); ++i) {
      const DeviceInput& input = inputs[i];
      switch (input.kind) {
        case DeviceInput::Kind::kStreamStarted:
        case DeviceInput::Kind::kStreamLost:
          // Until the next snapshots the live view is out of date;
          // sessions keep their last values.
          for (auto& [id, evse] : evses_) evse.state_known = false;
          break;
        case DeviceInput::Kind::kEvent:
          ApplyEvent(input.event, pending);
          break;
      }
    }
    (void)Flush(pending);
  }
}

void SessionManager::Tick() {
  absl::MutexLock lock(&mu_);
  Pending pending;
  for (auto& [id, evse] : evses_) Reconcile(evse, pending);
  (void)Flush(pending);
}

}  // namespace evgate::session
