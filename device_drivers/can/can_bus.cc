#include "device_drivers/can/can_bus.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace evgate::can {

absl::Status CheckFrame(const CanFrame& frame) {
  const uint32_t max_id = frame.extended ? 0x1FFFFFFFu : 0x7FFu;
  if (frame.id > max_id) {
    return absl::InvalidArgumentError(absl::StrFormat("CAN id 0x%X does not fit a %s identifier",
                                                      frame.id,
                                                      frame.extended ? "29-bit" : "11-bit"));
  }
  if (frame.dlc > 8) {
    return absl::InvalidArgumentError(absl::StrFormat("CAN dlc %d exceeds 8", frame.dlc));
  }
  return absl::OkStatus();
}

std::string FrameToString(const CanFrame& frame) {
  // Two literal formats: clang requires StrFormat's format to be constexpr.
  std::string text = frame.extended
                         ? absl::StrFormat("0x%08X [%d]", frame.id, static_cast<int>(frame.dlc))
                         : absl::StrFormat("0x%03X [%d]", frame.id, static_cast<int>(frame.dlc));
  if (frame.remote) return absl::StrCat(text, " RTR");
  for (int i = 0; i < frame.dlc && i < 8; ++i) {
    absl::StrAppendFormat(&text, " %02X", frame.data[i]);
  }
  return text;
}

}  // namespace evgate::can
