#include "services/session/session_manager.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/session/internal/manager_text.h"
#include "services/session/stop_reasons.h"

namespace evgate::session {
namespace {

constexpr log::Logger kLog("session");

using google::protobuf::util::TimeUtil;
using internal::FromProto;
using internal::Name;
using internal::TimeText;
using internal::ToProto;

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

}  // namespace

std::optional<bool> VehicleConnected(v1::Iec61851State iec, v1::ConnectorStatus status) {
  switch (iec) {
    case v1::IEC61851_STATE_A:
      return false;
    case v1::IEC61851_STATE_B:
    case v1::IEC61851_STATE_C:
    case v1::IEC61851_STATE_D:
      return true;
    default:
      break;
  }
  switch (status) {
    case v1::CONNECTOR_STATUS_AVAILABLE:
    case v1::CONNECTOR_STATUS_RESERVED:
      return false;
    case v1::CONNECTOR_STATUS_PREPARING:
    case v1::CONNECTOR_STATUS_CHARGING:
    case v1::CONNECTOR_STATUS_SUSPENDED_EV:
    case v1::CONNECTOR_STATUS_SUSPENDED_EVSE:
    case v1::CONNECTOR_STATUS_FINISHING:
      return true;
    default:
      return std::nullopt;
  }
}

// ---------------------------------------------------------------------------
// Construction

SessionManager::SessionManager(const site::SiteConfig& config, SessionStore* store,
                               Authorizer* authorizer, const Clock& clock,
                               SessionManagerOptions options)
    : config_(config),
      store_(store),
      authorizer_(authorizer),
      clock_(clock),
      options_(options),
      started_at_(clock.Now()),
      random_(options.random_seed) {}

absl::StatusOr<std::unique_ptr<SessionManager>> SessionManager::Create(
    const site::SiteConfig& config, SessionStore* store, Authorizer* authorizer, const Clock& clock,
    SessionManagerOptions options) {
  std::unique_ptr<SessionManager> manager(
      new SessionManager(config, store, authorizer, clock, options));
  absl::StatusOr<std::vector<SessionRecord>> open = store->LoadOpenSessions();
  if (!open.ok()) return open.status();

  absl::MutexLock lock(&manager->mu_);
  for (const site::StationConfig& station : config.stations) {
    for (const site::EvseConfig& config_evse : station.evses) {
      Evse& evse = manager->evses_[config_evse.id];
      evse.evse_id = config_evse.id;
      evse.station_id = station.id;
      evse.device_id = station.device;
      evse.connector_id = static_cast<uint32_t>(config_evse.connector);
      evse.bidirectional = config_evse.dc.has_value() && config_evse.dc->bidirectional;
      evse.free_vend = authorizer->IsFreeVend(config_evse.id);
      manager->device_evses_[station.device].push_back(config_evse.id);
    }
  }
  Pending pending;
  int resumable = 0;
  for (SessionRecord& record : *open) {
    const std::string evse_id = record.session.evse_id();
    Evse* evse = manager->FindEvse(evse_id);
    if (evse == nullptr) {
      // The EVSE was removed from site.yaml while the session was open.
      Evse gone;
      gone.evse_id = evse_id;
      gone.open.emplace();
      gone.open->record = std::move(record);
      manager->Close(gone, v1::SESSION_STATE_INTERRUPTED, v1::STOP_REASON_CONTROLLER_RESTART, "",
                     absl::StrCat("evgate restarted and EVSE ", evse_id,
                                  " is no longer in site.yaml; meter stop is the last value "
                                  "recorded before the restart"),
                     pending);
      continue;
    }
    OpenSession o;
    o.record = std::move(record);
    const v1::SessionState state = o.s().state();
    o.needs_resume = state == v1::SESSION_STATE_ACTIVE || state == v1::SESSION_STATE_FINISHING;
    if (state == v1::SESSION_STATE_FINISHING) o.finishing_since = clock.Now();
    if (!o.s().id_tag().empty()) {
      absl::StatusOr<std::optional<v1::Card>> card = authorizer->FindCard(o.s().id_tag());
      if (card.ok() && card->has_value()) o.parent_id_tag = (*card)->parent_id_tag();
    }
    evse->open = std::move(o);
    ++resumable;
  }
  if (absl::Status s = manager->Flush(pending); !s.ok()) return s;
  if (resumable > 0) {
    kLog.Info("%d open sessions from %s; each resumes when its EVSE reports (or closes after %s)",
              resumable, store->path(), absl::FormatDuration(options.resume_timeout));
  }
  return manager;
}

// ---------------------------------------------------------------------------
// Pending changes

void SessionManager::Touch(Evse& evse, Pending& pending) {
  pending.rollback.try_emplace(evse.evse_id, evse.open);
}

void SessionManager::Record(Evse& evse, v1::SessionEventType type, Pending& pending) {
  const SessionRecord& record = evse.open->record;
  pending.saves[record.session.session_id()] = record;
  pending.events.emplace_back(type, record.session);
}

absl::Status SessionManager::Flush(Pending& pending) {
  if (pending.saves.empty()) {
    pending = Pending();
    return absl::OkStatus();
  }
  std::vector<SessionRecord> records;
  records.reserve(pending.saves.size());
  for (auto& [id, record] : pending.saves) records.push_back(std::move(record));
  absl::Status status = store_->SaveSessions(records);
  if (status.ok()) {
    const absl::Time now = clock_.Now();
    for (const auto& [type, session] : pending.events) {
      for (const std::shared_ptr<SessionWatch>& watch : watches_) watch->Push(now, type, &session);
    }
  } else {
    kLog.Error("charge records not written, changes undone: %s", status.message());
    for (auto& [evse_id, open] : pending.rollback) {
      if (Evse* evse = FindEvse(evse_id)) evse->open = std::move(open);
    }
  }
  pending = Pending();
  return status;
}

SessionManager::Evse* SessionManager::FindEvse(const std::string& evse_id) {
  auto it = evses_.find(evse_id);
  return it == evses_.end() ? nullptr : &it->second;
}

std::string SessionManager::NewSessionId() {
  // ULID: 48-bit Unix milliseconds + 80 random bits, Crockford base32;
  // sorts by creation time, monotonic within a millisecond.
  int64_t ms = absl::ToUnixMillis(clock_.Now());
  if (ms <= last_id_ms_) {
    ms = last_id_ms_;
    if (++last_id_random_lo_ == 0) last_id_random_hi_ = (last_id_random_hi_ + 1) & 0xffff;
  } else {
    last_id_ms_ = ms;
    last_id_random_hi_ = random_() & 0xffff;
    last_id_random_lo_ = random_();
  }
  unsigned __int128 value = (static_cast<unsigned __int128>(static_cast<uint64_t>(ms)) << 80) |
                            (static_cast<unsigned __int128>(last_id_random_hi_) << 64) |
                            last_id_random_lo_;
  std::string id(26, '0');
  for (int i = 25; i >= 0; --i) {
    id[i] = kCrockford[static_cast<int>(value & 31)];
    value >>= 5;
  }
  return id;
}

// ---------------------------------------------------------------------------
// Lifecycle

void SessionManager::OpenSessionAt(Evse& evse, const std::string& id_tag,
                                   const v1::AuthorizeResponse& auth, v1::StartMode start_mode,
                                   v1::ChargeMode mode, std::optional<double> energy_limit_wh,
                                   std::optional<google::protobuf::Duration> time_limit,
                                   Pending& pending) {
  const absl::Time now = clock_.Now();
  const std::string session_id = NewSessionId();
  if (evse.open) {  // only a DEVICE_LOCAL one gets here
    Close(evse, v1::SESSION_STATE_COMPLETED, v1::STOP_REASON_OTHER, "",
          absl::StrCat("superseded: ", id_tag.empty() ? "evgate" : "card " + id_tag,
                       " authorized the vehicle; energy from then on is in session ", session_id),
          pending);
  }
  Touch(evse, pending);
  OpenSession o;
  v1::Session& s = o.s();
  s.set_session_id(session_id);
  s.set_evse_id(evse.evse_id);
  s.set_station_id(evse.station_id);
  s.set_connector_id(evse.connector_id);
  s.set_id_tag(id_tag);
  s.set_card_name(auth.card_name());
  s.set_state(v1::SESSION_STATE_PENDING_PLUG_IN);
  s.set_connector_status(evse.status);
  s.set_mode(mode);
  *s.mutable_start_time() = ToProto(now);
  s.set_start_mode(start_mode);
  if (energy_limit_wh) s.set_energy_limit_wh(*energy_limit_wh);
  if (time_limit) *s.mutable_time_limit() = *time_limit;
  s.set_energy_authorized(start_mode != v1::START_MODE_DEVICE_LOCAL);
  o.record.authorized_at = now;
  o.parent_id_tag = auth.parent_id_tag();
  evse.open = std::move(o);
  const bool live = evse.state_known && !evse.stale;
  if (live && evse.connected == true) {
    Activate(evse, pending);
    pending.events.pop_back();  // the start is one STARTED event, not STARTED + UPDATED
  }
  Record(evse, v1::SESSION_EVENT_TYPE_STARTED, pending);
  kLog.Info("session %s %s on %s (%s%s)", session_id, Name(evse.open->s().state()), evse.evse_id,
            EnumShortName(v1::StartMode_descriptor(), start_mode),
            id_tag.empty() ? "" : absl::StrCat(", card ", id_tag));
}

void SessionManager::Activate(Evse& evse, Pending& pending) {
  Touch(evse, pending);
  OpenSession& o = *evse.open;
  v1::Session& s = o.s();
  const v1::EvseMeasurements& m = evse.measurements;
  s.set_state(v1::SESSION_STATE_ACTIVE);
  *s.mutable_start_time() = ToProto(clock_.Now());
  s.set_meter_start_wh(m.has_energy_import_wh() ? m.energy_import_wh() : 0);
  s.set_meter_export_start_wh(m.has_energy_export_wh() ? m.energy_export_wh() : 0);
  o.record.meter_last_wh =
      m.has_energy_import_wh() ? std::optional<double>(m.energy_import_wh()) : std::nullopt;
  o.record.meter_export_last_wh =
      m.has_energy_export_wh() ? std::optional<double>(m.energy_export_wh()) : std::nullopt;
  o.record.device_energy_start_wh =
      m.has_session_energy_wh() ? std::optional<double>(m.session_energy_wh()) : std::nullopt;
  s.set_energy_charged_wh(0);
  s.set_energy_discharged_wh(0);
  if (m.has_soc_pct()) {
    s.set_soc_start_pct(m.soc_pct());
    s.set_soc_end_pct(m.soc_pct());
  }
  if (m.has_power_w()) {
    s.set_power_w(m.power_w());
    s.set_peak_power_w(std::abs(m.power_w()));
  }
  if (m.has_measured_at()) *s.mutable_last_meter_at() = m.measured_at();
  s.set_connector_status(evse.status);
  Record(evse, v1::SESSION_EVENT_TYPE_UPDATED, pending);
}

bool SessionManager::UpdateMeter(Evse& evse) {
  OpenSession& o = *evse.open;
  v1::Session& s = o.s();
  const v1::EvseMeasurements& m = evse.measurements;
  bool changed = false;
  auto set = [&changed](double value, double current, auto setter) {
    if (value != current) {
      setter(value);
      changed = true;
    }
  };
  // Energy charged: from the device's own session counter when it has one
  // (Wh resolution; registers such as the Cabur MID total move in 0.1 kWh
  // steps), else from the import register. A start value first seen in the
  // middle of a session is the one that makes the energy so far
  // consistent; a counter that goes below its start (device restarted) is
  // re-based the same way.
  std::optional<double> charged;
  if (m.has_session_energy_wh()) {
    std::optional<double>& start = o.record.device_energy_start_wh;
    if (!start || m.session_energy_wh() < *start) {
      start = m.session_energy_wh() - s.energy_charged_wh();
    }
    charged = m.session_energy_wh() - *start;
  }
  if (m.has_energy_import_wh()) {
    if (!o.record.meter_last_wh) {
      s.set_meter_start_wh(m.energy_import_wh() - s.energy_charged_wh());
    }
    if (o.record.meter_last_wh != m.energy_import_wh()) {
      o.record.meter_last_wh = m.energy_import_wh();
      changed = true;
    }
    if (!charged) charged = m.energy_import_wh() - s.meter_start_wh();
  }
  if (charged) {
    set(std::max(*charged, s.energy_charged_wh()), s.energy_charged_wh(),
        [&s](double v) { s.set_energy_charged_wh(v); });
  }
  if (m.has_energy_export_wh()) {
    double discharged = s.energy_discharged_wh();
    if (!o.record.meter_export_last_wh) {
      s.set_meter_export_start_wh(m.energy_export_wh() - discharged);
    }
    if (o.record.meter_export_last_wh != m.energy_export_wh()) {
      o.record.meter_export_last_wh = m.energy_export_wh();
      changed = true;
    }
    discharged = m.energy_export_wh() - s.meter_export_start_wh();
    set(std::max(discharged, s.energy_discharged_wh()), s.energy_discharged_wh(),
        [&s](double v) { s.set_energy_discharged_wh(v); });
  }
  if (m.has_power_w()) {
    set(m.power_w(), s.power_w(), [&s](double v) { s.set_power_w(v); });
    set(std::max(s.peak_power_w(), std::abs(m.power_w())), s.peak_power_w(),
        [&s](double v) { s.set_peak_power_w(v); });
  }
  if (m.has_soc_pct()) {
    if (!s.has_soc_start_pct()) {
      s.set_soc_start_pct(m.soc_pct());
      changed = true;
    }
    if (!s.has_soc_end_pct() || s.soc_end_pct() != m.soc_pct()) {
      s.set_soc_end_pct(m.soc_pct());
      changed = true;
    }
  }
  if (evse.status != s.connector_status()) {
    s.set_connector_status(evse.status);
    changed = true;
  }
  if (changed && m.has_measured_at()) *s.mutable_last_meter_at() = m.measured_at();
  return changed;
}

void SessionManager::RequestStop(Evse& evse, v1::StopReason reason, const std::string& vendor_code,
                                 const std::string& vendor_description, Pending& pending) {
  OpenSession& o = *evse.open;
  switch (o.s().state()) {
    case v1::SESSION_STATE_PENDING_PLUG_IN:
      Close(evse, v1::SESSION_STATE_CANCELLED, reason, vendor_code, vendor_description, pending);
      return;
    case v1::SESSION_STATE_ACTIVE:
      if (evse.state_known && !evse.stale && evse.status == v1::CONNECTOR_STATUS_CHARGING) {
        Touch(evse, pending);
        v1::Session& s = o.s();
        s.set_state(v1::SESSION_STATE_FINISHING);
        s.set_stop_reason(reason);
        s.set_vendor_stop_code(vendor_code);
        s.set_vendor_stop_description(vendor_description);
        s.set_energy_authorized(false);
        o.finishing_since = clock_.Now();
        Record(evse, v1::SESSION_EVENT_TYPE_UPDATED, pending);
        kLog.Info("session %s on %s stopping (%s); waiting for the EVSE to stop", s.session_id(),
                  evse.evse_id, Name(reason));
      } else {
        Close(evse, v1::SESSION_STATE_COMPLETED, reason, vendor_code, vendor_description, pending);
      }
      return;
    default:
      return;  // FINISHING: already stopping
  }
}

void SessionManager::Close(Evse& evse, v1::SessionState state, v1::StopReason reason,
                           const std::string& vendor_code, const std::string& vendor_description,
                           Pending& pending) {
  Touch(evse, pending);
  OpenSession& o = *evse.open;
  v1::Session& s = o.s();
  const bool had_energy_phase = s.state() != v1::SESSION_STATE_PENDING_PLUG_IN;
  s.set_state(state);
  s.set_stop_reason(reason);
  s.set_vendor_stop_code(vendor_code);
  s.set_vendor_stop_description(vendor_description);
  *s.mutable_end_time() = ToProto(clock_.Now());
  if (had_energy_phase) {
    s.set_meter_stop_wh(
        o.record.meter_last_wh.value_or(s.meter_start_wh() + s.energy_charged_wh()));
    if (o.record.meter_export_last_wh) s.set_meter_export_stop_wh(*o.record.meter_export_last_wh);
  }
  s.set_power_w(0);
  s.set_energy_authorized(false);
  if (evse.state_known) s.set_connector_status(evse.status);
  Record(evse, v1::SESSION_EVENT_TYPE_ENDED, pending);
  kLog.Info("session %s on %s ended %s: %s%s, %.3f kWh charged%s", s.session_id(), evse.evse_id,
            Name(state), Name(reason), vendor_code.empty() ? "" : " (" + vendor_code + ")",
            s.energy_charged_wh() / 1000,
            s.energy_discharged_wh() > 0
                ? absl::StrFormat(", %.3f kWh discharged", s.energy_discharged_wh() / 1000)
                : "");
  evse.open.reset();
}

void SessionManager::Reconcile(Evse& evse, Pending& pending) {
  const absl::Time now = clock_.Now();
  const bool live = evse.state_known && !evse.stale;
  const bool plug_in_edge = std::exchange(evse.plug_in_edge, false);
  const bool charging_edge = std::exchange(evse.charging_edge, false);
  if (!evse.open) {
    if (!live) return;
    if (evse.free_vend && plug_in_edge && evse.connected == true) {
      v1::AuthorizeResponse free_vend;
      free_vend.set_status(v1::AUTHORIZATION_STATUS_ACCEPTED);
      free_vend.set_source(v1::AUTHORIZATION_SOURCE_FREE_VEND);
      OpenSessionAt(evse, "", free_vend, v1::START_MODE_FREE_VEND_PLUG_IN, v1::CHARGE_MODE_CHARGE,
                    std::nullopt, std::nullopt, pending);
    } else if (charging_edge && evse.status == v1::CONNECTOR_STATUS_CHARGING &&
               evse.BlockingFault() == nullptr) {
      // Energy starts flowing without a session. Only on the change to
      // Charging: right after a session ends (fault, device stop code) the
      // status may still say Charging for a moment.
      const v1::ChargeMode mode =
          evse.measurements.has_power_w() && evse.measurements.power_w() < 0 && evse.bidirectional
              ? v1::CHARGE_MODE_DISCHARGE
              : v1::CHARGE_MODE_CHARGE;
      OpenSessionAt(evse, "", v1::AuthorizeResponse(), v1::START_MODE_DEVICE_LOCAL, mode,
                    std::nullopt, std::nullopt, pending);
      kLog.Warning(
          "EVSE %s delivers energy without an evgate session; recorded as %s (DEVICE_LOCAL)",
          evse.evse_id, evse.open->s().session_id());
    }
    return;
  }

  OpenSession& o = *evse.open;
  if (o.needs_resume) {
    if (!live) {
      if (now >= started_at_ + options_.resume_timeout) {
        Close(evse, v1::SESSION_STATE_INTERRUPTED, v1::STOP_REASON_CONTROLLER_RESTART, "",
              absl::StrCat("evgate restarted and EVSE ", evse.evse_id,
                           " did not report its state within ",
                           absl::FormatDuration(options_.resume_timeout),
                           "; meter stop is the last value recorded before the restart"),
              pending);
      }
      return;
    }
    o.needs_resume = false;
    if (evse.connected != true) {
      Close(evse, v1::SESSION_STATE_INTERRUPTED, v1::STOP_REASON_CONTROLLER_RESTART, "",
            absl::StrCat("evgate restarted; EVSE ", evse.evse_id,
                         " then reported no vehicle (connector ", Name(evse.status),
                         "); meter stop is the last value recorded before the restart"),
            pending);
      return;
    }
    kLog.Info("session %s on %s resumed after the restart", o.s().session_id(), evse.evse_id);
  }

  v1::Session& s = o.s();
  bool changed = false;
  switch (s.state()) {
    case v1::SESSION_STATE_PENDING_PLUG_IN:
      if (live && evse.connected == true) {
        Activate(evse, pending);
      } else if (now - o.record.authorized_at >= options_.connection_timeout) {
        Close(evse, v1::SESSION_STATE_CANCELLED, v1::STOP_REASON_AUTHORIZATION_TIMEOUT, "",
              absl::StrCat("no vehicle was plugged in within ",
                           absl::FormatDuration(options_.connection_timeout),
                           " of the authorization"),
              pending);
      }
      return;

    case v1::SESSION_STATE_ACTIVE:
      if (live) {
        Touch(evse, pending);
        changed = UpdateMeter(evse);
        if (evse.connected == false) {
          if (o.link_lost) {
            Close(evse, v1::SESSION_STATE_INTERRUPTED, v1::STOP_REASON_DEVICE_LOST, "",
                  "the device stopped answering during the session and no longer had the "
                  "vehicle when it answered again; meter stop is the last value read",
                  pending);
          } else {
            Close(evse, v1::SESSION_STATE_COMPLETED, v1::STOP_REASON_EV_DISCONNECTED, "", "",
                  pending);
          }
          return;
        }
        if (const v1::Fault* blocking = evse.BlockingFault()) {
          const v1::Fault& fault = *blocking;
          VendorStop stop = MapVendorStopCode(fault.vendor(), fault.vendor_code(), true);
          Close(evse, v1::SESSION_STATE_COMPLETED, stop.reason, fault.vendor_code(),
                !fault.description().empty() ? fault.description() : stop.description, pending);
          return;
        }
        if (evse.status == v1::CONNECTOR_STATUS_FINISHING) {
          Close(evse, v1::SESSION_STATE_COMPLETED, v1::STOP_REASON_OTHER, "",
                "the EVSE ended the session (connector status Finishing) without a reason",
                pending);
          return;
        }
      }
      {
        const bool discharge = s.mode() == v1::CHARGE_MODE_DISCHARGE;
        const double energy = discharge ? s.energy_discharged_wh() : s.energy_charged_wh();
        if (s.has_energy_limit_wh() && energy >= s.energy_limit_wh()) {
          RequestStop(evse, v1::STOP_REASON_ENERGY_LIMIT_REACHED, "",
                      absl::StrFormat("energy limit %.0f Wh reached", s.energy_limit_wh()),
                      pending);
          return;
        }
        if (s.has_time_limit() &&
            now - FromProto(s.start_time()) >=
                absl::Milliseconds(TimeUtil::DurationToMilliseconds(s.time_limit()))) {
          RequestStop(evse, v1::STOP_REASON_TIME_LIMIT_REACHED, "",
                      absl::StrCat("time limit ", TimeUtil::ToString(s.time_limit()), " reached"),
                      pending);
          return;
        }
      }
      break;

    case v1::SESSION_STATE_FINISHING:
      if (live) {
        Touch(evse, pending);
        changed = UpdateMeter(evse);
        if (evse.connected == false || evse.status != v1::CONNECTOR_STATUS_CHARGING) {
          Close(evse, v1::SESSION_STATE_COMPLETED, s.stop_reason(), s.vendor_stop_code(),
                s.vendor_stop_description(), pending);
          return;
        }
      }
      if (now - o.finishing_since >= options_.finishing_timeout) {
        Close(evse, v1::SESSION_STATE_COMPLETED, s.stop_reason(), s.vendor_stop_code(),
              absl::StrCat(s.vendor_stop_description(),
                           s.vendor_stop_description().empty() ? "" : "; ",
                           "the EVSE still reported Charging ",
                           absl::FormatDuration(options_.finishing_timeout),
                           " after the stop; closed with the last meter value"),
              pending);
        if (live && evse.status == v1::CONNECTOR_STATUS_CHARGING) {
          // Energy still flows: account for it, without authorizing it.
          OpenSessionAt(evse, "", v1::AuthorizeResponse(), v1::START_MODE_DEVICE_LOCAL,
                        v1::CHARGE_MODE_CHARGE, std::nullopt, std::nullopt, pending);
        }
        return;
      }
      break;

    default:
      return;
  }
  if (changed) Record(evse, v1::SESSION_EVENT_TYPE_UPDATED, pending);
}

}  // namespace evgate::session
