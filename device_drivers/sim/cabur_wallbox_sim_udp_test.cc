// The cabur_wallbox_sim binary on evgate's UDP virtual CAN bus, seen by a
// controller endpoint in this test: the wallbox announces itself, follows the
// setpoints, and falls back to its failsafe current when the controller is
// gone (killed), as the "done when" asks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "device_drivers/can/udp_can_bus.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"

namespace evgate::sim {
namespace {

namespace wb = can::wallbox;

class SimProcess {
 public:
  explicit SimProcess(const std::vector<std::string>& args) {
    const std::string binary = std::string(std::getenv("TEST_SRCDIR")) + "/" +
                               std::getenv("TEST_WORKSPACE") +
                               "/device_drivers/sim/cabur_wallbox_sim";
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv{const_cast<char*>(binary.c_str())};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
  }
  ~SimProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }

 private:
  pid_t pid_ = -1;
};

// Next decoded Status of `address` for which `done` holds, within `limit`.
template <typename F>
std::optional<wb::Status> WaitForStatus(can::CanBus& bus, int address, absl::Duration limit, F done,
                                        const std::optional<wb::Setpoint>& feed = {}) {
  const absl::Time end = absl::Now() + limit;
  absl::Time next_feed = absl::InfinitePast();
  while (absl::Now() < end) {
    if (feed.has_value() && absl::Now() >= next_feed) {
      EXPECT_TRUE(bus.Send(*wb::Encode(*feed)).ok());
      next_feed = absl::Now() + absl::Milliseconds(200);
    }
    can::BusEvent e = bus.Receive(absl::Milliseconds(50));
    if (e.kind != can::BusEventKind::kFrame) continue;
    absl::StatusOr<wb::Message> m = wb::Decode(*e.frame);
    if (!m.ok()) continue;
    if (auto* s = std::get_if<wb::Status>(&*m); s && s->address == address && done(*s)) return *s;
  }
  return std::nullopt;
}

TEST(CaburWallboxSimBinary, FollowsSetpointsAndFallsBackWhenTheControllerDies) {
  can::UdpCanBusOptions options;
  options.name = "controller";
  options.port = 0;  // a free port; the simulator joins it
  can::UdpCanBus controller(options, SystemClock::Get());
  ASSERT_TRUE(controller.Open().ok());
  const std::string bus = "udp:" + options.group + ":" + std::to_string(controller.port());
  SimProcess sim(
      {"--bus", bus, "--wallboxes", "3:22kw,4:7kw", "--ev-lag-s", "0.5", "--plug", "3:20:3"});

  // The wallbox comes up in failsafe (6 A) with the vehicle plugged in.
  ASSERT_TRUE(WaitForStatus(controller, 3, absl::Seconds(10), [](const wb::Status& s) {
    return s.failsafe_active && s.state == wb::IecState::kC && s.current_a[0] == 6;
  }));
  ASSERT_TRUE(controller.Send(*wb::Encode(wb::WatchdogConfig{3, 1000, 0})).ok());
  wb::Setpoint sp;
  sp.address = 3;
  sp.max_current_a = 16;
  sp.sequence = 1;
  std::optional<wb::Status> s = WaitForStatus(
      controller, 3, absl::Seconds(10),
      [](const wb::Status& s) {
        return !s.failsafe_active && s.watchdog_configured && s.current_a[2] == 16;
      },
      sp);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->applied_sequence, 1);
  EXPECT_TRUE(s->relay_closed);
  // The controller dies: within the 1 s watchdog (plus a status period) the
  // wallbox reports failsafe, and its vehicle stops (failsafe 0 A).
  const absl::Time killed = absl::Now();
  s = WaitForStatus(controller, 3, absl::Seconds(5),
                    [](const wb::Status& s) { return s.failsafe_active; });
  ASSERT_TRUE(s.has_value());
  EXPECT_LT(absl::Now() - killed, absl::Milliseconds(1700));
  ASSERT_TRUE(WaitForStatus(controller, 3, absl::Seconds(5), [](const wb::Status& s) {
    return s.state == wb::IecState::kB && s.current_a[0] == 0 && !s.relay_closed;
  }));
  // The single-phase wallbox is there too.
  ASSERT_TRUE(WaitForStatus(controller, 4, absl::Seconds(5),
                            [](const wb::Status& s) { return s.state == wb::IecState::kA; }));
}

}  // namespace
}  // namespace evgate::sim
