#include "device_drivers/can/wallbox_protocol.h"

#include <cmath>
#include <limits>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate::can::wallbox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

CanFrame Frame(uint32_t id, std::vector<uint8_t> bytes) {
  CanFrame f;
  f.id = id;
  f.dlc = static_cast<uint8_t>(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) f.data[i] = bytes[i];
  return f;
}

std::vector<uint8_t> Bytes(const CanFrame& f) { return {f.data.begin(), f.data.begin() + f.dlc}; }

// Encodes `m`, checks id and bytes against the specification's worked
// example, decodes the bytes and checks the message comes back unchanged.
template <typename M>
void ExpectWire(const M& m, uint32_t id, std::vector<uint8_t> bytes) {
  absl::StatusOr<CanFrame> frame = Encode(m);
  ASSERT_TRUE(frame.ok()) << frame.status();
  EXPECT_EQ(frame->id, id);
  EXPECT_FALSE(frame->extended);
  EXPECT_FALSE(frame->remote);
  EXPECT_EQ(Bytes(*frame), bytes);
  absl::StatusOr<Message> decoded = Decode(Frame(id, bytes));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_TRUE(std::holds_alternative<M>(*decoded));
  EXPECT_TRUE(std::get<M>(*decoded) == m);
}

void ExpectError(const CanFrame& frame, absl::StatusCode code, const std::string& text) {
  absl::StatusOr<Message> decoded = Decode(frame);
  ASSERT_FALSE(decoded.ok()) << "decoded frame id 0x" << std::hex << frame.id;
  EXPECT_EQ(decoded.status().code(), code) << decoded.status();
  EXPECT_THAT(std::string(decoded.status().message()), HasSubstr(text));
}

// ---- every message on the wire (the examples in docs/protocols/can-wallbox.md)

TEST(WallboxProtocol, AvailableCurrentOnTheWire) {
  AvailableCurrent m;
  m.available_current_a = {63.0, 100.5, 0};
  m.counter = 9;
  m.active_wallboxes = 3;
  ExpectWire(m, 0x040, {0x76, 0x02, 0xED, 0x03, 0x00, 0x00, 0x09, 0x03});
}

TEST(WallboxProtocol, SetpointOnTheWire) {
  Setpoint m;
  m.address = 5;
  m.max_current_a = 16.0;
  m.sequence = 3;
  ExpectWire(m, 0x085, {0xA0, 0x00, 0x37});
  m.phase_enabled = {false, true, false};
  m.pause = true;
  m.max_current_a = 0;
  m.sequence = 15;
  ExpectWire(m, 0x085, {0x00, 0x00, 0xFA});
}

TEST(WallboxProtocol, WatchdogConfigOnTheWire) {
  WatchdogConfig m;
  m.address = 63;
  m.timeout_ms = 5000;
  m.failsafe_current_a = 6.0;
  ExpectWire(m, 0x0FF, {0x88, 0x13, 0x3C, 0x00});
}

TEST(WallboxProtocol, StatusOnTheWire) {
  Status m;
  m.address = 1;
  m.state = IecState::kC;
  m.relay_closed = true;
  m.watchdog_configured = true;
  m.counter = 7;
  m.applied_sequence = 3;
  m.errors = ErrorBit(ErrorCode::kOcp) | ErrorBit(ErrorCode::kMis);
  m.current_a = {16.0, 15.9, 0};
  ExpectWire(m, 0x101, {0x4A, 0x37, 0x01, 0x80, 0xA0, 0x7C, 0x02, 0x00});
  EXPECT_TRUE(m.HasError(ErrorCode::kMis));
  EXPECT_FALSE(m.HasError(ErrorCode::kPe));
  // The largest current the 10-bit fields carry, and every flag.
  m.current_a = {102.3, 102.3, 102.3};
  m.state = IecState::kF;
  m.relay_closed = false;
  m.failsafe_active = true;
  m.paused = true;
  ExpectWire(m, 0x101, {0x75, 0x37, 0x01, 0x80, 0xFF, 0xFF, 0xFF, 0x3F});
}

TEST(WallboxProtocol, MeasurementsOnTheWire) {
  Measurements m;
  m.address = 2;
  m.voltage_v = {230.1, 229.9, 0};
  m.active_power_w = 3680;
  ExpectWire(m, 0x142, {0xFD, 0x08, 0xFB, 0x08, 0x00, 0x00, 0x60, 0x0E});
}

TEST(WallboxProtocol, EnergyOnTheWire) {
  Energy m;
  m.address = 2;
  m.session_energy_wh = 12345;
  m.lifetime_energy_wh = 1234500;
  m.relay_temperature_c = -5;
  m.ambient_temperature_c = 44;
  ExpectWire(m, 0x182, {0x39, 0x30, 0x00, 0x39, 0x30, 0x00, 0xFB, 0x2C});
}

TEST(WallboxProtocol, EnergyLifetimeIsTruncatedToTenthsOfKwh) {
  Energy m;
  m.address = 2;
  m.lifetime_energy_wh = 1234599;
  absl::StatusOr<CanFrame> frame = Encode(m);
  ASSERT_TRUE(frame.ok());
  absl::StatusOr<Message> decoded = Decode(*frame);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(std::get<Energy>(*decoded).lifetime_energy_wh, 1234500);
}

TEST(WallboxProtocol, RfidTapOfTenBytesTakesTwoFrames) {
  RfidTap tap{3, 2, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}};
  absl::StatusOr<std::vector<CanFrame>> frames = EncodeRfidTap(tap);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 2u);
  EXPECT_EQ((*frames)[0].id, 0x1C3u);
  EXPECT_THAT(Bytes((*frames)[0]), ElementsAre(0x4A, 1, 2, 3, 4, 5, 6, 7));
  EXPECT_THAT(Bytes((*frames)[1]), ElementsAre(0x5A, 8, 9, 10, 0, 0, 0, 0));
  RfidAssembler assembler;
  std::optional<RfidTap> done;
  for (const CanFrame& f : *frames) {
    absl::StatusOr<Message> m = Decode(f);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_FALSE(done.has_value());
    done = assembler.Add(std::get<RfidFragment>(*m));
  }
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(*done == tap);
}

TEST(WallboxProtocol, RfidTapOfFourBytesTakesOneFrame) {
  RfidTap tap{3, 7, {0xDE, 0xAD, 0xBE, 0xEF}};
  absl::StatusOr<std::vector<CanFrame>> frames = EncodeRfidTap(tap);
  ASSERT_TRUE(frames.ok());
  ASSERT_EQ(frames->size(), 1u);
  EXPECT_THAT(Bytes((*frames)[0]), ElementsAre(0xE4, 0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0));
  RfidAssembler assembler;
  std::optional<RfidTap> done = assembler.Add(std::get<RfidFragment>(*Decode((*frames)[0])));
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(*done == tap);
}

TEST(WallboxProtocol, RfidAssemblerDropsMismatchedFragments) {
  auto fragments = [](int seq) {
    std::vector<RfidFragment> out;
    const absl::StatusOr<std::vector<CanFrame>> frames =
        EncodeRfidTap({9, seq, {1, 2, 3, 4, 5, 6, 7, 8}});
    for (const CanFrame& f : *frames) {
      out.push_back(std::get<RfidFragment>(*Decode(f)));
    }
    return out;
  };
  RfidAssembler assembler;
  const auto a = fragments(1);
  const auto b = fragments(2);
  EXPECT_FALSE(assembler.Add(a[0]).has_value());
  EXPECT_FALSE(assembler.Add(b[1]).has_value());  // other tap: dropped
  EXPECT_FALSE(assembler.Add(a[1]).has_value());  // its start was dropped
  EXPECT_FALSE(assembler.Add(b[1]).has_value());  // no start at all
  EXPECT_FALSE(assembler.Add(a[0]).has_value());
  std::optional<RfidTap> done = assembler.Add(a[1]);
  ASSERT_TRUE(done.has_value());
  EXPECT_THAT(done->uid, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
}

TEST(WallboxProtocol, IdentityOnTheWire) {
  Identity id;
  id.info.address = 4;
  id.info.model = Model::kEvPlus22kW3Phase;
  id.info.firmware = {1, 2, 3};
  id.info.max_current_a = 32;
  id.info.tethered_cable = true;
  id.serial = "022101000266JSS070RE3CA02";  // the Cabur manual's example, 25 characters
  absl::StatusOr<std::vector<CanFrame>> frames = EncodeIdentity(id);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 5u);
  for (const CanFrame& f : *frames) EXPECT_EQ(f.id, 0x204u);
  EXPECT_THAT(Bytes((*frames)[0]), ElementsAre(0, 2, 1, 2, 3, 32, 1, 1));
  EXPECT_THAT(Bytes((*frames)[1]), ElementsAre(1, '0', '2', '2', '1', '0', '1', '0'));
  EXPECT_THAT(Bytes((*frames)[4]), ElementsAre(4, 'C', 'A', '0', '2', 0, 0, 0));
  IdentityAssembler assembler;
  std::optional<Identity> done;
  for (const CanFrame& f : *frames) {
    absl::StatusOr<Message> m = Decode(f);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_FALSE(done.has_value());
    if (auto* info = std::get_if<IdentityInfo>(&*m)) done = assembler.Add(*info);
    if (auto* serial = std::get_if<IdentitySerial>(&*m)) done = assembler.Add(*serial);
  }
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(*done == id);
  EXPECT_EQ(ModelPhases(done->info.model), 3);
}

TEST(WallboxProtocol, IdentityAssemblerRestartsOnPagesOutOfOrder) {
  Identity id;
  id.info.address = 4;
  id.info.max_current_a = 16;
  id.serial = "ABCDEFGHIJ";
  std::vector<Message> pages;
  const absl::StatusOr<std::vector<CanFrame>> frames = EncodeIdentity(id);
  ASSERT_TRUE(frames.ok());
  for (const CanFrame& f : *frames) pages.push_back(*Decode(f));
  IdentityAssembler assembler;
  auto add = [&](const Message& m) -> std::optional<Identity> {
    if (auto* info = std::get_if<IdentityInfo>(&m)) return assembler.Add(*info);
    return assembler.Add(std::get<IdentitySerial>(m));
  };
  EXPECT_FALSE(add(pages[0]).has_value());
  EXPECT_FALSE(add(pages[2]).has_value());  // page 1 missed: dropped
  EXPECT_FALSE(add(pages[3]).has_value());
  EXPECT_FALSE(add(pages[4]).has_value());
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(add(pages[i]).has_value());
  std::optional<Identity> done = add(pages[4]);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->serial, "ABCDEFGHIJ");
  // A short page followed by a non-empty one would splice two serials.
  EXPECT_FALSE(add(pages[0]).has_value());
  EXPECT_FALSE(add(pages[1]).has_value());
  EXPECT_FALSE(assembler.Add(IdentitySerial{4, 2, "XY"}).has_value());  // short: ends it
  EXPECT_FALSE(assembler.Add(IdentitySerial{4, 3, "Z"}).has_value());   // spliced: dropped
  EXPECT_FALSE(assembler.Add(IdentitySerial{4, 4, ""}).has_value());
}

TEST(WallboxProtocol, NamesAndIds) {
  EXPECT_EQ(ErrorCodeName(ErrorCode::kOcp), "OCP");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kR3n), "R3N");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kMis), "MIS");
  EXPECT_EQ(ErrorCodeFromName("r12"), ErrorCode::kR12);
  EXPECT_EQ(ErrorCodeFromName("XYZ"), std::nullopt);
  for (int i = 0; i < kErrorCodeCount; ++i) {
    const auto code = static_cast<ErrorCode>(i);
    EXPECT_EQ(ErrorCodeFromName(ErrorCodeName(code)), code);
  }
  EXPECT_EQ(IecStateLetter(IecState::kD), 'D');
  EXPECT_EQ(FrameId(MessageType::kIdentity, 63), 0x23Fu);
  EXPECT_EQ(AddressOf(Message{Setpoint{7}}), 7);
  EXPECT_EQ(AddressOf(Message{AvailableCurrent{}}), 0);
}

// ---- encoder: never a frame that says something else than it was given ----

TEST(WallboxProtocol, SetpointCurrentIsRoundedDownNeverUp) {
  Setpoint m;
  m.address = 1;
  for (double a : {16.1, 16.19, 16.15000001}) {
    m.max_current_a = a;
    absl::StatusOr<CanFrame> f = Encode(m);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(std::get<Setpoint>(*Decode(*f)).max_current_a, 16.1) << a;
  }
  m.max_current_a = 32.09;  // rounds down to 32.0: accepted
  EXPECT_TRUE(Encode(m).ok());
  m.max_current_a = 0.05;  // rounds down to 0: no current
  EXPECT_EQ(std::get<Setpoint>(*Decode(*Encode(m))).max_current_a, 0);
  m.max_current_a = 5.99;  // rounds down below the IEC 61851 minimum: refused
  EXPECT_FALSE(Encode(m).ok());
}

TEST(WallboxProtocol, EncoderRejectsWhatTheWireCannotSay) {
  Setpoint s;
  s.address = 1;
  s.max_current_a = 10;
  EXPECT_TRUE(Encode(s).ok());
  for (int address : {0, 64, -1}) {
    Setpoint bad = s;
    bad.address = address;
    EXPECT_EQ(Encode(bad).status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
  for (double a : {5.9, 32.1, -1.0, -0.01, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    Setpoint bad = s;
    bad.max_current_a = a;
    EXPECT_EQ(Encode(bad).status().code(), absl::StatusCode::kInvalidArgument) << a;
  }
  Setpoint no_phase = s;
  no_phase.phase_enabled = {false, false, false};
  EXPECT_THAT(std::string(Encode(no_phase).status().message()), HasSubstr("no phase"));
  Setpoint bad_seq = s;
  bad_seq.sequence = 16;
  EXPECT_FALSE(Encode(bad_seq).ok());

  WatchdogConfig w{1, 99, 6};
  EXPECT_FALSE(Encode(w).ok());
  w.timeout_ms = 60001;
  EXPECT_FALSE(Encode(w).ok());
  w.timeout_ms = 1000;
  w.failsafe_current_a = 3;
  EXPECT_FALSE(Encode(w).ok());
  w.failsafe_current_a = 0;
  EXPECT_TRUE(Encode(w).ok());

  AvailableCurrent ac;
  ac.available_current_a = {3000.1, 0, 0};
  EXPECT_FALSE(Encode(ac).ok());
  ac.available_current_a = {3000, 0, 0};
  ac.active_wallboxes = 64;
  EXPECT_FALSE(Encode(ac).ok());

  Status st;
  st.address = 1;
  st.current_a = {102.4, 0, 0};
  EXPECT_FALSE(Encode(st).ok());
  st.current_a = {0, -0.1, 0};
  EXPECT_FALSE(Encode(st).ok());
  st.current_a = {0, 0, 0};
  st.state = static_cast<IecState>(6);
  EXPECT_FALSE(Encode(st).ok());

  Measurements me;
  me.address = 1;
  me.voltage_v = {500.1, 0, 0};
  EXPECT_FALSE(Encode(me).ok());
  me.voltage_v = {230, 230, 230};
  me.active_power_w = 30001;
  EXPECT_FALSE(Encode(me).ok());

  Energy e;
  e.address = 1;
  e.session_energy_wh = 1 << 24;
  EXPECT_FALSE(Encode(e).ok());
  e.session_energy_wh = 0;
  e.relay_temperature_c = 126;
  EXPECT_FALSE(Encode(e).ok());
  e.relay_temperature_c = -41;
  EXPECT_FALSE(Encode(e).ok());

  EXPECT_FALSE(EncodeRfidTap({1, 0, {}}).ok());
  EXPECT_FALSE(EncodeRfidTap({1, 0, std::vector<uint8_t>(11, 1)}).ok());
  EXPECT_FALSE(EncodeRfidTap({1, 8, {1, 2, 3, 4}}).ok());
  RfidFragment fragment{1, 0, 4, 0, {1, 2}};  // says 4 bytes, carries 2
  EXPECT_FALSE(Encode(fragment).ok());

  Identity id;
  id.info.address = 1;
  id.info.max_current_a = 16;
  id.serial = std::string(29, 'A');
  EXPECT_FALSE(EncodeIdentity(id).ok());
  id.serial = "AB\x01";
  EXPECT_FALSE(EncodeIdentity(id).ok());
  id.serial = "OK";
  id.info.max_current_a = 40;
  EXPECT_FALSE(EncodeIdentity(id).ok());
}

// ---- decoder: every rejection -------------------------------------------------

TEST(WallboxProtocol, ForeignIdsAreNotFound) {
  CanFrame ext = Frame(0x085, {0xA0, 0x00, 0x37});
  ext.extended = true;
  ExpectError(ext, absl::StatusCode::kNotFound, "extended");
  ExpectError(Frame(0x800, {}), absl::StatusCode::kNotFound, "11-bit");
  ExpectError(Frame(0x005, {}), absl::StatusCode::kNotFound, "type 0");
  ExpectError(Frame(0x245, {}), absl::StatusCode::kNotFound, "type 9");
  ExpectError(Frame(0x7FF, {}), absl::StatusCode::kNotFound, "type 31");
  ExpectError(Frame(0x041, {0, 0, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kNotFound, "address 1");
  ExpectError(Frame(0x080, {0xA0, 0x00, 0x37}), absl::StatusCode::kNotFound, "address 0");
  ExpectError(Frame(0x100, {0, 0, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kNotFound, "address 0");
}

TEST(WallboxProtocol, RemoteFramesAreRejected) {
  CanFrame rtr = Frame(0x105, {});
  rtr.remote = true;
  ExpectError(rtr, absl::StatusCode::kInvalidArgument, "RTR");
}

TEST(WallboxProtocol, BadDlcIsRejectedForEveryMessage) {
  const std::vector<std::pair<uint32_t, int>> ids = {{0x040, 8}, {0x085, 3}, {0x0C5, 4},
                                                     {0x105, 8}, {0x145, 8}, {0x185, 8},
                                                     {0x1C5, 8}, {0x205, 8}};
  for (const auto& [id, dlc] : ids) {
    for (int wrong = 0; wrong <= 8; ++wrong) {
      if (wrong == dlc) continue;
      ExpectError(Frame(id, std::vector<uint8_t>(wrong, 0)), absl::StatusCode::kInvalidArgument,
                  "bad DLC");
    }
    CanFrame f = Frame(id, {});
    f.dlc = 9;
    ExpectError(f, absl::StatusCode::kInvalidArgument, "bad DLC 9");
  }
  // The message names the wallbox.
  ExpectError(Frame(0x12A, {0, 0}), absl::StatusCode::kInvalidArgument,
              "Status of wallbox 42 (id 0x12a): bad DLC 2, expected 8");
}

TEST(WallboxProtocol, ReservedBitsAreRejected) {
  ExpectError(Frame(0x040, {0, 0, 0, 0, 0, 0, 0x10, 0}), absl::StatusCode::kInvalidArgument,
              "reserved bits");
  ExpectError(Frame(0x040, {0, 0, 0, 0, 0, 0, 0, 0x40}), absl::StatusCode::kInvalidArgument,
              "reserved bits");
  ExpectError(Frame(0x101, {0x80, 0, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kInvalidArgument,
              "reserved bits");
  ExpectError(Frame(0x101, {0, 0, 0, 0, 0, 0, 0, 0x40}), absl::StatusCode::kInvalidArgument,
              "reserved bits set (mask 0x4000000000000000)");
  // RFID: bytes past the UID, in either fragment.
  ExpectError(Frame(0x1C1, {0x04, 1, 2, 3, 4, 5, 0, 0}), absl::StatusCode::kInvalidArgument,
              "reserved bits");
  ExpectError(Frame(0x1C1, {0x18, 8, 9, 10, 0, 0, 0, 1}), absl::StatusCode::kInvalidArgument,
              "reserved bits");
  // Identity page 0 flags beyond "tethered".
  ExpectError(Frame(0x201, {0, 1, 1, 0, 0, 16, 0x02, 1}), absl::StatusCode::kInvalidArgument,
              "reserved bits");
}

TEST(WallboxProtocol, OutOfRangeValuesAreRejected) {
  // Available current L2 = 3000.1 A.
  ExpectError(Frame(0x040, {0, 0, 0x31, 0x75, 0, 0, 0, 0}), absl::StatusCode::kOutOfRange,
              "available current L2 raw 30001 is outside 0..30000");
  // Setpoint 5.9 A, 32.1 A, 0.1 A.
  ExpectError(Frame(0x085, {59, 0, 0x07}), absl::StatusCode::kOutOfRange, "5.9 A");
  ExpectError(Frame(0x085, {0x41, 0x01, 0x07}), absl::StatusCode::kOutOfRange, "32.1 A");
  ExpectError(Frame(0x085, {1, 0, 0x07}), absl::StatusCode::kOutOfRange, "0.1 A");
  // Watchdog timeout 99 ms and 60001 ms; failsafe 1.0 A.
  ExpectError(Frame(0x0C5, {99, 0, 60, 0}), absl::StatusCode::kOutOfRange, "timeout");
  ExpectError(Frame(0x0C5, {0x61, 0xEA, 60, 0}), absl::StatusCode::kOutOfRange, "timeout");
  ExpectError(Frame(0x0C5, {0xE8, 0x03, 10, 0}), absl::StatusCode::kOutOfRange,
              "failsafe current 1.0 A");
  // Voltage L3 500.1 V; power 30001 W.
  ExpectError(Frame(0x145, {0, 0, 0, 0, 0x89, 0x13, 0, 0}), absl::StatusCode::kOutOfRange,
              "voltage L3");
  ExpectError(Frame(0x145, {0, 0, 0, 0, 0, 0, 0x31, 0x75}), absl::StatusCode::kOutOfRange,
              "active power");
  // Temperatures -41 and 126 degrees.
  ExpectError(Frame(0x185, {0, 0, 0, 0, 0, 0, 0xD7, 0}), absl::StatusCode::kOutOfRange,
              "relay temperature");
  ExpectError(Frame(0x185, {0, 0, 0, 0, 0, 0, 0, 126}), absl::StatusCode::kOutOfRange,
              "ambient temperature");
  // UID length 0 and 11.
  ExpectError(Frame(0x1C5, {0x00, 0, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kOutOfRange,
              "UID length");
  ExpectError(Frame(0x1C5, {0x0B, 0, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kOutOfRange,
              "UID length");
  // Identity max current 5 A and 33 A; protocol version 0.
  ExpectError(Frame(0x205, {0, 1, 1, 0, 0, 5, 0, 1}), absl::StatusCode::kOutOfRange, "max current");
  ExpectError(Frame(0x205, {0, 1, 1, 0, 0, 33, 0, 1}), absl::StatusCode::kOutOfRange,
              "max current");
  ExpectError(Frame(0x205, {0, 1, 1, 0, 0, 16, 0, 0}), absl::StatusCode::kOutOfRange,
              "protocol version");
}

TEST(WallboxProtocol, UndefinedValuesAreRejected) {
  ExpectError(Frame(0x105, {0x06, 0, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kInvalidArgument,
              "IEC 61851 state 6");
  ExpectError(Frame(0x105, {0x07, 0, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kInvalidArgument,
              "IEC 61851 state 7");
  ExpectError(Frame(0x085, {0xA0, 0x00, 0x08}), absl::StatusCode::kInvalidArgument,
              "no phase enabled");
  ExpectError(Frame(0x1C5, {0x15, 1, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kInvalidArgument,
              "fragment 1 of a 5-byte UID");
  ExpectError(Frame(0x205, {0, 0, 1, 0, 0, 16, 0, 1}), absl::StatusCode::kInvalidArgument,
              "unknown model 0");
  ExpectError(Frame(0x205, {0, 3, 1, 0, 0, 16, 0, 1}), absl::StatusCode::kInvalidArgument,
              "unknown model 3");
  ExpectError(Frame(0x205, {5, 0, 0, 0, 0, 0, 0, 0}), absl::StatusCode::kInvalidArgument,
              "identity page 5");
  ExpectError(Frame(0x205, {1, 'A', 0x07, 0, 0, 0, 0, 0}), absl::StatusCode::kInvalidArgument,
              "serial character 1 (0x07)");
  ExpectError(Frame(0x205, {1, 'A', 0, 'B', 0, 0, 0, 0}), absl::StatusCode::kInvalidArgument,
              "before the NUL padding");
}

// Any frame at all: Decode never crashes, and whatever it accepts encodes back
// to exactly the same frame, so no value is changed on the way through.
TEST(WallboxProtocol, EveryAcceptedFrameEncodesBackIdentically) {
  const uint32_t seed = 20261121;
  std::mt19937 rng(seed);
  int accepted = 0;
  for (int i = 0; i < 200'000; ++i) {
    CanFrame f;
    // Mostly ids of this protocol, some foreign ones.
    f.id = (rng() % 10 == 0) ? rng() % 0x800 : (((rng() % 8) + 1) << 6) | (rng() % 64);
    f.dlc = static_cast<uint8_t>((rng() % 4 == 0) ? rng() % 10 : (f.id >> 6 == 2 ? 3 : 8));
    // Sparse payloads so the range checks pass often enough.
    for (int b = 0; b < 8; ++b) f.data[b] = (rng() % 3 == 0) ? static_cast<uint8_t>(rng()) : 0;
    if (f.id >> 6 == 3 && f.dlc == 8) f.dlc = 4;
    for (int b = std::min<int>(f.dlc, 8); b < 8; ++b) f.data[b] = 0;
    absl::StatusOr<Message> m = Decode(f);
    if (!m.ok()) continue;
    ++accepted;
    absl::StatusOr<CanFrame> again = Encode(*m);
    ASSERT_TRUE(again.ok()) << "seed " << seed << " frame " << i << ": " << again.status();
    ASSERT_TRUE(*again == f) << "seed " << seed << " frame " << i << " id 0x" << std::hex << f.id;
  }
  EXPECT_GT(accepted, 10'000) << "the property saw too few valid frames to mean anything";
}

}  // namespace
}  // namespace evgate::can::wallbox
