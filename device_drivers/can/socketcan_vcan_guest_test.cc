// SocketCanBus on a real kernel CAN stack: runs inside the qemu guest that
// socketcan_qemu_test.sh boots (Debian's kernel with can, can-raw, vcan),
// as root, with vcan0 created and up. Not meant to run on the build machine.
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "device_drivers/can/can_bus_owner.h"
#include "device_drivers/can/socketcan_bus.h"
#include "device_drivers/sim/cabur_wallbox_simulator.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "site_controller/config/site_config_loader.h"

namespace evgate::can {
namespace {

constexpr char kInterface[] = "vcan0";

CanFrame Frame(uint32_t id, std::vector<uint8_t> data, bool extended = false) {
  CanFrame frame;
  frame.id = id;
  frame.extended = extended;
  frame.dlc = static_cast<uint8_t>(data.size());
  for (size_t i = 0; i < data.size(); ++i) frame.data[i] = data[i];
  return frame;
}

SocketCanOptions Options(std::vector<CanFilter> filters = {}) {
  SocketCanOptions options;
  options.interface = kInterface;
  options.filters = std::move(filters);
  options.reopen_interval = absl::Milliseconds(50);
  return options;
}

// Sets an interface up or down, as `ip link set NAME up|down` does.
void SetLinkUp(const std::string& name, bool up) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ASSERT_EQ(ioctl(fd, SIOCGIFFLAGS, &request), 0) << name;
  if (up) {
    request.ifr_flags |= IFF_UP;
  } else {
    request.ifr_flags &= ~IFF_UP;
  }
  ASSERT_EQ(ioctl(fd, SIOCSIFFLAGS, &request), 0) << name;
  close(fd);
}

// The next event that is not a timeout, within `timeout`.
BusEvent NextEvent(CanBus& bus, absl::Duration timeout = absl::Seconds(3)) {
  const absl::Time deadline = absl::Now() + timeout;
  BusEvent event;
  while (absl::Now() < deadline) {
    event = bus.Receive(absl::Milliseconds(100));
    if (event.kind != BusEventKind::kTimeout) return event;
  }
  return event;
}

TEST(SocketCanVcanTest, FramesRoundTripBetweenTwoSockets) {
  SocketCanBus a(Options(), SystemClock::Get());
  SocketCanBus b(Options(), SystemClock::Get());
  ASSERT_TRUE(a.Open().ok());
  ASSERT_TRUE(b.Open().ok());
  CanFrame remote = Frame(0x321, {});
  remote.remote = true;
  remote.dlc = 2;
  const std::vector<CanFrame> frames = {Frame(0x123, {1, 2, 3, 4, 5, 6, 7, 8}),
                                        Frame(0x18FF0101, {0xDE, 0xAD}, true), Frame(0x0, {}),
                                        remote};
  for (const CanFrame& frame : frames) {
    const absl::Time before = absl::Now();
    ASSERT_TRUE(a.Send(frame).ok()) << FrameToString(frame);
    BusEvent event = NextEvent(b);
    ASSERT_EQ(event.kind, BusEventKind::kFrame) << event.detail;
    EXPECT_EQ(*event.frame, frame) << FrameToString(*event.frame);
    // The kernel's reception time, between send and now.
    EXPECT_GE(event.frame->received_at, before - absl::Milliseconds(1));
    EXPECT_LE(event.frame->received_at, absl::Now());
  }
  // A socket does not receive its own frames.
  EXPECT_EQ(a.Receive(absl::Milliseconds(100)).kind, BusEventKind::kTimeout);
  EXPECT_EQ(a.Stats().frames_sent_total, frames.size());
  EXPECT_EQ(b.Stats().frames_received_total, frames.size());
}

TEST(SocketCanVcanTest, KernelFiltersDropOtherFrames) {
  SocketCanBus sender(Options(), SystemClock::Get());
  // Standard 0x100..0x10F, and exactly the extended id 0x18FF0001.
  SocketCanBus receiver(Options({{0x100, 0x7F0, false}, {0x18FF0001, 0x1FFFFFFF, true}}),
                        SystemClock::Get());
  ASSERT_TRUE(sender.Open().ok());
  ASSERT_TRUE(receiver.Open().ok());
  for (const CanFrame& frame : {Frame(0x200, {1}), Frame(0x105, {2}, true), Frame(0x10A, {3}),
                                Frame(0x18FF0002, {4}, true), Frame(0x18FF0001, {5}, true)}) {
    ASSERT_TRUE(sender.Send(frame).ok());
  }
  BusEvent first = NextEvent(receiver);
  ASSERT_EQ(first.kind, BusEventKind::kFrame);
  EXPECT_EQ(*first.frame, Frame(0x10A, {3}));
  BusEvent second = NextEvent(receiver);
  ASSERT_EQ(second.kind, BusEventKind::kFrame);
  EXPECT_EQ(*second.frame, Frame(0x18FF0001, {5}, true));
  EXPECT_EQ(receiver.Receive(absl::Milliseconds(100)).kind, BusEventKind::kTimeout);
}

TEST(SocketCanVcanTest, InterfaceDownIsReportedAndRecovered) {
  SocketCanBus a(Options(), SystemClock::Get());
  SocketCanBus b(Options(), SystemClock::Get());
  ASSERT_TRUE(a.Open().ok());
  ASSERT_TRUE(b.Open().ok());

  SetLinkUp(kInterface, false);
  BusEvent down = NextEvent(b);
  EXPECT_EQ(down.kind, BusEventKind::kInterfaceDown) << down.detail;
  absl::Status send = a.Send(Frame(0x1, {1}));
  EXPECT_EQ(send.code(), absl::StatusCode::kUnavailable) << send;
  // Still down: each Receive tries to reopen and reports down again.
  BusEvent still = b.Receive(absl::Milliseconds(200));
  EXPECT_EQ(still.kind, BusEventKind::kInterfaceDown);
  EXPECT_NE(still.detail.find("down"), std::string::npos) << still.detail;

  SetLinkUp(kInterface, true);
  BusEvent back = NextEvent(b);
  EXPECT_EQ(back.kind, BusEventKind::kRestarted) << back.detail;
  // Frames flow again both ways, including from the socket that never read
  // its pending error.
  ASSERT_TRUE(a.Send(Frame(0x2, {2})).ok());
  BusEvent frame = NextEvent(b);
  ASSERT_EQ(frame.kind, BusEventKind::kFrame) << frame.detail;
  EXPECT_EQ(*frame.frame, Frame(0x2, {2}));
  EXPECT_EQ(b.Stats().interface_down_total, 1u);
  EXPECT_EQ(b.Stats().reopened_total, 1u);
}

TEST(SocketCanVcanTest, InterfaceRemovedAndRecreated) {
  ASSERT_EQ(std::system("ip link add dev vcan1 type vcan && ip link set vcan1 up"), 0);
  SocketCanOptions options = Options();
  options.interface = "vcan1";
  SocketCanBus bus(options, SystemClock::Get());
  ASSERT_TRUE(bus.Open().ok());
  ASSERT_EQ(std::system("ip link del dev vcan1"), 0);
  EXPECT_EQ(NextEvent(bus).kind, BusEventKind::kInterfaceDown);
  BusEvent gone = bus.Receive(absl::Milliseconds(200));
  EXPECT_EQ(gone.kind, BusEventKind::kInterfaceDown);
  EXPECT_NE(gone.detail.find("no such network interface"), std::string::npos) << gone.detail;
  ASSERT_EQ(std::system("ip link add dev vcan1 type vcan && ip link set vcan1 up"), 0);
  EXPECT_EQ(NextEvent(bus).kind, BusEventKind::kRestarted);

  SocketCanBus peer(options, SystemClock::Get());
  ASSERT_TRUE(peer.Open().ok());
  ASSERT_TRUE(peer.Send(Frame(0x7, {7})).ok());
  BusEvent frame = NextEvent(bus);
  ASSERT_EQ(frame.kind, BusEventKind::kFrame);
  EXPECT_EQ(*frame.frame, Frame(0x7, {7}));
}

TEST(SocketCanVcanTest, OpenErrorsNameTheProblem) {
  SocketCanOptions missing = Options();
  missing.interface = "vcan9";
  EXPECT_EQ(SocketCanBus(missing, SystemClock::Get()).Open().code(), absl::StatusCode::kNotFound);

  ASSERT_EQ(std::system("ip link add dev vcan2 type vcan"), 0);  // left down
  SocketCanOptions down = Options();
  down.interface = "vcan2";
  absl::Status status = SocketCanBus(down, SystemClock::Get()).Open();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("interface is down"), std::string::npos) << status;
}

// The CAN bus owner as deployed on a gateway box (MakeCanBackend, transport
// socketcan, kernel filters) with a simulated Cabur wallbox on another
// socket of the same interface.
constexpr char kSite[] = R"yaml(
insecure_demo: true
site:
  id: vcan-site
grid:
  fuse_limit_a: 63
buses:
  - id: can0
    type: can
    interface: vcan0
    transport: socketcan
devices:
  - id: wallbox-1
    profile: cabur_ev_plus_22kw
    bus: can0
    address: 7
stations:
  - id: wb1
    device: wallbox-1
    circuit: grid
    evses:
      - id: wb1
        phases: [L3, L1, L2]
        max_current_a: 32
controller:
  failsafe_current_a: 9
services:
  session_database: /var/lib/evgate/sessions.db
)yaml";

TEST(CanBusOwnerOnVcanTest, DrivesASimulatedWallbox) {
  absl::StatusOr<site::SiteConfig> site = site::LoadSiteConfigString(kSite, "site.yaml");
  ASSERT_TRUE(site.ok()) << site.status();
  absl::StatusOr<std::unique_ptr<devices::DeviceBackend>> made =
      MakeCanBackend(*site, site->buses[0], SystemClock::Get());
  ASSERT_TRUE(made.ok()) << made.status();
  devices::DeviceBackend& backend = **made;

  SocketCanBus sim_bus(Options(), SystemClock::Get());
  sim::CanWallboxSimHost host(sim_bus, SystemClock::Get());
  sim::CaburWallboxConfig wallbox;
  wallbox.address = 7;
  wallbox.ev_lag = absl::Milliseconds(100);
  ASSERT_TRUE(host.AddWallbox(wallbox).ok());
  ASSERT_TRUE(backend.Start().ok());
  ASSERT_TRUE(host.Start().ok());
  ASSERT_TRUE(host.PlugIn(7, sim::EvParams{32, 3, 50'000}).ok());

  auto wait_for = [](auto condition) {
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (absl::Now() < end) {
      if (condition()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return condition();
  };
  ASSERT_TRUE(wait_for([&] {
    return !backend.GetDevice("wallbox-1")->link().stale() && host.Snapshot(7)->watchdog_configured;
  })) << "the wallbox did not report or was not configured";
  EXPECT_DOUBLE_EQ(host.Snapshot(7)->failsafe_current_a, 9.0);

  std::vector<v1::Setpoint> batch(1);
  batch[0].set_evse_id("wb1");
  v1::PhaseValues* limit = batch[0].mutable_value()->mutable_current_limit_a();
  limit->set_l1(14);
  limit->set_l2(14);
  limit->set_l3(14);
  ASSERT_EQ(backend.ApplySetpoints(batch, absl::Minutes(1), "vcan")[0].status(),
            v1::SETPOINT_STATUS_ACCEPTED);
  EXPECT_TRUE(wait_for([&] {
    // The wallbox's L1 is site L3.
    return backend.GetDevice("wallbox-1")->evses(0).measurements().current_a().l3() == 14.0;
  }));

  // A short watchdog, then the driver dies: the wallbox falls back to 9 A.
  v1::CommandRequest failsafe;
  failsafe.set_device_id("wallbox-1");
  v1::PhaseValues* value =
      failsafe.mutable_set_failsafe()->mutable_value()->mutable_current_limit_a();
  value->set_l1(9);
  value->set_l2(9);
  value->set_l3(9);
  failsafe.mutable_set_failsafe()->mutable_watchdog_timeout()->set_nanos(500'000'000);
  ASSERT_EQ(backend.Command(failsafe).status(), v1::COMMAND_STATUS_ACCEPTED);
  ASSERT_TRUE(wait_for([&] { return host.Snapshot(7)->watchdog_timeout_ms == 500; }));
  backend.Stop();
  EXPECT_TRUE(wait_for([&] {
    auto s = host.Snapshot(7);
    return s->failsafe_active && s->current_a[0] == 9.0;
  }));
  host.Stop();
}

}  // namespace
}  // namespace evgate::can
