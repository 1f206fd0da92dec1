// Fuzz target: everything that reaches the session service from outside —
// device events (as a driver could send them, well-formed or not) and API
// requests — driven into a SessionManager and SessionStore on the test site.
//
// Input: a sequence of operations, each an opcode byte followed by its
// parameter bytes (missing bytes read as 0):
//   0 snapshot of a device      1 EVSE state change        2 telemetry
//   3 RFID tap                  4 fault raised             5 fault cleared
//   6 link stale / recovered    7 stream started / lost / snapshot complete
//   8 StartSession / StopSession / Authorize               9 time passes + Tick
//  10 a raw WatchDevicesResponse (length byte, then that many bytes of
//     protobuf wire format)      11 ListSessions with arbitrary filters/token
//  12 UpsertCards / DeleteCard from raw protobuf bytes
// Measurements may be NaN, infinite or negative.
//
// Checks, beyond "no crash / no sanitizer report": at most one open session
// per EVSE; open sessions' energies are finite and never negative; what the
// manager holds open is exactly what the database says is open (nothing
// published that was not stored); every ListSessions answer is OK or
// INVALID_ARGUMENT.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/log.h"
#include "runtime/sqlite.h"
#include "services/session/authorizer.h"
#include "services/session/session_manager.h"
#include "services/session/session_store.h"
#include "services/session/testing/device_events.h"
#include "services/session/testing/test_site.h"
#include "site_controller/config/site_config_loader.h"

namespace {

namespace v1 = evgate::v1;
namespace t = evgate::session::testing;
using evgate::session::SessionManager;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Evse {
  const char* device;
  const char* evse;
  uint32_t connector;
};
constexpr Evse kEvses[] = {{"wallbox-1", "wb1", 1}, {"wallbox-2", "wb2", 1},
                           {"wallbox-4", "wb4", 1}, {"ds60-1", "dc1", 1},
                           {"ds60-1", "dc2", 2},    {"ice22-1", "v2x1", 1}};
constexpr const char* kCards[] = {t::kVanCard, t::kOtherVanCard, t::kMasterCard, t::kBlockedCard,
                                  t::kTempCard};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  uint8_t Byte() { return at_ < size_ ? data_[at_++] : 0; }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - std::min(at_, size_));
    std::string out(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return out;
  }
  // A measurement: usually a plausible number, sometimes NaN, infinite or
  // negative.
  double Value(double scale) {
    const uint8_t b = Byte();
    if (b == 0xFF) return std::numeric_limits<double>::quiet_NaN();
    if (b == 0xFE) return std::numeric_limits<double>::infinity();
    if (b == 0xFD) return -1e9;
    return b * scale;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// The world shared by all inputs: one database file (on tmpfs when there is
// one, so fsync is cheap), emptied before every input.
struct World {
  World() {
    evgate::log::SetMinLevel(evgate::log::Level::kError);
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string dir =
        std::filesystem::is_directory("/dev/shm")
            ? "/dev/shm"
            : (tmp != nullptr ? tmp : std::filesystem::temp_directory_path().string());
    path = absl::StrCat(dir, "/evgate-session-fuzz-", getpid(), ".db");
    std::filesystem::remove(path);
    auto loaded = evgate::site::LoadSiteConfigString(t::TestSiteYaml(path), "site.yaml");
    Check(loaded.ok());
    config = *loaded;
    store = *evgate::session::SessionStore::Open(path, clock);
    authorizer = std::make_unique<evgate::session::Authorizer>(config, store.get(), clock);
    cleaner = *evgate::sqlite::Database::Open(path, {});
  }
  ~World() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
  std::string path;
  evgate::FakeClock clock;
  evgate::site::SiteConfig config;
  std::unique_ptr<evgate::session::SessionStore> store;
  std::unique_ptr<evgate::session::Authorizer> authorizer;
  // A second connection that empties the tables between inputs.
  std::unique_ptr<evgate::sqlite::Database> cleaner;
};

World& TheWorld() {
  static World* world = new World();
  return *world;
}

// Empty tables and the same time for each input, so an input reproduces
// alone.
void Reset(World& w) {
  Check(w.cleaner->Exec("DELETE FROM sessions; DELETE FROM cards; DELETE FROM authorization_cache;")
            .ok());
  w.clock.Set(absl::FromUnixSeconds(1'800'000'000));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  Reset(w);
  auto created = SessionManager::Create(w.config, w.store.get(), w.authorizer.get(), w.clock, {});
  Check(created.ok());
  SessionManager& manager = **created;

  Reader in(data, size);
  while (!in.done()) {
    const uint8_t op = in.Byte() % 13;
    const Evse& e = kEvses[in.Byte() % 6];
    switch (op) {
      case 0:
      case 1: {
        v1::EvseMeasurements m = t::Meter(in.Value(100), in.Value(100) - 5000, in.Value(10));
        if (in.Byte() & 1) m.set_session_energy_wh(in.Value(10));
        if (in.Byte() & 1) m.set_soc_pct(in.Value(1));
        const v1::EvseState state =
            t::Evse(e.evse, static_cast<v1::ConnectorStatus>(in.Byte() % 11),
                    static_cast<v1::Iec61851State>(in.Byte() % 8), m, e.connector);
        manager.OnDeviceEvent(op == 0 ? t::Snapshot(e.device, {state}, in.Byte() & 1)
                                      : t::StateChange(e.device, state));
        break;
      }
      case 2: {
        v1::EvseMeasurements m = t::Meter(in.Value(100), in.Value(100) - 5000, in.Value(10));
        if (in.Byte() & 1) m.set_session_energy_wh(in.Value(10));
        manager.OnDeviceEvent(t::Telemetry(e.device, e.evse, m));
        break;
      }
      case 3: {
        const uint8_t which = in.Byte();
        const std::string tag = which % 7 == 6 ? in.Bytes(in.Byte() % 24) : kCards[which % 5];
        manager.OnDeviceEvent(t::Tap(e.device, which & 0x80 ? "" : e.evse, tag));
        break;
      }
      case 4:
      case 5: {
        static constexpr const char* kVendors[] = {"cabur_ev_plus", "ds60", "ice22_stop_reason",
                                                   "ocpp"};
        static constexpr const char* kCodes[] = {"ERR OCP", "012251", "207", "2",   "401",
                                                 "215",     "023979", "",    "999", "x"};
        const char* vendor = kVendors[in.Byte() % 4];
        const char* code = kCodes[in.Byte() % 10];
        const bool device_wide = in.Byte() & 1;
        manager.OnDeviceEvent(
            op == 4
                ? t::FaultRaised(e.device, device_wide ? "" : e.evse, vendor, code, in.Byte() & 1)
                : t::FaultCleared(e.device, device_wide ? "" : e.evse, vendor, code));
        break;
      }
      case 6:
        manager.OnDeviceEvent(t::LinkChange(e.device, in.Byte() & 1));
        break;
      case 7:
        switch (in.Byte() % 3) {
          case 0:
            manager.OnStreamStarted();
            break;
          case 1:
            manager.OnStreamLost(absl::UnavailableError("gone"));
            break;
          default:
            manager.OnDeviceEvent(t::SnapshotComplete());
        }
        break;
      case 8: {
        const uint8_t kind = in.Byte();
        if (kind % 3 == 0) {
          v1::StartSessionRequest r;
          r.set_evse_id(kind & 0x80 ? "nope" : e.evse);
          r.set_id_tag(kCards[in.Byte() % 5]);
          if (in.Byte() & 1) r.set_mode(static_cast<v1::ChargeMode>(in.Byte() % 4));
          if (in.Byte() & 1) r.set_energy_limit_wh(in.Value(10) - 100);
          if (in.Byte() & 1) r.mutable_time_limit()->set_seconds(in.Byte() - 10);
          (void)manager.StartSession(r);
        } else if (kind % 3 == 1) {
          v1::StopSessionRequest r;
          if (in.Byte() & 1) {
            r.set_evse_id(e.evse);
          } else {
            r.set_session_id(in.Bytes(in.Byte() % 30));
          }
          r.set_reason(static_cast<v1::StopReason>(in.Byte() % 22));
          (void)manager.StopSession(r);
        } else {
          v1::AuthorizeRequest r;
          r.set_id_tag(kCards[in.Byte() % 5]);
          r.set_evse_id(e.evse);
          (void)manager.Authorize(r);
        }
        break;
      }
      case 9:
        w.clock.Advance(absl::Seconds(in.Byte()) * (in.Byte() % 4 == 0 ? 10 : 1));
        manager.Tick();
        break;
      case 10: {
        v1::WatchDevicesResponse event;
        if (event.ParseFromString(in.Bytes(in.Byte()))) manager.OnDeviceEvent(event);
        break;
      }
      case 11: {
        v1::ListSessionsRequest r;
        (void)r.ParseFromString(in.Bytes(in.Byte()));
        if (r.page_size() > 1000) r.set_page_size(1000);
        auto page = w.store->ListSessions(r);
        Check(page.ok() || page.status().code() == absl::StatusCode::kInvalidArgument);
        break;
      }
      case 12: {
        v1::UpsertCardsRequest r;
        if (r.ParseFromString(in.Bytes(in.Byte())) && r.cards_size() < 20) {
          (void)w.authorizer->UpsertCards(r);
        }
        if (in.Byte() & 1) (void)w.authorizer->DeleteCard(in.Bytes(in.Byte() % 24));
        break;
      }
    }
  }

  // Durable == live, one open session per EVSE, sane energies.
  std::set<std::string> live_ids, evses;
  for (const v1::Session& s : manager.OpenSessions()) {
    Check(evses.insert(s.evse_id()).second);
    live_ids.insert(s.session_id());
    Check(std::isfinite(s.energy_charged_wh()) && s.energy_charged_wh() >= 0);
    Check(std::isfinite(s.energy_discharged_wh()) && s.energy_discharged_wh() >= 0);
  }
  v1::ListSessionsRequest open;
  open.set_state(v1::SESSION_STATE_FILTER_OPEN);
  open.set_page_size(1000);
  auto stored = w.store->ListSessions(open);
  Check(stored.ok());
  std::set<std::string> stored_ids;
  for (const v1::Session& s : stored->sessions()) stored_ids.insert(s.session_id());
  Check(stored_ids == live_ids);
  return 0;
}
