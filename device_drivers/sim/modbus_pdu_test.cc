#include "device_drivers/sim/modbus_pdu.h"

#include <map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Holding and input registers in memory; register n holds n + 1000 (input)
// or what was written (holding).
class MemoryUnit : public ModbusUnit {
 public:
  ReadResult Read(RegisterTable table, uint16_t address, int count) override {
    if (address >= 100) return {{}, ModbusException::kIllegalDataAddress};
    std::vector<uint16_t> v;
    for (int i = 0; i < count; ++i) {
      v.push_back(table == RegisterTable::kInput ? 1000 + address + i : holding[address + i]);
    }
    if (short_answer) v.pop_back();
    return {v, ModbusException::kNone};
  }
  ModbusException Write(uint16_t address, absl::Span<const uint16_t> values) override {
    if (address >= 100) return ModbusException::kIllegalDataAddress;
    for (size_t i = 0; i < values.size(); ++i) holding[address + i] = values[i];
    return ModbusException::kNone;
  }
  bool Responding() override { return responding; }

  std::map<int, uint16_t> holding;
  bool responding = true;
  bool short_answer = false;
};

TEST(Crc16, MatchesTheModbusSpecExample) {
  // Read holding registers 0..9 of unit 1: 01 03 00 00 00 0A, CRC C5 CD.
  std::vector<uint8_t> frame = {0x01, 0x03, 0x00, 0x00, 0x00, 0x0A};
  AppendCrc(&frame);
  EXPECT_THAT(frame, ElementsAre(0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD));
}

TEST(HandleRequestPdu, ReadsInputAndHoldingRegisters) {
  MemoryUnit unit;
  unit.holding[5] = 0xBEEF;
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x04, 0x00, 0x02, 0x00, 0x02}),
              ElementsAre(0x04, 4, 0x03, 0xEA, 0x03, 0xEB));  // 1002, 1003
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x03, 0x00, 0x05, 0x00, 0x01}),
              ElementsAre(0x03, 2, 0xBE, 0xEF));
}

TEST(HandleRequestPdu, WritesAnswerWithEchoAndCount) {
  MemoryUnit unit;
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x06, 0x00, 0x07, 0x12, 0x34}),
              ElementsAre(0x06, 0x00, 0x07, 0x12, 0x34));
  EXPECT_EQ(unit.holding[7], 0x1234);
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x10, 0x00, 0x08, 0x00, 0x02, 4, 0x00,
                                                           0x01, 0x00, 0x02}),
              ElementsAre(0x10, 0x00, 0x08, 0x00, 0x02));
  EXPECT_EQ(unit.holding[8], 1);
  EXPECT_EQ(unit.holding[9], 2);
}

TEST(HandleRequestPdu, MalformedRequestsGetExceptionsNotCrashes) {
  MemoryUnit unit;
  // Count 0 and 126: illegal data value.
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x03, 0, 0, 0, 0}),
              ElementsAre(0x83, 0x03));
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x04, 0, 0, 0, 126}),
              ElementsAre(0x84, 0x03));
  // Past 0xFFFF: illegal data address.
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x04, 0xFF, 0xFF, 0, 2}),
              ElementsAre(0x84, 0x02));
  // The unit's own exception.
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x03, 0, 200, 0, 1}),
              ElementsAre(0x83, 0x02));
  // Truncated, byte count not matching, unknown function.
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x03, 0}), ElementsAre(0x83, 0x03));
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x10, 0, 1, 0, 2, 3, 0, 1, 0}),
              ElementsAre(0x90, 0x03));
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x2B, 0x0E, 0x01, 0x00}),
              ElementsAre(0xAB, 0x01));
  // A unit that answers the wrong number of registers is a device failure.
  unit.short_answer = true;
  EXPECT_THAT(*HandleRequestPdu(unit, std::vector<uint8_t>{0x04, 0, 0, 0, 2}),
              ElementsAre(0x84, 0x04));
  EXPECT_FALSE(HandleRequestPdu(unit, std::vector<uint8_t>{}).has_value());
}

TEST(HandleRequestPdu, BroadcastWritesAndDeadUnitsAreNeverAnswered) {
  MemoryUnit unit;
  EXPECT_FALSE(HandleRequestPdu(unit, std::vector<uint8_t>{0x06, 0, 3, 0, 9}, true).has_value());
  EXPECT_EQ(unit.holding[3], 9);
  EXPECT_FALSE(HandleRequestPdu(unit, std::vector<uint8_t>{0x03, 0, 3, 0, 1}, true).has_value());
  unit.responding = false;
  EXPECT_FALSE(HandleRequestPdu(unit, std::vector<uint8_t>{0x03, 0, 3, 0, 1}).has_value());
}

std::vector<uint8_t> RtuFrame(std::vector<uint8_t> bytes) {
  AppendCrc(&bytes);
  return bytes;
}

TEST(RtuFrameParser, SplitsFramesByLengthAcrossReads) {
  RtuFrameParser parser;
  std::vector<uint8_t> stream = RtuFrame({0x02, 0x04, 0, 0, 0, 1});
  const std::vector<uint8_t> second = RtuFrame({0x03, 0x10, 0, 1, 0, 2, 4, 0, 1, 0, 2});
  stream.insert(stream.end(), second.begin(), second.end());
  std::vector<RequestFrame> frames =
      parser.Feed(absl::MakeConstSpan(stream).subspan(0, 5));  // half a frame
  EXPECT_THAT(frames, IsEmpty());
  frames = parser.Feed(absl::MakeConstSpan(stream).subspan(5));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].unit, 2);
  EXPECT_THAT(frames[0].pdu, ElementsAre(0x04, 0, 0, 0, 1));
  EXPECT_EQ(frames[1].unit, 3);
  EXPECT_EQ(frames[1].pdu.size(), 10u);
  EXPECT_FALSE(parser.pending());
  EXPECT_EQ(parser.bad_frames(), 0u);
}

TEST(RtuFrameParser, DropsCorruptFramesAndResynchronises) {
  RtuFrameParser parser;
  std::vector<uint8_t> bad = RtuFrame({0x01, 0x03, 0, 0, 0, 1});
  bad[3] ^= 0x40;                        // line noise: the CRC no longer matches
  std::vector<uint8_t> stream = {0x07};  // a stray byte of an unknown function
  stream.insert(stream.end(), bad.begin(), bad.end());
  const std::vector<uint8_t> good = RtuFrame({0x01, 0x03, 0, 0, 0, 1});
  stream.insert(stream.end(), good.begin(), good.end());
  std::vector<RequestFrame> frames = parser.Feed(stream);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_THAT(frames[0].pdu, ElementsAre(0x03, 0, 0, 0, 1));
  EXPECT_GE(parser.bad_frames(), 2u);
}

TEST(TcpFraming, ParsesPipelinedRequestsAndRejectsBadHeaders) {
  std::vector<uint8_t> stream = {0x12, 0x34, 0, 0, 0, 6, 0x05, 0x04, 0, 0, 0, 2,
                                 0x12, 0x35, 0, 0, 0, 6, 0x05, 0x03, 0, 1, 0, 1};
  RequestFrame frame;
  uint16_t tid = 0;
  EXPECT_EQ(ParseTcpRequest(absl::MakeConstSpan(stream).subspan(0, 10), &frame, &tid), 0);
  EXPECT_EQ(ParseTcpRequest(stream, &frame, &tid), 12);
  EXPECT_EQ(tid, 0x1234);
  EXPECT_EQ(frame.unit, 5);
  EXPECT_THAT(frame.pdu, ElementsAre(0x04, 0, 0, 0, 2));
  EXPECT_EQ(ParseTcpRequest(absl::MakeConstSpan(stream).subspan(12), &frame, &tid), 12);
  EXPECT_EQ(tid, 0x1235);
  stream[2] = 1;  // protocol id must be 0
  EXPECT_EQ(ParseTcpRequest(stream, &frame, &tid), -1);
  std::vector<uint8_t> huge = {0, 1, 0, 0, 0x01, 0x00, 1};  // length 256 > 254
  EXPECT_EQ(ParseTcpRequest(huge, &frame, &tid), -1);
  EXPECT_THAT(BuildTcpResponse(0x1234, 5, std::vector<uint8_t>{0x83, 0x02}),
              ElementsAre(0x12, 0x34, 0, 0, 0, 3, 5, 0x83, 0x02));
}

}  // namespace
}  // namespace evgate::sim
