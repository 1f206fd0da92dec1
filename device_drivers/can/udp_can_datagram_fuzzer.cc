// Fuzz entry for the UDP virtual bus datagram parser (anything on the
// multicast port reaches it). A datagram either fails with a reason or
// decodes into a frame that re-encodes to exactly the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/types/span.h"
#include "device_drivers/can/udp_can_bus.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<evgate::can::UdpCanDatagram> decoded =
      evgate::can::DecodeUdpCanDatagram(absl::MakeConstSpan(data, size));
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) std::abort();  // a rejection says why
    return 0;
  }
  if (!evgate::can::CheckFrame(decoded->frame).ok() || decoded->sender_id == 0) std::abort();
  const std::vector<uint8_t> again = evgate::can::EncodeUdpCanDatagram(*decoded);
  if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
  return 0;
}
