#include "services/session/session_manager.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"
#include "runtime/log.h"
#include "services/session/stop_reasons.h"

namespace evgate::session {
namespace {

constexpr log::Logger kLog("session");

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(ts));
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string Name(const v1::SessionState state) {
  return EnumShortName(v1::SessionState_descriptor(), state);
}
std::string Name(const v1::StopReason reason) {
  return EnumShortName(v1::StopReason_descriptor(), reason);
}
std::string Name(const v1::ConnectorStatus status) {
  return EnumShortName(v1::ConnectorStatus_descriptor(), status);
}

bool IsOpenAuthorized(const v1::Session& s) {
  return s.start_mode() != v1::START_MODE_DEVICE_LOCAL &&
         (s.state() == v1::SESSION_STATE_PENDING_PLUG_IN || s.state() == v1::SESSION_STATE_ACTIVE);
}

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
// SessionWatch

SessionWatch::Next SessionWatch::Wait(absl::Duration timeout, v1::WatchSessionsResponse* event,
                                      absl::Status* end) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || ended_.has_value();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (ended_) {
    *end = *ended_;
    return Next::kEnded;
  }
  if (queue_.empty()) return Next::kTimeout;
  *event = std::move(queue_.front());
  queue_.pop_front();
  return Next::kEvent;
}

void SessionWatch::Push(absl::Time at, v1::SessionEventType type, const v1::Session* session) {
  if (session != nullptr && !evse_ids_.empty() && evse_ids_.count(session->evse_id()) == 0) {
    return;
  }
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  if (queue_.size() >= max_queued_) {
    queue_.clear();
    ended_ = absl::ResourceExhaustedError(
        absl::StrCat("this WatchSessions stream fell more than ", max_queued_,
                     " events behind; reconnect to get a fresh snapshot"));
    return;
  }
  v1::WatchSessionsResponse& event = queue_.emplace_back();
  event.set_sequence(++sequence_);
  *event.mutable_at() = ToProto(at);
  event.set_event(type);
  if (session != nullptr) *event.mutable_session() = *session;
}

void SessionWatch::End(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  queue_.clear();
  ended_ = std::move(status);
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

// ---------------------------------------------------------------------------
// Device events

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

// ---------------------------------------------------------------------------
// API

absl::StatusOr<v1::AuthorizeResponse> SessionManager::Authorize(
    const v1::AuthorizeRequest& request) {
  absl::StatusOr<std::string> id_tag = NormalizeIdTag(request.id_tag(), "id_tag");
  if (!id_tag.ok()) return id_tag.status();
  absl::StatusOr<AuthorizationDecision> decision =
      authorizer_->Authorize(*id_tag, request.evse_id());
  if (!decision.ok()) return decision.status();
  v1::AuthorizeResponse response = decision->response;
  if (response.status() == v1::AUTHORIZATION_STATUS_ACCEPTED) {
    absl::MutexLock lock(&mu_);
    if (ConcurrentSession(*id_tag, response.parent_id_tag(), request.evse_id()) != nullptr) {
      response.set_status(v1::AUTHORIZATION_STATUS_CONCURRENT_TX);
    }
  }
  return response;
}

absl::StatusOr<v1::Session> SessionManager::StartSession(const v1::StartSessionRequest& request) {
  if (request.evse_id().empty()) {
    return absl::InvalidArgumentError("evse_id is empty; give the EVSE to start on");
  }
  absl::StatusOr<std::string> id_tag = NormalizeIdTag(request.id_tag(), "id_tag");
  if (!id_tag.ok()) return id_tag.status();
  v1::ChargeMode mode = v1::CHARGE_MODE_CHARGE;
  if (request.has_mode()) {
    if (!v1::ChargeMode_IsValid(request.mode())) {
      return absl::InvalidArgumentError(
          absl::StrCat("mode ", request.mode(), " is not a ChargeMode; use CHARGE or DISCHARGE"));
    }
    if (request.mode() != v1::CHARGE_MODE_UNSPECIFIED) mode = request.mode();
  }
  std::optional<double> energy_limit;
  if (request.has_energy_limit_wh()) {
    if (!(request.energy_limit_wh() > 0) || !std::isfinite(request.energy_limit_wh())) {
      return absl::InvalidArgumentError(absl::StrCat("energy_limit_wh ", request.energy_limit_wh(),
                                                     " must be a positive number of Wh"));
    }
    energy_limit = request.energy_limit_wh();
  }
  std::optional<google::protobuf::Duration> time_limit;
  if (request.has_time_limit()) {
    const google::protobuf::Duration& limit = request.time_limit();
    if (limit.seconds() < 0 || limit.nanos() < 0 || limit.nanos() > 999999999 ||
        limit.seconds() > TimeUtil::kDurationMaxSeconds ||
        TimeUtil::DurationToMilliseconds(limit) <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "time_limit ", TimeUtil::ToString(request.time_limit()), " must be positive"));
    }
    time_limit = request.time_limit();
  }

  // Checks the EVSE; called before and (after authorizing) again under the
  // lock, since the EVSE may have changed in between.
  auto check_evse = [&](Evse* evse) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (evse == nullptr) {
      std::vector<std::string> known;
      for (const auto& [id, e] : evses_) known.push_back(id);
      return absl::NotFoundError(absl::StrCat("unknown EVSE '", request.evse_id(),
                                              "'; site.yaml defines ", absl::StrJoin(known, ", ")));
    }
    if (mode == v1::CHARGE_MODE_DISCHARGE && !evse->bidirectional) {
      return absl::FailedPreconditionError(
          absl::StrCat("EVSE ", evse->evse_id,
                       " cannot discharge (not bidirectional in site.yaml); start with CHARGE"));
    }
    if (evse->open && evse->open->s().start_mode() != v1::START_MODE_DEVICE_LOCAL) {
      const v1::Session& s = evse->open->s();
      return absl::FailedPreconditionError(
          absl::StrCat("EVSE ", evse->evse_id, " already has session ", s.session_id(), " (",
                       Name(s.state()), s.id_tag().empty() ? "" : ", card " + s.id_tag(),
                       ") since ", TimeText(FromProto(s.start_time())), "; stop it first"));
    }
    const v1::Fault* fault = evse->BlockingFault();
    if (evse->state_known && !evse->stale &&
        (evse->status == v1::CONNECTOR_STATUS_FAULTED ||
         evse->status == v1::CONNECTOR_STATUS_UNAVAILABLE || fault != nullptr)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "EVSE ", evse->evse_id, " cannot charge now (connector ", Name(evse->status),
          fault == nullptr
              ? std::string()
              : absl::StrCat(", fault ", fault->vendor_code(), " ", fault->description()),
          "); try again when it is available"));
    }
    return absl::OkStatus();
  };
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = check_evse(FindEvse(request.evse_id())); !s.ok()) return s;
  }
  absl::StatusOr<AuthorizationDecision> decision =
      authorizer_->Authorize(*id_tag, request.evse_id());
  if (!decision.ok()) return decision.status();
  if (decision->response.status() != v1::AUTHORIZATION_STATUS_ACCEPTED) {
    return absl::PermissionDeniedError(absl::StrCat(
        EnumShortName(v1::AuthorizationStatus_descriptor(), decision->response.status()), ": ",
        decision->explanation));
  }

  absl::MutexLock lock(&mu_);
  Evse* evse = FindEvse(request.evse_id());
  if (absl::Status s = check_evse(evse); !s.ok()) return s;
  if (const OpenSession* other =
          ConcurrentSession(*id_tag, decision->response.parent_id_tag(), evse->evse_id)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "CONCURRENT_TX: card ", *id_tag, " already has session ",
        other->record.session.session_id(), " on EVSE ", other->record.session.evse_id(),
        "; one session per card (or card group) at a time"));
  }
  Pending pending;
  OpenSessionAt(*evse, *id_tag, decision->response, v1::START_MODE_REMOTE, mode, energy_limit,
                time_limit, pending);
  const std::string session_id = evse->open->s().session_id();
  if (absl::Status s = Flush(pending); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("session not started: ", s.message()));
  }
  return evse->open->s();
}

absl::StatusOr<v1::Session> SessionManager::StopSession(const v1::StopSessionRequest& request) {
  if (request.target_case() == v1::StopSessionRequest::TARGET_NOT_SET ||
      (request.target_case() == v1::StopSessionRequest::kSessionId &&
       request.session_id().empty()) ||
      (request.target_case() == v1::StopSessionRequest::kEvseId && request.evse_id().empty())) {
    return absl::InvalidArgumentError("give session_id or evse_id of the session to stop");
  }
  if (!v1::StopReason_IsValid(request.reason())) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason ", request.reason(), " is not a StopReason"));
  }
  const v1::StopReason reason =
      request.reason() == v1::STOP_REASON_UNSPECIFIED ? v1::STOP_REASON_REMOTE : request.reason();

  absl::MutexLock lock(&mu_);
  Evse* evse = nullptr;
  if (request.target_case() == v1::StopSessionRequest::kEvseId) {
    evse = FindEvse(request.evse_id());
    if (evse == nullptr) {
      return absl::NotFoundError(absl::StrCat("unknown EVSE '", request.evse_id(), "'"));
    }
    if (!evse->open) {
      return absl::NotFoundError(
          absl::StrCat("EVSE ", request.evse_id(), " has no open session; nothing to stop"));
    }
  } else {
    for (auto& [id, e] : evses_) {
      if (e.open && e.open->s().session_id() == request.session_id()) evse = &e;
    }
    if (evse == nullptr) {
      absl::StatusOr<SessionRecord> stored = store_->GetSession(request.session_id());
      if (!stored.ok()) return stored.status();
      const v1::Session& s = stored->session;
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", s.session_id(), " already ended at ",
          s.has_end_time() ? TimeText(FromProto(s.end_time())) : std::string("?"), " (",
          Name(s.state()), ", stop reason ", Name(s.stop_reason()), "); nothing to stop"));
    }
  }
  const std::string session_id = evse->open->s().session_id();
  Pending pending;
  RequestStop(*evse, reason, "", "", pending);
  if (pending.saves.empty()) return evse->open->s();  // already FINISHING
  const v1::Session after = pending.saves.at(session_id).session;
  if (absl::Status s = Flush(pending); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("session not stopped: ", s.message()));
  }
  return after;
}

absl::StatusOr<std::shared_ptr<SessionWatch>> SessionManager::Watch(
    const std::vector<std::string>& evse_ids) {
  absl::MutexLock lock(&mu_);
  for (const std::string& id : evse_ids) {
    if (FindEvse(id) == nullptr) {
      return absl::NotFoundError(absl::StrCat("unknown EVSE '", id, "' in evse_ids"));
    }
  }
  std::shared_ptr<SessionWatch> watch(new SessionWatch(
      std::set<std::string>(evse_ids.begin(), evse_ids.end()), options_.max_queued_watch_events));
  const absl::Time now = clock_.Now();
  for (const auto& [id, evse] : evses_) {
    if (evse.open) watch->Push(now, v1::SESSION_EVENT_TYPE_SNAPSHOT, &evse.open->record.session);
  }
  watch->Push(now, v1::SESSION_EVENT_TYPE_SNAPSHOT_COMPLETE, nullptr);
  watches_.insert(watch);
  return watch;
}

void SessionManager::EndWatch(const std::shared_ptr<SessionWatch>& watch) {
  absl::MutexLock lock(&mu_);
  watches_.erase(watch);
}

void SessionManager::EndAllWatches(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<SessionWatch>& watch : watches_) watch->End(status);
  watches_.clear();
}

std::vector<v1::Session> SessionManager::OpenSessions() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Session> sessions;
  for (const auto& [id, evse] : evses_) {
    if (evse.open) sessions.push_back(evse.open->record.session);
  }
  return sessions;
}

}  // namespace evgate::session
