// Writes, as JSON on stdout, frames produced by our encoder together with the
// values the encoder was given, named as the signals of evgate_wallbox.dbc:
//   [{"id": 257, "dlc": 8, "data": "4a37...", "signals": {"IecState": 2, ...}}, ...]
// dbc_peer_test.py decodes the frames with canmatrix and our DBC and compares
// signal by signal. The expected values are written from the message structs
// here, never from the frame bytes, so an encoder bug and a DBC bug cannot
// cancel out. Deterministic (fixed seed): edge values first, then random ones.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "device_drivers/can/wallbox_protocol.h"
#include "nlohmann/json.hpp"

namespace evgate::can::wallbox {
namespace {

using nlohmann::json;

class Writer {
 public:
  void Add(const CanFrame& frame, json signals) {
    std::string hex;
    for (int i = 0; i < frame.dlc; ++i) hex += absl::StrFormat("%02x", frame.data[i]);
    out_.push_back({{"id", frame.id}, {"dlc", frame.dlc}, {"data", hex}, {"signals", signals}});
  }
  template <typename M>
  void Add(const M& m, json signals) {
    absl::StatusOr<CanFrame> frame = Encode(m);
    if (!frame.ok()) {
      std::fprintf(stderr, "encoder refused a valid message: %s\n",
                   std::string(frame.status().message()).c_str());
      std::exit(1);
    }
    Add(*frame, std::move(signals));
  }
  void Print() const { std::printf("%s\n", out_.dump(1).c_str()); }

 private:
  json out_ = json::array();
};

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  int64_t Int64(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Bool() { return Int(0, 1) == 1; }
  double Tenths(int lo, int hi) { return Int(lo, hi) / 10.0; }
  double ChargeLimit() { return Int(0, 4) == 0 ? 0 : Tenths(60, 320); }

 private:
  std::mt19937 rng_;
};

void AvailableCurrents(Writer& w, Gen& g, int n) {
  for (int i = 0; i < n; ++i) {
    AvailableCurrent m;
    for (auto& a : m.available_current_a) a = i == 0 ? 3000.0 : g.Tenths(0, 30000);
    m.counter = i == 0 ? 15 : g.Int(0, 15);
    m.active_wallboxes = i == 0 ? 63 : g.Int(0, 63);
    json s = {{"AvailableCurrentCounter", m.counter}, {"ActiveWallboxes", m.active_wallboxes}};
    for (int p = 0; p < 3; ++p)
      s[absl::StrFormat("AvailableCurrentL%d", p + 1)] = m.available_current_a[p];
    w.Add(m, s);
  }
}

void Setpoints(Writer& w, Gen& g, int n) {
  for (int i = 0; i < n; ++i) {
    Setpoint m;
    m.address = i == 0 ? 63 : g.Int(1, 63);
    m.max_current_a = i == 0 ? 32.0 : g.ChargeLimit();
    do {
      for (auto& e : m.phase_enabled) e = g.Bool();
    } while (!m.phase_enabled[0] && !m.phase_enabled[1] && !m.phase_enabled[2]);
    m.pause = g.Bool();
    m.sequence = g.Int(0, 15);
    json s = {{"MaxCurrent", m.max_current_a},
              {"Pause", m.pause ? 1 : 0},
              {"SetpointSequence", m.sequence}};
    for (int p = 0; p < 3; ++p)
      s[absl::StrFormat("PhaseEnableL%d", p + 1)] = m.phase_enabled[p] ? 1 : 0;
    w.Add(m, s);
  }
}

void WatchdogConfigs(Writer& w, Gen& g, int n) {
  for (int i = 0; i < n; ++i) {
    WatchdogConfig m;
    m.address = g.Int(1, 63);
    m.timeout_ms = i == 0 ? 60000 : g.Int(100, 60000);
    m.failsafe_current_a = g.ChargeLimit();
    w.Add(m, {{"WatchdogTimeout", m.timeout_ms}, {"FailsafeCurrent", m.failsafe_current_a}});
  }
}

void Statuses(Writer& w, Gen& g, int n) {
  for (int i = 0; i < n; ++i) {
    Status m;
    m.address = g.Int(1, 63);
    m.state = static_cast<IecState>(g.Int(0, 5));
    m.relay_closed = g.Bool();
    m.failsafe_active = g.Bool();
    m.paused = g.Bool();
    m.watchdog_configured = g.Bool();
    m.counter = g.Int(0, 15);
    m.applied_sequence = g.Int(0, 15);
    m.errors = i == 0 ? 0xFFFF : static_cast<uint16_t>(g.Int(0, 3) == 0 ? g.Int(0, 0xFFFF) : 0);
    for (auto& c : m.current_a) c = i == 0 ? 102.3 : g.Tenths(0, 1023);
    json s = {{"IecState", static_cast<int>(m.state)},
              {"RelayClosed", m.relay_closed ? 1 : 0},
              {"FailsafeActive", m.failsafe_active ? 1 : 0},
              {"Paused", m.paused ? 1 : 0},
              {"WatchdogConfigured", m.watchdog_configured ? 1 : 0},
              {"StatusCounter", m.counter},
              {"AppliedSequence", m.applied_sequence}};
    for (int e = 0; e < kErrorCodeCount; ++e) {
      const auto code = static_cast<ErrorCode>(e);
      s["Err" + std::string(ErrorCodeName(code))] = m.HasError(code) ? 1 : 0;
    }
    for (int p = 0; p < 3; ++p) s[absl::StrFormat("CurrentL%d", p + 1)] = m.current_a[p];
    w.Add(m, s);
  }
}

void MeasurementFrames(Writer& w, Gen& g, int n) {
  for (int i = 0; i < n; ++i) {
    Measurements m;
    m.address = g.Int(1, 63);
    for (auto& v : m.voltage_v) v = i == 0 ? 500.0 : g.Tenths(0, 5000);
    m.active_power_w = i == 0 ? 30000 : g.Int(0, 30000);
    json s = {{"ActivePower", m.active_power_w}};
    for (int p = 0; p < 3; ++p) s[absl::StrFormat("VoltageL%d", p + 1)] = m.voltage_v[p];
    w.Add(m, s);
  }
}

void EnergyFrames(Writer& w, Gen& g, int n) {
  for (int i = 0; i < n; ++i) {
    Energy m;
    m.address = g.Int(1, 63);
    m.session_energy_wh = i == 0 ? (1 << 24) - 1 : g.Int64(0, (1 << 24) - 1);
    const int64_t lifetime_tenths_kwh = i == 0 ? (1 << 24) - 1 : g.Int64(0, (1 << 24) - 1);
    m.lifetime_energy_wh = lifetime_tenths_kwh * 100;
    m.relay_temperature_c = i == 0 ? -40 : g.Int(-40, 125);
    m.ambient_temperature_c = i == 0 ? 125 : g.Int(-40, 125);
    w.Add(m, {{"SessionEnergy", m.session_energy_wh},
              {"LifetimeEnergy", static_cast<double>(m.lifetime_energy_wh) / 1000.0},
              {"RelayTemperature", m.relay_temperature_c},
              {"AmbientTemperature", m.ambient_temperature_c}});
  }
}

void RfidTaps(Writer& w, Gen& g, int n) {
  for (int i = 0; i < n; ++i) {
    RfidTap tap;
    tap.address = g.Int(1, 63);
    tap.tap_sequence = g.Int(0, 7);
    // The ISO/IEC 14443 UID sizes (4, 7, 10) first, then any length.
    const int length = i < 3 ? 4 + 3 * i : g.Int(1, 10);
    for (int b = 0; b < length; ++b) tap.uid.push_back(static_cast<uint8_t>(g.Int(0, 255)));
    absl::StatusOr<std::vector<CanFrame>> frames = EncodeRfidTap(tap);
    if (!frames.ok()) std::exit(1);
    for (size_t f = 0; f < frames->size(); ++f) {
      json s = {{"UidLength", length}, {"UidFragment", f}, {"TapSequence", tap.tap_sequence}};
      // Fragment 0 describes UID bytes 0..6, fragment 1 bytes 7..9; bytes past
      // the UID are 0.
      const int first = f == 0 ? 0 : 7;
      const int last = f == 0 ? 6 : 9;
      for (int b = first; b <= last; ++b) {
        s[absl::StrFormat("UidByte%d", b)] = b < length ? tap.uid[b] : 0;
      }
      w.Add((*frames)[f], s);
    }
  }
}

void Identities(Writer& w, Gen& g, int n) {
  const std::string charset = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_ .abcxyz";
  for (int i = 0; i < n; ++i) {
    Identity id;
    id.info.address = g.Int(1, 63);
    id.info.model = g.Bool() ? Model::kEvPlus22kW3Phase : Model::kEvPlus7kW1Phase;
    for (auto& v : id.info.firmware) v = g.Int(0, 255);
    id.info.max_current_a = g.Int(6, 32);
    id.info.tethered_cable = g.Bool();
    id.info.protocol_version = i == 0 ? 255 : 1;
    id.serial = i == 0 ? "022101000266JSS070RE3CA02" : "";
    if (i > 0) {
      const int len = g.Int(0, kMaxSerialLength);
      for (int c = 0; c < len; ++c) id.serial += charset[g.Int(0, charset.size() - 1)];
    }
    absl::StatusOr<std::vector<CanFrame>> frames = EncodeIdentity(id);
    if (!frames.ok()) std::exit(1);
    w.Add((*frames)[0], {{"IdentityPage", 0},
                         {"Model", static_cast<int>(id.info.model)},
                         {"FirmwareMajor", id.info.firmware[0]},
                         {"FirmwareMinor", id.info.firmware[1]},
                         {"FirmwarePatch", id.info.firmware[2]},
                         {"MaxCurrentSetting", id.info.max_current_a},
                         {"TetheredCable", id.info.tethered_cable ? 1 : 0},
                         {"ProtocolVersion", id.info.protocol_version}});
    for (int page = 1; page <= kSerialPages; ++page) {
      json s = {{"IdentityPage", page}};
      for (int c = 0; c < kSerialCharsPerPage; ++c) {
        const size_t index = static_cast<size_t>((page - 1) * kSerialCharsPerPage + c);
        s[absl::StrFormat("SerialChar%02d", index)] =
            index < id.serial.size() ? static_cast<unsigned char>(id.serial[index]) : 0;
      }
      w.Add((*frames)[page], s);
    }
  }
}

}  // namespace
}  // namespace evgate::can::wallbox

int main() {
  using namespace evgate::can::wallbox;
  Writer w;
  Gen g(20261121);
  AvailableCurrents(w, g, 30);
  Setpoints(w, g, 60);
  WatchdogConfigs(w, g, 30);
  Statuses(w, g, 60);
  MeasurementFrames(w, g, 30);
  EnergyFrames(w, g, 30);
  RfidTaps(w, g, 30);
  Identities(w, g, 15);
  w.Print();
  return 0;
}
