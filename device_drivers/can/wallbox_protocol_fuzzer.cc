// Fuzz target: CAN frame decoding of the evgate wallbox protocol, plus the
// RFID and identity reassembly fed with whatever decodes.
//
// Input: a sequence of 11-byte records, one frame each:
//   byte 0-1  id, little-endian: bits 0-10 the 11-bit id (0-28 for extended
//             frames, with bytes 0-3 when bit 15 of bytes 0-1 is set: see below)
//   byte 1    bit 7 = extended, bit 6 = RTR (taken out of the id)
//   byte 2    DLC (any value 0-255: the decoder must reject > 8)
//   byte 3-10 data
// Checks, beyond "no crash / no sanitizer report": every frame Decode accepts
// encodes back to the same id, DLC and data bytes (a decoded value is exactly
// what the wire said).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "device_drivers/can/wallbox_protocol.h"

namespace {

namespace wb = evgate::can::wallbox;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kRecord = 11;
  wb::RfidAssembler rfid;
  wb::IdentityAssembler identity;
  for (size_t at = 0; at + kRecord <= size; at += kRecord) {
    const uint8_t* r = data + at;
    evgate::can::CanFrame frame;
    frame.extended = (r[1] & 0x80) != 0;
    frame.remote = (r[1] & 0x40) != 0;
    frame.id = static_cast<uint32_t>(r[0]) | (static_cast<uint32_t>(r[1] & 0x3F) << 8);
    if (frame.extended) frame.id |= static_cast<uint32_t>(r[2]) << 14;  // up to 22 bits
    frame.dlc = r[2];
    std::memcpy(frame.data.data(), r + 3, 8);
    absl::StatusOr<wb::Message> message = wb::Decode(frame);
    if (!message.ok()) continue;
    Check(!frame.extended && !frame.remote && frame.dlc <= 8);
    absl::StatusOr<evgate::can::CanFrame> again = wb::Encode(*message);
    Check(again.ok());
    Check(again->id == frame.id && again->dlc == frame.dlc && !again->extended);
    Check(std::memcmp(again->data.data(), frame.data.data(), frame.dlc) == 0);
    Check(wb::AddressOf(*message) == static_cast<int>(frame.id & 0x3F));
    if (auto* f = std::get_if<wb::RfidFragment>(&*message)) {
      if (auto tap = rfid.Add(*f)) Check(tap->uid.size() == static_cast<size_t>(f->uid_length));
    } else if (auto* info = std::get_if<wb::IdentityInfo>(&*message)) {
      identity.Add(*info);
    } else if (auto* page = std::get_if<wb::IdentitySerial>(&*message)) {
      if (auto id = identity.Add(*page)) {
        Check(id->serial.size() <= static_cast<size_t>(wb::kMaxSerialLength));
        Check(wb::EncodeIdentity(*id).ok());
      }
    }
  }
  return 0;
}
