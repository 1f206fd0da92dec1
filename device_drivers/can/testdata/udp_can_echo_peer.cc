// A second process on evgate's virtual CAN bus, for udp_can_bus_test:
//   udp_can_echo_peer GROUP PORT INDEX
// joins GROUP:PORT, announces itself with frame 0x7E0 [INDEX], answers a
// request 0x100 with 0x200+INDEX (same data), answers any other peer's answer
// 0x200+k (k != INDEX) with 0x300+INDEX, and exits 0 on 0x7FF, or 1 after 20 s
// without it. Test-only.
#include <cstdlib>
#include <string>

#include "absl/time/clock.h"
#include "device_drivers/can/udp_can_bus.h"
#include "runtime/clock.h"

int main(int argc, char** argv) {
  using evgate::can::BusEventKind;
  using evgate::can::CanFrame;
  if (argc != 4) return 2;
  evgate::can::UdpCanBusOptions options;
  options.name = "echo-peer";
  options.group = argv[1];
  options.port = std::atoi(argv[2]);
  const int index = std::atoi(argv[3]);
  evgate::can::UdpCanBus bus(options, evgate::SystemClock::Get());
  if (!bus.Open().ok()) return 3;

  CanFrame announce;
  announce.id = 0x7E0;
  announce.dlc = 1;
  announce.data[0] = static_cast<uint8_t>(index);
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  absl::Time next_announce = absl::InfinitePast();
  bool answered = false;
  while (absl::Now() < give_up) {
    // Announce until the test's request shows it has seen us.
    if (!answered && absl::Now() >= next_announce) {
      if (!bus.Send(announce).ok()) return 4;
      next_announce = absl::Now() + absl::Milliseconds(50);
    }
    evgate::can::BusEvent event = bus.Receive(absl::Milliseconds(20));
    if (event.kind != BusEventKind::kFrame) continue;
    CanFrame reply = *event.frame;
    if (event.frame->id == 0x7FF) return 0;
    if (event.frame->id == 0x100) {
      answered = true;
      reply.id = 0x200 + index;
    } else if (event.frame->id >= 0x200 && event.frame->id < 0x210 &&
               event.frame->id != static_cast<uint32_t>(0x200 + index)) {
      reply.id = 0x300 + index;
      reply.dlc = 1;
      reply.data[0] = static_cast<uint8_t>(event.frame->id - 0x200);
    } else {
      continue;
    }
    if (!bus.Send(reply).ok()) return 4;
  }
  return 1;
}
