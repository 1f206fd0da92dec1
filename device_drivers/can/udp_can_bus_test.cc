#include "device_drivers/can/udp_can_bus.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "runtime/clock.h"

namespace evgate::can {
namespace {

extern "C" char** environ;

// A child process, killed (by its pid) when the test ends.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) != 0) pid_ = -1;
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// Every test uses port 0 (a free port picked by the first endpoint) so that
// concurrent test runs and a running demo (15030) never share a bus.
constexpr char kGroup[] = "239.255.77.1";

CanFrame Frame(uint32_t id, std::vector<uint8_t> data, bool extended = false) {
  CanFrame frame;
  frame.id = id;
  frame.extended = extended;
  frame.dlc = static_cast<uint8_t>(data.size());
  for (size_t i = 0; i < data.size(); ++i) frame.data[i] = data[i];
  return frame;
}

UdpCanBusOptions Options(int port = 0) {
  UdpCanBusOptions options;
  options.name = "test-bus";
  options.group = kGroup;
  options.port = port;
  return options;
}

// Receives until a frame arrives or `timeout` passes.
BusEvent ReceiveFrame(UdpCanBus& bus, absl::Duration timeout = absl::Seconds(2)) {
  const absl::Time deadline = absl::Now() + timeout;
  BusEvent event;
  while (absl::Now() < deadline) {
    event = bus.Receive(absl::Milliseconds(50));
    if (event.kind == BusEventKind::kFrame) return event;
  }
  return event;
}

// Sends raw bytes to the group, as a foreign program on the port would.
void SendRaw(int port, const std::vector<uint8_t>& bytes) {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  in_addr interface {};
  inet_pton(AF_INET, "127.0.0.1", &interface);
  ASSERT_EQ(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &interface, sizeof(interface)), 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, kGroup, &to.sin_addr);
  ASSERT_EQ(sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(bytes.size()));
  close(fd);
}

TEST(UdpCanDatagramTest, RoundTripsEveryFrameShape) {
  std::vector<CanFrame> frames = {Frame(0x123, {}), Frame(0x7FF, {1, 2, 3, 4, 5, 6, 7, 8}),
                                  Frame(0x1FFFFFFF, {0xAA}, /*extended=*/true),
                                  Frame(0x0, {0, 0, 0})};
  CanFrame remote = Frame(0x10, {});
  remote.remote = true;
  remote.dlc = 4;  // an RTR frame requests dlc bytes but carries none
  frames.push_back(remote);
  for (const CanFrame& frame : frames) {
    UdpCanDatagram datagram{0x0102030405060708ULL, 0xFFFFFFFEu, frame};
    const std::vector<uint8_t> bytes = EncodeUdpCanDatagram(datagram);
    EXPECT_EQ(bytes.size(), kUdpCanHeaderSize + (frame.remote ? 0 : frame.dlc));
    absl::StatusOr<UdpCanDatagram> decoded = DecodeUdpCanDatagram(bytes);
    ASSERT_TRUE(decoded.ok()) << FrameToString(frame) << ": " << decoded.status();
    EXPECT_EQ(decoded->frame, frame) << FrameToString(frame);
    EXPECT_EQ(decoded->sender_id, 0x0102030405060708ULL);
    EXPECT_EQ(decoded->sequence, 0xFFFFFFFEu);
  }
}

TEST(UdpCanDatagramTest, LayoutMatchesTheSpec) {
  // docs/protocols/can-udp.md, example 1.
  UdpCanDatagram datagram{0x1122334455667788ULL, 7, Frame(0x18FF0101, {0xDE, 0xAD}, true)};
  const std::vector<uint8_t> expected = {'E',  'V',  'C',  'B',  1,    0x01, 0x11, 0x22, 0x33,
                                         0x44, 0x55, 0x66, 0x77, 0x88, 0,    0,    0,    7,
                                         0x18, 0xFF, 0x01, 0x01, 2,    0xDE, 0xAD};
  EXPECT_EQ(EncodeUdpCanDatagram(datagram), expected);
}

TEST(UdpCanDatagramTest, RejectsMalformedDatagramsWithAReason) {
  const std::vector<uint8_t> good = EncodeUdpCanDatagram({42, 1, Frame(0x123, {1, 2, 3})});
  ASSERT_TRUE(DecodeUdpCanDatagram(good).ok());

  struct Case {
    std::string name;
    std::vector<uint8_t> bytes;
    std::string reason;
  };
  std::vector<Case> cases;
  cases.push_back({"empty", {}, "shorter than"});
  cases.push_back({"truncated header", {good.begin(), good.begin() + 10}, "shorter than"});
  {
    auto bytes = good;
    bytes[0] = 'X';
    cases.push_back({"magic", bytes, "bad magic"});
  }
  {
    auto bytes = good;
    bytes[4] = 2;
    cases.push_back({"version", bytes, "unsupported version 2"});
  }
  {
    auto bytes = good;
    bytes[5] = 0x80;
    cases.push_back({"flags", bytes, "unknown flag bits"});
  }
  {
    auto bytes = good;
    for (int i = 6; i < 14; ++i) bytes[i] = 0;
    cases.push_back({"sender 0", bytes, "sender id 0"});
  }
  {
    auto bytes = good;
    bytes[20] = 0x08;  // id 0x823: too big for 11 bits
    cases.push_back({"standard id", bytes, "11-bit"});
  }
  {
    auto bytes = good;
    bytes[22] = 9;
    cases.push_back({"dlc", bytes, "dlc 9"});
  }
  {
    auto bytes = good;
    bytes.pop_back();
    cases.push_back({"data too short", bytes, "expected 26"});
  }
  {
    auto bytes = good;
    bytes.push_back(0);
    cases.push_back({"data too long", bytes, "expected 26"});
  }
  for (const Case& c : cases) {
    absl::StatusOr<UdpCanDatagram> decoded = DecodeUdpCanDatagram(c.bytes);
    ASSERT_FALSE(decoded.ok()) << c.name;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(decoded.status().message().find(c.reason), std::string::npos)
        << c.name << ": " << decoded.status();
  }
}

TEST(UdpCanBusTest, TwoEndpointsInOneProcessSeeEachOtherButNotThemselves) {
  FakeClock clock;
  UdpCanBus a(Options(), clock);
  ASSERT_TRUE(a.Open().ok());
  UdpCanBus b(Options(a.port()), clock);
  ASSERT_TRUE(b.Open().ok());
  EXPECT_NE(a.sender_id(), b.sender_id());

  const CanFrame sent = Frame(0x18FF0101, {1, 2, 3, 4, 5, 6, 7, 8}, true);
  ASSERT_TRUE(a.Send(sent).ok());
  BusEvent event = ReceiveFrame(b);
  ASSERT_EQ(event.kind, BusEventKind::kFrame) << event.detail;
  EXPECT_EQ(*event.frame, sent);
  EXPECT_EQ(event.frame->received_at, clock.Now());  // stamped with the injected clock

  ASSERT_TRUE(b.Send(Frame(0x42, {9})).ok());
  event = ReceiveFrame(a);
  ASSERT_EQ(event.kind, BusEventKind::kFrame);
  EXPECT_EQ(*event.frame, Frame(0x42, {9}));
  // a's own frame came back over the loop and was dropped, not delivered.
  EXPECT_EQ(a.Receive(absl::Milliseconds(100)).kind, BusEventKind::kTimeout);
  EXPECT_EQ(a.Stats().own_dropped_total, 1u);
  EXPECT_EQ(a.Stats().frames_sent_total, 1u);
  EXPECT_EQ(a.Stats().frames_received_total, 1u);
  EXPECT_EQ(b.Receive(absl::Milliseconds(100)).kind, BusEventKind::kTimeout);
  EXPECT_EQ(b.Stats().own_dropped_total, 1u);
}

TEST(UdpCanBusTest, ReceiveTimesOutWhenTheBusIsQuiet) {
  FakeClock clock;
  UdpCanBus bus(Options(), clock);
  ASSERT_TRUE(bus.Open().ok());
  const absl::Time start = absl::Now();
  EXPECT_EQ(bus.Receive(absl::Milliseconds(50)).kind, BusEventKind::kTimeout);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
}

TEST(UdpCanBusTest, FiltersDropNonMatchingFrames) {
  FakeClock clock;
  UdpCanBus a(Options(), clock);
  ASSERT_TRUE(a.Open().ok());
  UdpCanBusOptions options = Options(a.port());
  options.filters = {{0x100, 0x7F0, false}};  // 0x100..0x10F, standard frames only
  UdpCanBus b(options, clock);
  ASSERT_TRUE(b.Open().ok());

  ASSERT_TRUE(a.Send(Frame(0x200, {1})).ok());                     // other id
  ASSERT_TRUE(a.Send(Frame(0x105, {2}, /*extended=*/true)).ok());  // other format
  ASSERT_TRUE(a.Send(Frame(0x10A, {3})).ok());
  BusEvent event = ReceiveFrame(b);
  ASSERT_EQ(event.kind, BusEventKind::kFrame);
  EXPECT_EQ(*event.frame, Frame(0x10A, {3}));
  EXPECT_EQ(b.Stats().filtered_total, 2u);
}

TEST(UdpCanBusTest, MalformedDatagramsAreCountedAndDropped) {
  FakeClock clock;
  UdpCanBus bus(Options(), clock);
  ASSERT_TRUE(bus.Open().ok());
  SendRaw(bus.port(), {'h', 'e', 'l', 'l', 'o'});
  SendRaw(bus.port(), std::vector<uint8_t>(200, 0xAB));  // oversized
  std::vector<uint8_t> future = EncodeUdpCanDatagram({7, 0, Frame(0x1, {1})});
  future[4] = 9;  // a newer protocol version
  SendRaw(bus.port(), future);
  SendRaw(bus.port(), EncodeUdpCanDatagram({7, 1, Frame(0x55, {5})}));

  BusEvent event = ReceiveFrame(bus);
  ASSERT_EQ(event.kind, BusEventKind::kFrame);
  EXPECT_EQ(*event.frame, Frame(0x55, {5}));
  const UdpCanBusStats stats = bus.Stats();
  EXPECT_EQ(stats.malformed_total, 3u);
  EXPECT_NE(stats.last_malformed.find("unsupported version 9"), std::string::npos)
      << stats.last_malformed;
  EXPECT_NE(stats.last_malformed.find("127.0.0.1:"), std::string::npos);
}

TEST(UdpCanBusTest, CountsGapsInASendersSequence) {
  FakeClock clock;
  UdpCanBus bus(Options(), clock);
  ASSERT_TRUE(bus.Open().ok());
  for (uint32_t sequence : {10u, 11u, 14u}) {
    SendRaw(bus.port(), EncodeUdpCanDatagram({99, sequence, Frame(0x1, {})}));
  }
  for (int i = 0; i < 3; ++i) ASSERT_EQ(ReceiveFrame(bus).kind, BusEventKind::kFrame);
  EXPECT_EQ(bus.Stats().lost_total, 2u);  // 12 and 13
}

TEST(UdpCanBusTest, RejectsBadFramesAndBadSettings) {
  FakeClock clock;
  UdpCanBus bus(Options(), clock);
  EXPECT_EQ(bus.Send(Frame(0x1, {})).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(bus.Receive(absl::Milliseconds(1)).kind, BusEventKind::kInterfaceDown);
  ASSERT_TRUE(bus.Open().ok());
  EXPECT_EQ(bus.Send(Frame(0x800, {})).code(), absl::StatusCode::kInvalidArgument);
  CanFrame long_frame = Frame(0x1, {});
  long_frame.dlc = 9;
  EXPECT_EQ(bus.Send(long_frame).code(), absl::StatusCode::kInvalidArgument);

  UdpCanBusOptions unicast = Options();
  unicast.group = "10.1.2.3";
  absl::Status status = UdpCanBus(unicast, clock).Open();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("not an IPv4 multicast address"), std::string::npos) << status;
  UdpCanBusOptions bad_interface = Options();
  bad_interface.interface_address = "lo";
  EXPECT_EQ(UdpCanBus(bad_interface, clock).Open().code(), absl::StatusCode::kInvalidArgument);
}

// Three processes on one virtual bus: this test and two echo peers. Every
// process sees every other process's frames.
TEST(UdpCanBusTest, SeveralProcessesShareTheBus) {
  FakeClock clock;
  UdpCanBus bus(Options(), clock);
  ASSERT_TRUE(bus.Open().ok());
  const std::string peer = "device_drivers/can/udp_can_echo_peer";
  const std::string port = absl::StrCat(bus.port());
  Child peer1({peer, kGroup, port, "1"});
  Child peer2({peer, kGroup, port, "2"});
  ASSERT_TRUE(peer1.started() && peer2.started());

  std::set<uint32_t> seen;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto wait_for = [&](const std::set<uint32_t>& wanted) {
    while (absl::Now() < deadline) {
      bool all = true;
      for (uint32_t id : wanted) all = all && seen.count(id) > 0;
      if (all) return true;
      BusEvent event = bus.Receive(absl::Milliseconds(50));
      if (event.kind == BusEventKind::kFrame) {
        seen.insert(event.frame->id == 0x7E0 ? 0x7E0 + event.frame->data[0] : event.frame->id);
      }
    }
    return false;
  };
  ASSERT_TRUE(wait_for({0x7E1, 0x7E2})) << "peers did not announce themselves";
  ASSERT_TRUE(bus.Send(Frame(0x100, {0xC0, 0xFF, 0xEE})).ok());
  // 0x20k: peer k answered us; 0x30k: peer k saw the other peer's answer.
  EXPECT_TRUE(wait_for({0x201, 0x202, 0x301, 0x302}));
  ASSERT_TRUE(bus.Send(Frame(0x7FF, {})).ok());
  EXPECT_EQ(bus.Stats().malformed_total, 0u);
}

}  // namespace
}  // namespace evgate::can
