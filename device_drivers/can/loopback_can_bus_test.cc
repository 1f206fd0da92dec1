#include "device_drivers/can/loopback_can_bus.h"

#include <thread>

#include "gtest/gtest.h"

namespace evgate::can {
namespace {

CanFrame MakeFrame(uint32_t id, uint8_t first_byte) {
  CanFrame f;
  f.id = id;
  f.dlc = 2;
  f.data[0] = first_byte;
  f.data[1] = 0xAB;
  return f;
}

class LoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"a", "b", "c"}) {
      nodes_.push_back(network_.Endpoint(name));
      ASSERT_TRUE(nodes_.back()->Open().ok());
    }
  }
  FakeClock clock_;
  LoopbackCanNetwork network_{clock_, 3};
  std::vector<std::unique_ptr<CanBus>> nodes_;
};

TEST_F(LoopbackTest, EveryOtherEndpointReceivesInOrderButNotTheSender) {
  ASSERT_TRUE(nodes_[0]->Send(MakeFrame(0x101, 1)).ok());
  clock_.Advance(absl::Milliseconds(5));
  ASSERT_TRUE(nodes_[0]->Send(MakeFrame(0x102, 2)).ok());
  for (int n : {1, 2}) {
    BusEvent e1 = nodes_[n]->Receive(absl::Seconds(1));
    ASSERT_EQ(e1.kind, BusEventKind::kFrame);
    EXPECT_EQ(*e1.frame, MakeFrame(0x101, 1));
    EXPECT_EQ(e1.frame->received_at, absl::FromUnixSeconds(1'800'000'000));
    BusEvent e2 = nodes_[n]->Receive(absl::Seconds(1));
    ASSERT_EQ(e2.kind, BusEventKind::kFrame);
    EXPECT_EQ(e2.frame->id, 0x102u);
    EXPECT_EQ(e2.frame->received_at, absl::FromUnixSeconds(1'800'000'000) + absl::Milliseconds(5));
  }
  EXPECT_EQ(nodes_[0]->Receive(absl::Milliseconds(10)).kind, BusEventKind::kTimeout);
  EXPECT_EQ(network_.frames_sent(), 2);
  EXPECT_EQ(nodes_[1]->Describe(), "loopback b");
}

TEST_F(LoopbackTest, ReceiveWakesUpWhenAFrameArrives) {
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(nodes_[2]->Send(MakeFrame(0x7FF, 9)).ok());
  });
  BusEvent e = nodes_[0]->Receive(absl::Seconds(10));
  sender.join();
  ASSERT_EQ(e.kind, BusEventKind::kFrame);
  EXPECT_EQ(e.frame->data[0], 9);
}

TEST_F(LoopbackTest, ClosedEndpointsNeitherSendNorReceive) {
  nodes_[1]->Close();
  EXPECT_EQ(nodes_[1]->Send(MakeFrame(0x1, 0)).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(nodes_[0]->Send(MakeFrame(0x1, 0)).ok());
  ASSERT_TRUE(nodes_[1]->Open().ok());
  EXPECT_EQ(nodes_[1]->Receive(absl::Milliseconds(10)).kind, BusEventKind::kTimeout);
  EXPECT_EQ(nodes_[2]->Receive(absl::Milliseconds(10)).kind, BusEventKind::kFrame);
}

TEST_F(LoopbackTest, BytesPastTheDlcAreNotOnTheWireAndBadFramesAreRefused) {
  CanFrame f = MakeFrame(0x10, 1);
  f.data[7] = 0xEE;
  ASSERT_TRUE(nodes_[0]->Send(f).ok());
  EXPECT_EQ(nodes_[1]->Receive(absl::Seconds(1)).frame->data[7], 0);
  f.dlc = 9;
  EXPECT_EQ(nodes_[0]->Send(f).code(), absl::StatusCode::kInvalidArgument);
  f.dlc = 8;
  f.id = 0x800;
  EXPECT_EQ(nodes_[0]->Send(f).code(), absl::StatusCode::kInvalidArgument);
  f.extended = true;
  EXPECT_TRUE(nodes_[0]->Send(f).ok());
}

TEST_F(LoopbackTest, SlowReaderLosesTheOldestFrames) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(nodes_[0]->Send(MakeFrame(0x100, i)).ok());
  EXPECT_EQ(network_.frames_dropped("b"), 2);
  for (int expected : {2, 3, 4}) {
    BusEvent e = nodes_[1]->Receive(absl::Seconds(1));
    ASSERT_EQ(e.kind, BusEventKind::kFrame);
    EXPECT_EQ(e.frame->data[0], expected);
  }
}

TEST_F(LoopbackTest, InterfaceDownAndUpAndInjectedEvents) {
  network_.SetInterfaceUp(false);
  EXPECT_EQ(nodes_[0]->Send(MakeFrame(0x1, 0)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(nodes_[1]->Receive(absl::Seconds(10)).kind, BusEventKind::kInterfaceDown);
  // Still down: reported again after the timeout, not in a busy loop.
  const absl::Time start = absl::Now();
  EXPECT_EQ(nodes_[1]->Receive(absl::Milliseconds(30)).kind, BusEventKind::kInterfaceDown);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(25));
  network_.SetInterfaceUp(true);
  EXPECT_EQ(nodes_[1]->Receive(absl::Seconds(10)).kind, BusEventKind::kRestarted);
  EXPECT_TRUE(nodes_[0]->Send(MakeFrame(0x1, 0)).ok());
  EXPECT_EQ(nodes_[1]->Receive(absl::Seconds(10)).kind, BusEventKind::kFrame);

  // An injected event queues behind the frames already received.
  network_.InjectEvent("c", {BusEventKind::kBusOff, std::nullopt, "bus-off (tx errors 256)"});
  EXPECT_EQ(nodes_[2]->Receive(absl::Seconds(10)).kind, BusEventKind::kFrame);
  BusEvent e = nodes_[2]->Receive(absl::Seconds(10));
  EXPECT_EQ(e.kind, BusEventKind::kBusOff);
  EXPECT_EQ(e.detail, "bus-off (tx errors 256)");
  EXPECT_EQ(nodes_[2]->Receive(absl::Milliseconds(10)).kind, BusEventKind::kTimeout);
}

TEST(Loopback, EndpointsMayBeDestroyedWhileOthersSend) {
  LoopbackCanNetwork network;
  auto a = network.Endpoint();
  ASSERT_TRUE(a->Open().ok());
  {
    auto b = network.Endpoint();
    ASSERT_TRUE(b->Open().ok());
    EXPECT_EQ(b->Describe(), "loopback node1");
  }
  EXPECT_TRUE(a->Send(MakeFrame(0x1, 0)).ok());
}

}  // namespace
}  // namespace evgate::can
