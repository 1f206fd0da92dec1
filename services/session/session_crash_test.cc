// Crash safety of the session service, end to end: the real `session`
// binary against a fake DeviceDriver peer, killed with SIGKILL at random
// points while sessions start, charge and stop, then restarted. After every
// restart:
//   - no record a client was told about (RPC answer or WatchSessions event)
//     is lost, and a closed record never changes again;
//   - no record is duplicated (unique ids, at most one open session per
//     EVSE, no more RFID / remote / free-vend sessions than taps, starts and
//     plug-ins);
//   - every session open at the kill is resumed (same id) if its EVSE still
//     has the vehicle, or closed INTERRUPTED / CONTROLLER_RESTART with the
//     last meter value it had recorded;
//   - the database passes SQLite's integrity check.
// The seed is printed; kill timing is random by nature.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "evgate/v1/session.grpc.pb.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "runtime/sqlite.h"
#include "services/session/testing/device_events.h"
#include "services/session/testing/fake_device_driver.h"
#include "services/session/testing/test_site.h"

extern char** environ;

namespace evgate::session {
namespace {

using ::google::protobuf::util::TimeUtil;
using namespace ::evgate::session::testing;  // NOLINT: event builders and cards

constexpr int kTrials = 100;
constexpr uint32_t kSeed = 20261121;

struct EvseModel {
  std::string device;
  std::string evse;
  uint32_t connector;
  bool plugged = false;
  bool charging = false;
  double import_wh = 10000;
  double export_wh = 0;
};

bool Closed(const v1::Session& s) { return s.has_end_time(); }

class SessionCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/crash");
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    database_ = dir_ + "/sessions.db";
    binary_ = absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                           "/services/session/session");

    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &driver_port_);
    builder.RegisterService(&driver_);
    driver_server_ = builder.BuildAndStart();
    ASSERT_NE(driver_server_, nullptr);

    site_ = dir_ + "/site.yaml";
    std::ofstream(site_) << TestSiteYaml(database_, absl::StrCat("127.0.0.1:", driver_port_));
    evses_ = {{"wallbox-1", "wb1", 1}, {"wallbox-2", "wb2", 1}, {"wallbox-4", "wb4", 1},
              {"ds60-1", "dc1", 1},    {"ds60-1", "dc2", 2},    {"ice22-1", "v2x1", 1}};
    for (const char* device : {"wallbox-1", "wallbox-2", "wallbox-4", "ds60-1", "ice22-1"}) {
      std::vector<v1::EvseState> states;
      for (const EvseModel& e : evses_) {
        if (e.device == device) states.push_back(State(e));
      }
      driver_.SetDevice(Snapshot(device, states).snapshot());
    }
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    driver_server_->Shutdown(std::chrono::system_clock::now());
  }

  static v1::EvseState State(const EvseModel& e) {
    const v1::ConnectorStatus status = !e.plugged   ? v1::CONNECTOR_STATUS_AVAILABLE
                                       : e.charging ? v1::CONNECTOR_STATUS_CHARGING
                                                    : v1::CONNECTOR_STATUS_SUSPENDED_EVSE;
    const v1::Iec61851State iec = !e.plugged   ? v1::IEC61851_STATE_A
                                  : e.charging ? v1::IEC61851_STATE_C
                                               : v1::IEC61851_STATE_B;
    return Evse(e.evse, status, iec, Meter(e.import_wh, e.charging ? 7400 : 0, e.export_wh),
                e.connector);
  }

  // Starts the binary (pid_ is 0 if that failed).
  void Spawn() {
    const std::string log = dir_ + "/session.log";
    std::remove(log.c_str());
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> args = {binary_, "--site", site_, "--listen", "127.0.0.1:0"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, binary_.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
      pid_ = 0;
    }
    posix_spawn_file_actions_destroy(&actions);
  }

  int WaitForPort() {
    const std::string log = dir_ + "/session.log";
    for (int i = 0; i < 1000; ++i) {
      std::ifstream in(log);
      std::string line;
      while (std::getline(in, line)) {
        const size_t at = line.find("(port ");
        if (line.find("listening on") != std::string::npos && at != std::string::npos) {
          return std::atoi(line.c_str() + at + 6);
        }
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return 0;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    return 0;
  }

  std::string Log() {
    std::ifstream in(dir_ + "/session.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

  // Records what a client was told (acknowledged) about each session.
  void Acknowledge(const v1::Session& s) {
    absl::MutexLock lock(&acked_mu_);
    auto [it, inserted] = acked_.try_emplace(s.session_id(), s);
    if (inserted) return;
    v1::Session& known = it->second;
    if (Closed(known)) return;  // a closed record never changes
    if (Closed(s) || s.energy_charged_wh() >= known.energy_charged_wh()) known = s;
  }

  // Reads a WatchSessions stream until it ends (the process dies).
  void Watch(v1::SessionService::Stub* stub, grpc::ClientContext* context) {
    auto reader = stub->WatchSessions(context, v1::WatchSessionsRequest());
    v1::WatchSessionsResponse event;
    while (reader->Read(&event)) {
      if (event.has_session()) Acknowledge(event.session());
    }
    reader->Finish();
  }

  // Every stored session, read with the public API.
  std::vector<v1::Session> ListAll(v1::SessionService::Stub* stub) {
    std::vector<v1::Session> all;
    v1::ListSessionsRequest request;
    request.set_page_size(1000);
    do {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::ListSessionsResponse response;
      grpc::Status status = stub->ListSessions(&context, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      all.insert(all.end(), response.sessions().begin(), response.sessions().end());
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    return all;
  }

  // The open sessions in the database file of the dead process.
  std::map<std::string, v1::Session> OpenInDatabase() {
    std::map<std::string, v1::Session> open;
    auto db = sqlite::Database::Open(database_, {});
    if (!db.ok()) return open;  // killed before it was created
    auto check = (*db)->Prepare("PRAGMA integrity_check");
    if (check.ok() && *check->Step()) {
      EXPECT_EQ(check->Text(0), "ok");
    }
    auto st = (*db)->Prepare(
        "SELECT session_id, evse_id, state, meter_start_wh, energy_charged_wh FROM sessions WHERE "
        "end_time_us IS NULL");
    if (!st.ok()) return open;  // killed before the schema was written
    while (*st->Step()) {
      v1::Session s;
      s.set_session_id(st->Text(0));
      s.set_evse_id(st->Text(1));
      const std::string state = st->Text(2);
      s.set_state(state == "PENDING_PLUG_IN" ? v1::SESSION_STATE_PENDING_PLUG_IN
                  : state == "FINISHING"     ? v1::SESSION_STATE_FINISHING
                                             : v1::SESSION_STATE_ACTIVE);
      s.set_meter_start_wh(st->Double(3));
      s.set_energy_charged_wh(st->Double(4));
      open[s.session_id()] = s;
    }
    return open;
  }

  const EvseModel& ModelOf(const std::string& evse) {
    for (const EvseModel& e : evses_) {
      if (e.evse == evse) return e;
    }
    ADD_FAILURE() << "no EVSE " << evse;
    return evses_.front();
  }

  // The checks after a restart; `open_at_kill` from the database file.
  void CheckAfterRestart(v1::SessionService::Stub* stub, int trial,
                         const std::map<std::string, v1::Session>& open_at_kill,
                         int streams_before) {
    SCOPED_TRACE(absl::StrCat("trial ", trial, " (seed ", kSeed, ")"));
    // Wait until the service has seen the devices: every session whose
    // vehicle left must be closed; then the rest must be open.
    std::map<std::string, v1::Session> stored;
    int settled_rounds = 0;
    for (int i = 0; i < 300; ++i) {
      stored.clear();
      for (const v1::Session& s : ListAll(stub)) {
        EXPECT_TRUE(stored.emplace(s.session_id(), s).second) << "duplicate id " << s.session_id();
      }
      bool settled = driver_.streams_opened() > streams_before;
      for (const auto& [id, was] : open_at_kill) {
        if (was.state() != v1::SESSION_STATE_PENDING_PLUG_IN && !ModelOf(was.evse_id()).plugged) {
          settled = settled && Closed(stored[id]);
        }
      }
      // Settled: the new process has its device stream and had a moment
      // to apply the snapshots.
      static constexpr int kGraceRounds = 5;
      if (settled && ++settled_rounds >= kGraceRounds) break;
      absl::SleepFor(absl::Milliseconds(10));
    }

    std::map<std::string, int> open_per_evse;
    std::map<v1::StartMode, int> by_start_mode;
    for (const auto& [id, s] : stored) {
      if (!Closed(s)) {
        EXPECT_EQ(++open_per_evse[s.evse_id()], 1) << "two open on " << s.evse_id();
      }
      ++by_start_mode[s.start_mode()];
    }
    EXPECT_LE(by_start_mode[v1::START_MODE_RFID], taps_);
    EXPECT_LE(by_start_mode[v1::START_MODE_REMOTE], remote_starts_);
    EXPECT_LE(by_start_mode[v1::START_MODE_FREE_VEND_PLUG_IN], free_vend_plug_ins_);

    {
      absl::MutexLock lock(&acked_mu_);
      for (const auto& [id, told] : acked_) {
        auto it = stored.find(id);
        ASSERT_NE(it, stored.end()) << "acknowledged session " << id << " lost";
        const v1::Session& now = it->second;
        if (Closed(told)) {
          EXPECT_TRUE(Closed(now)) << id;
          EXPECT_EQ(now.state(), told.state()) << id;
          EXPECT_EQ(now.stop_reason(), told.stop_reason()) << id;
          EXPECT_EQ(TimeUtil::TimestampToMicroseconds(now.end_time()),
                    TimeUtil::TimestampToMicroseconds(told.end_time()))
              << id;
          EXPECT_EQ(now.meter_stop_wh(), told.meter_stop_wh()) << id;
        } else {
          EXPECT_GE(now.energy_charged_wh(), told.energy_charged_wh()) << id;
        }
      }
    }

    for (const auto& [id, was] : open_at_kill) {
      const v1::Session& now = stored[id];
      ASSERT_EQ(now.session_id(), id) << "session open at the kill is gone";
      if (was.state() == v1::SESSION_STATE_PENDING_PLUG_IN) {
        EXPECT_FALSE(Closed(now)) << id << " was waiting for its vehicle";
        continue;
      }
      if (ModelOf(was.evse_id()).plugged) {
        EXPECT_EQ(now.meter_start_wh(), was.meter_start_wh()) << id;
        if (was.state() == v1::SESSION_STATE_FINISHING) {
          // Resumed, and closes normally once the EVSE is seen not charging.
          EXPECT_TRUE(!Closed(now) || now.state() == v1::SESSION_STATE_COMPLETED) << id;
        } else {
          EXPECT_FALSE(Closed(now)) << id << " on " << was.evse_id() << " not resumed";
        }
        ++resumed_;
      } else {
        EXPECT_EQ(now.state(), v1::SESSION_STATE_INTERRUPTED) << id;
        EXPECT_EQ(now.stop_reason(), v1::STOP_REASON_CONTROLLER_RESTART) << id;
        EXPECT_DOUBLE_EQ(now.meter_stop_wh(), was.meter_start_wh() + was.energy_charged_wh()) << id;
        ++closed_on_restart_;
      }
    }
  }

  // One random action on the site, through the fake devices or the API.
  void RandomAction(std::mt19937& rng, v1::SessionService::Stub* stub) {
    EvseModel& e = evses_[rng() % evses_.size()];
    const char* cards[] = {kVanCard, kOtherVanCard, kMasterCard};
    const std::string card = cards[rng() % 3];
    switch (rng() % 8) {
      case 0:  // plug in / unplug
        e.plugged = !e.plugged;
        e.charging = false;
        if (e.plugged && e.evse == "wb4") ++free_vend_plug_ins_;
        driver_.Publish(StateChange(e.device, State(e)));
        break;
      case 1:  // the vehicle starts or stops drawing
        if (!e.plugged) break;
        e.charging = !e.charging;
        driver_.Publish(StateChange(e.device, State(e)));
        break;
      case 2:
      case 3: {  // energy flows
        if (e.charging) e.import_wh += static_cast<double>(1 + rng() % 50);
        driver_.Publish(
            Telemetry(e.device, e.evse, Meter(e.import_wh, e.charging ? 7400 : 0, e.export_wh)));
        break;
      }
      case 4:
      case 5:  // a card at the reader
        ++taps_;
        driver_.Publish(Tap(e.device, e.evse, card));
        break;
      case 6: {  // remote start
        ++remote_starts_;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
        v1::StartSessionRequest request;
        request.set_evse_id(e.evse);
        request.set_id_tag(card);
        v1::StartSessionResponse response;
        if (stub->StartSession(&context, request, &response).ok()) {
          Acknowledge(response.session());
        }
        break;
      }
      case 7: {  // remote stop
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
        v1::StopSessionRequest request;
        request.set_evse_id(e.evse);
        v1::StopSessionResponse response;
        if (stub->StopSession(&context, request, &response).ok()) {
          Acknowledge(response.session());
        }
        break;
      }
    }
  }

  std::string dir_, database_, binary_, site_;
  FakeDeviceDriver driver_;
  std::unique_ptr<grpc::Server> driver_server_;
  int driver_port_ = 0;
  std::vector<EvseModel> evses_;
  pid_t pid_ = 0;

  absl::Mutex acked_mu_;
  std::map<std::string, v1::Session> acked_ ABSL_GUARDED_BY(acked_mu_);
  int taps_ = 0, remote_starts_ = 0, free_vend_plug_ins_ = 0;
  int resumed_ = 0, closed_on_restart_ = 0, kills_during_startup_ = 0;
};

TEST_F(SessionCrashTest, SigkillAtRandomPointsLosesAndDuplicatesNothing) {
  std::cout << "seed " << kSeed << ", " << kTrials << " trials\n";
  std::mt19937 rng(kSeed);
  std::map<std::string, v1::Session> open_at_kill;
  for (int trial = 0; trial <= kTrials; ++trial) {
    const int streams_before = driver_.streams_opened();
    Spawn();
    ASSERT_GT(pid_, 0) << "cannot start " << binary_;
    // One trial in ten is killed while the process starts (opening and
    // migrating the database, loading the open sessions).
    if (trial < kTrials && rng() % 10 == 0) {
      absl::SleepFor(absl::Milliseconds(rng() % 20));
      Kill();
      ++kills_during_startup_;
      open_at_kill = OpenInDatabase();
      continue;
    }
    const int port = WaitForPort();
    ASSERT_GT(port, 0) << "trial " << trial << ": the session binary did not start:\n" << Log();
    auto stub = v1::SessionService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    CheckAfterRestart(stub.get(), trial, open_at_kill, streams_before);
    if (HasFatalFailure() || HasFailure()) {
      std::cout << "--- session log of trial " << trial << "\n" << Log();
      return;
    }
    if (trial == kTrials) break;

    // Activity, and a kill at a random moment in it.
    grpc::ClientContext watch_context;
    std::thread watcher([&] { Watch(stub.get(), &watch_context); });
    std::atomic<bool> killed{false};
    const absl::Duration kill_after = absl::Microseconds(rng() % 120000);
    std::thread killer([&] {
      absl::SleepFor(kill_after);
      kill(pid_, SIGKILL);
      killed = true;
    });
    while (!killed) {
      RandomAction(rng, stub.get());
      absl::SleepFor(absl::Microseconds(rng() % 3000));
    }
    killer.join();
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
    watch_context.TryCancel();
    watcher.join();
    open_at_kill = OpenInDatabase();
    // While evgate is down, some vehicles leave.
    for (EvseModel& e : evses_) {
      if (e.plugged && rng() % 4 == 0) {
        e.plugged = e.charging = false;
        driver_.Publish(StateChange(e.device, State(e)));
      }
    }
  }
  absl::MutexLock lock(&acked_mu_);
  std::cout << kTrials << " kills (" << kills_during_startup_ << " during startup), "
            << acked_.size() << " sessions acknowledged, " << resumed_ << " resumed and "
            << closed_on_restart_ << " closed after a restart\n";
  EXPECT_GT(acked_.size(), 50u);  // the trials did make sessions
  EXPECT_GT(resumed_, 0);
  EXPECT_GT(closed_on_restart_, 0);
  Kill();
}

// The demo flow with the real binaries, a fake DeviceDriver standing
// in for the wallbox simulator: a tap starts a session that
// `evgatectl sessions list` shows with live energy, a second tap stops it,
// and the record exports to CSV.
TEST_F(SessionCrashTest, TapListLiveEnergyTapStopExportWithEvgatectl) {
  Spawn();
  const int port = WaitForPort();
  ASSERT_GT(port, 0) << Log();
  const std::string ctl =
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                   "/tools/evgatectl/evgatectl --server 127.0.0.1:", port, " ");
  auto run = [](const std::string& command) {
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
    return out;
  };
  auto eventually = [&](const std::string& command, const std::string& text) {
    std::string out;
    for (int i = 0; i < 100; ++i) {
      out = run(command);
      if (out.find(text) != std::string::npos) return out;
      absl::SleepFor(absl::Milliseconds(30));
    }
    ADD_FAILURE() << "no '" << text << "' in the output of " << command << ":\n" << out << Log();
    return out;
  };
  EvseModel& wb1 = evses_[0];
  // Taps are events, not state: publish them once the service listens.
  for (int i = 0; i < 250 && driver_.streams_open() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_GT(driver_.streams_open(), 0) << Log();
  wb1.plugged = true;
  driver_.Publish(StateChange(wb1.device, State(wb1)));
  driver_.Publish(Tap(wb1.device, wb1.evse, kVanCard));
  wb1.charging = true;
  driver_.Publish(StateChange(wb1.device, State(wb1)));
  wb1.import_wh += 2345;
  driver_.Publish(Telemetry(wb1.device, wb1.evse, Meter(wb1.import_wh, 7400)));
  const std::string live = eventually(ctl + "sessions list", "2.345");
  EXPECT_NE(live.find("ACTIVE"), std::string::npos) << live;
  EXPECT_NE(live.find("7.40"), std::string::npos) << live;  // power kW

  driver_.Publish(Tap(wb1.device, wb1.evse, kVanCard));
  eventually(ctl + "sessions list", "FINISHING");
  wb1.charging = false;
  driver_.Publish(StateChange(wb1.device, State(wb1)));
  eventually(ctl + "sessions list", "COMPLETED");
  const std::string csv = run(ctl + "sessions export --format csv --from 2020-01-01");
  EXPECT_NE(csv.find(",wb1,wb1,1,04B2C3D4E5F607,COMPLETED,CHARGE,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",RFID,LOCAL,,stopped by card 04B2C3D4E5F607 at the EVSE,10000.0,12345.0,"
                     "2345.0,0.0,7400,Van 12,"),
            std::string::npos)
      << csv;
}

}  // namespace
}  // namespace evgate::session
