// SocketCanBus parts that need no CAN interface: the translation of error
// frames (vcan cannot produce them, so they are crafted here exactly as
// drivers report them) and Open()'s errors. Frames on a real interface are
// tested in qemu (socketcan_vcan_guest_test.cc, socketcan_qemu_test.sh).
#include "device_drivers/can/socketcan_bus.h"

#include <linux/can.h>
#include <linux/can/error.h>

#include <string>

#include "gtest/gtest.h"
#include "runtime/clock.h"

namespace evgate::can {
namespace {

std::array<uint8_t, 8> Data(uint8_t d0 = 0, uint8_t d1 = 0, uint8_t d2 = 0, uint8_t d3 = 0,
                            uint8_t d4 = 0, uint8_t d6 = 0, uint8_t d7 = 0) {
  return {d0, d1, d2, d3, d4, 0, d6, d7};
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(TranslateErrorFrameTest, BusOff) {
  BusEvent event = TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_BUSOFF, Data());
  EXPECT_EQ(event.kind, BusEventKind::kBusOff);
  EXPECT_EQ(event.detail, "bus-off");
  EXPECT_FALSE(event.frame.has_value());
}

TEST(TranslateErrorFrameTest, ErrorPassiveWithCounters) {
  // As the kernel's can_change_state() reports it: CRTL class, counters in
  // data[6..7].
  BusEvent event = TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_CRTL | 0x200,
                                       Data(0, CAN_ERR_CRTL_TX_PASSIVE, 0, 0, 0, 130, 12));
  EXPECT_EQ(event.kind, BusEventKind::kErrorPassive);
  EXPECT_EQ(event.detail, "error-passive (tx); tx errors 130, rx errors 12");
}

TEST(TranslateErrorFrameTest, ErrorWarning) {
  BusEvent event = TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_CRTL,
                                       Data(0, CAN_ERR_CRTL_RX_WARNING, 0, 0, 0, 0, 97));
  EXPECT_EQ(event.kind, BusEventKind::kErrorWarning);
  EXPECT_TRUE(Contains(event.detail, "error-warning (rx)")) << event.detail;
  EXPECT_TRUE(Contains(event.detail, "rx errors 97")) << event.detail;
}

TEST(TranslateErrorFrameTest, RestartedAndBackToErrorActive) {
  EXPECT_EQ(TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_RESTARTED, Data()).kind,
            BusEventKind::kRestarted);
  BusEvent active = TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_CRTL, Data(0, CAN_ERR_CRTL_ACTIVE));
  EXPECT_EQ(active.kind, BusEventKind::kRestarted);
  EXPECT_EQ(active.detail, "back to error-active");
}

TEST(TranslateErrorFrameTest, ProtocolViolationSaysWhatAndWhere) {
  BusEvent event =
      TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_PROT | CAN_ERR_BUSERROR,
                          Data(0, 0, CAN_ERR_PROT_STUFF | CAN_ERR_PROT_TX, CAN_ERR_PROT_LOC_DATA));
  EXPECT_EQ(event.kind, BusEventKind::kOtherError);
  EXPECT_EQ(event.detail,
            "protocol violation: stuff error (while transmitting) at data; bus error");
}

TEST(TranslateErrorFrameTest, MissingAckTransceiverArbitrationOverflow) {
  EXPECT_EQ(TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_ACK, Data()).detail,
            "no ACK on transmission (no other node on the bus?)");
  BusEvent trx =
      TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_TRX, Data(0, 0, 0, 0, CAN_ERR_TRX_CANH_NO_WIRE));
  EXPECT_EQ(trx.kind, BusEventKind::kOtherError);
  EXPECT_EQ(trx.detail, "transceiver: CAN_H not connected");
  EXPECT_EQ(TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_LOSTARB, Data(5)).detail,
            "lost arbitration at bit 5");
  BusEvent overflow =
      TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_CRTL, Data(0, CAN_ERR_CRTL_RX_OVERFLOW));
  EXPECT_EQ(overflow.kind, BusEventKind::kOtherError);
  EXPECT_EQ(overflow.detail, "controller rx buffer overflow");
  EXPECT_EQ(TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_TX_TIMEOUT, Data()).detail,
            "transmit timeout");
}

TEST(TranslateErrorFrameTest, TheMostSeriousConditionWins) {
  // A controller reporting passive and bus-off in one frame is bus-off.
  BusEvent event = TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_CRTL | CAN_ERR_BUSOFF,
                                       Data(0, CAN_ERR_CRTL_TX_PASSIVE | CAN_ERR_CRTL_TX_WARNING));
  EXPECT_EQ(event.kind, BusEventKind::kBusOff);
  EXPECT_EQ(event.detail, "bus-off; error-passive (tx); error-warning (tx)");
  // Warning outranks a protocol violation.
  EXPECT_EQ(TranslateErrorFrame(CAN_ERR_FLAG | CAN_ERR_PROT | CAN_ERR_CRTL,
                                Data(0, CAN_ERR_CRTL_RX_WARNING, CAN_ERR_PROT_FORM))
                .kind,
            BusEventKind::kErrorWarning);
}

TEST(TranslateErrorFrameTest, UnknownClassIsStillReported) {
  BusEvent event = TranslateErrorFrame(CAN_ERR_FLAG, Data());
  EXPECT_EQ(event.kind, BusEventKind::kOtherError);
  EXPECT_EQ(event.detail, "error frame 0x00000000");
}

TEST(SocketCanBusTest, OpenFailsClearlyWithoutTheInterface) {
  // On a kernel without AF_CAN (this build machine) the message says so; on
  // one with it, the interface does not exist. Either way: no crash, a
  // message naming the interface and what to do.
  SocketCanOptions options;
  options.interface = "evgatenone0";
  SocketCanBus bus(options, SystemClock::Get());
  absl::Status status = bus.Open();
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(status.code() == absl::StatusCode::kUnavailable ||
              status.code() == absl::StatusCode::kNotFound)
      << status;
  EXPECT_TRUE(Contains(std::string(status.message()), "socketcan evgatenone0")) << status;
  EXPECT_TRUE(Contains(std::string(status.message()), "no SocketCAN") ||
              Contains(std::string(status.message()), "no such network interface"))
      << status;
  EXPECT_EQ(bus.Receive(absl::Milliseconds(1)).kind, BusEventKind::kInterfaceDown);
  EXPECT_EQ(bus.Send(CanFrame{}).code(), absl::StatusCode::kUnavailable);
}

TEST(SocketCanBusTest, RejectsAnInvalidInterfaceName) {
  SocketCanOptions options;
  options.interface = "a-name-longer-than-ifnamsiz";
  EXPECT_EQ(SocketCanBus(options, SystemClock::Get()).Open().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace evgate::can
