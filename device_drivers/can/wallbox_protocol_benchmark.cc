// Decode + dispatch cost per CAN frame of the evgate wallbox protocol: what
// the CAN bus owner spends on each received frame before its own bookkeeping.
//
//   bazel run -c opt //device_drivers/can:wallbox_protocol_benchmark
//
// BM_DecodeDispatchBusMix: frames in the proportions a bus with 63 wallboxes
// carries (per wallbox and second: 5 Status, 1 Measurements, 1 Energy, 1
// Setpoint echo, Identity every 10 s), decoded and dispatched with
// std::visit into a per-address table, as the owner does. Also a frame that
// is rejected (reserved bits) and a foreign id, and encoding a setpoint.
#include <array>
#include <vector>

#include "benchmark/benchmark.h"
#include "device_drivers/can/wallbox_protocol.h"

namespace evgate::can::wallbox {
namespace {

struct Table {
  std::array<Status, 64> status{};
  std::array<Measurements, 64> measurements{};
  std::array<Energy, 64> energy{};
  std::array<int, 64> other{};
  RfidAssembler rfid;
  IdentityAssembler identity;
};

struct Dispatch {
  Table& t;
  void operator()(const Status& m) { t.status[m.address] = m; }
  void operator()(const Measurements& m) { t.measurements[m.address] = m; }
  void operator()(const Energy& m) { t.energy[m.address] = m; }
  void operator()(const RfidFragment& m) { benchmark::DoNotOptimize(t.rfid.Add(m)); }
  void operator()(const IdentityInfo& m) { t.identity.Add(m); }
  void operator()(const IdentitySerial& m) { benchmark::DoNotOptimize(t.identity.Add(m)); }
  template <typename M>
  void operator()(const M& m) {
    ++t.other[AddressOf(Message{m}) & 63];
  }
};

std::vector<CanFrame> BusMix() {
  std::vector<CanFrame> frames;
  for (int address = 1; address <= 63; ++address) {
    Status s;
    s.address = address;
    s.state = IecState::kC;
    s.relay_closed = true;
    s.current_a = {16.0, 15.9, 16.1};
    for (int i = 0; i < 5; ++i) {
      s.counter = i;
      frames.push_back(*Encode(s));
    }
    frames.push_back(*Encode(Measurements{address, {230.1, 229.8, 231.0}, 11040}));
    frames.push_back(*Encode(Energy{address, 12345, 1234500, 35, 25}));
    Setpoint sp;
    sp.address = address;
    sp.max_current_a = 16;
    frames.push_back(*Encode(sp));
    if (address % 10 == 0) {
      Identity id;
      id.info.address = address;
      id.info.max_current_a = 32;
      id.serial = "022101000266JSS070RE3CA02";
      const absl::StatusOr<std::vector<CanFrame>> pages = EncodeIdentity(id);
      frames.insert(frames.end(), pages->begin(), pages->end());
    }
  }
  return frames;
}

void BM_DecodeDispatchBusMix(benchmark::State& state) {
  const std::vector<CanFrame> frames = BusMix();
  Table table;
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<Message> m = Decode(frames[i]);
    if (m.ok()) std::visit(Dispatch{table}, *m);
    if (++i == frames.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::to_string(frames.size()) + " frames of 63 wallboxes, round robin");
}
BENCHMARK(BM_DecodeDispatchBusMix);

void BM_DecodeStatus(benchmark::State& state) {
  Status s;
  s.address = 5;
  s.state = IecState::kC;
  s.current_a = {16, 16, 16};
  const CanFrame f = *Encode(s);
  for (auto _ : state) benchmark::DoNotOptimize(Decode(f));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeStatus);

void BM_DecodeRejected(benchmark::State& state) {
  CanFrame f;
  f.id = 0x105;
  f.dlc = 8;
  f.data[7] = 0x80;  // a reserved bit: rejected with a formatted message
  for (auto _ : state) benchmark::DoNotOptimize(Decode(f));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeRejected);

void BM_DecodeForeignId(benchmark::State& state) {
  CanFrame f;
  f.id = 0x7E8;
  f.dlc = 8;
  for (auto _ : state) benchmark::DoNotOptimize(Decode(f));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeForeignId);

void BM_EncodeSetpoint(benchmark::State& state) {
  Setpoint sp;
  sp.address = 17;
  sp.max_current_a = 13.7;
  sp.sequence = 4;
  for (auto _ : state) benchmark::DoNotOptimize(Encode(sp));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeSetpoint);

}  // namespace
}  // namespace evgate::can::wallbox

BENCHMARK_MAIN();
