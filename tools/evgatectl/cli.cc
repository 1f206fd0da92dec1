#include "tools/evgatectl/cli.h"

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "evgate/v1/device.grpc.pb.h"
#include "evgate/v1/load_balancer.grpc.pb.h"
#include "evgate/v1/ocpp.grpc.pb.h"
#include "evgate/v1/session.grpc.pb.h"
#include "evgate/v1/simulator.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "runtime/args.h"
#include "tools/evgatectl/internal/ctl.h"
#include "tools/evgatectl/table.h"

namespace evgate::ctl {
namespace internal {

using ::google::protobuf::Message;

namespace {

constexpr char kDefaultServer[] = "127.0.0.1:50051";

constexpr char kUsage[] = R"(evgatectl — operate an evgate site controller

Usage: evgatectl [--server HOST:PORT] [-o table|json] [--timeout SECONDS] [--ca FILE] [--cert FILE --key FILE | --token FILE] COMMAND

Commands:
  health                                     status of every service the server hosts
  devices list [--kind KIND]                 devices with link health and live values
  devices get DEVICE_ID                      one device in full
  devices buses                              each bus's requests, errors, request
                                             durations (Modbus), frames and error
                                             frames (CAN), setpoints expired
  sessions list [--from T] [--to T] [--evse ID] [--id-tag TAG] [--state open|closed] [--limit N]
  sessions get SESSION_ID
  sessions start --evse ID --id-tag TAG [--mode charge|discharge] [--energy-limit-wh WH]
                 [--time-limit DURATION]      DURATION like 90m or 2h
  sessions stop (SESSION_ID | --evse ID)
  sessions export --format csv|json [--from T] [--to T] [--evse ID] [--id-tag TAG] [--state S]
  authorize ID_TAG [--evse ID]               would this card be accepted (here)?
  cards list                                 the local card list (site.yaml and API cards)
  cards add UID [--name NAME] [--evse A,B] [--group G,H] [--valid-from T] [--valid-until T]
                [--parent TAG] [--blocked] [--master]   creates or replaces the card
  cards delete UID
  allocation show                            the load balancer's current allocation
  allocation watch                           print every new allocation until Ctrl-C
  allocation simulate --scenario FILE.json   allocation for a scenario (docs/scenario-format.md)
  allocation limit set --source S [--circuit C] [--current-a A | A1,A2,A3] [--power-w W]
                       [--export-w W] [--ttl DURATION]   an external limit (grid by default)
  allocation limit clear --source S [--circuit C]
  allocation priority EVSE N [--ttl DURATION]   priority class N (higher first) for the EVSE
  ocpp list                                  OCPP charge points of the local Central System:
                                             connection, boot, connectors (also refused ones)
  ocpp show CHARGE_POINT_ID                  one charge point in full
  ocpp command CHARGE_POINT_ID ACTION [PAYLOAD_JSON]
                                             send one OCPP 1.6 CALL, e.g. Reset '{"type":"Soft"}';
                                             prints the charger's answer (exit 1 on CALLERROR)
  grid status                                V2X grid mode, why, countdown, off-grid box, the
                                             EVSE forming the island (docs/v2x.md)
  grid watch [--interval SECONDS]            every mode change (marked *) and periodic states
  grid off-grid [--evse ID] [--reason TEXT]  start off-grid discharge during an outage
  grid on-grid [--reason TEXT]               transfer back without waiting for a stable grid
  grid params EVSE                           the V2X parameters evgate applies to the EVSE

Simulated sites (the simulator service of a demo site):
  sim list                                   simulated devices: meters, what each wallbox offers
                                             and its vehicle draws, failsafe, faults
  sim plug EVSE [--max-current-a A] [--phases 1|3] [--energy-kwh KWH] [--id-tag TAG]
                                             plug a vehicle in (defaults: the EVSE's); with
                                             --id-tag the driver then taps that card
  sim plug DC_EVSE [--max-power-kw KW] [--energy-kwh KWH] [--id-tag TAG] [--soc PCT]
                                             at a DC charger (OCPP): the card is presented
                                             at once (Authorize, StartTransaction)
  sim unplug EVSE
  sim tap EVSE ID_TAG                        present an RFID card at the EVSE's reader
  sim fault DEVICE|EVSE CODE                 raise a vendor fault, e.g. OCP on a Cabur wallbox
  sim clear DEVICE|EVSE CODE                 clear it
  sim stop-device DEVICE|EVSE                the device stops answering on its bus
  sim start-device DEVICE|EVSE               it answers again
  sim building-load A | A1,A2,A3 | profile   fix the building load per phase (A), or back to
                                             the daily profile
  sim grid-outage                            the grid is lost at the site's connection
  sim grid-restore                           the grid is back
  sim button [BOX]                           the off-grid box's backup battery button

T is RFC 3339 (2026-11-21T08:00:00Z) or a date (2026-11-21, UTC midnight). Sessions are selected
by start time, --from inclusive and --to exclusive: --from 2026-11-01 --to 2026-12-01 is November.
--server defaults to 127.0.0.1:50051. Plaintext unless --ca (or --tls-ca) is given.
Credentials: --cert FILE --key FILE (client certificate of the site CA) or --token FILE
(a file holding a bearer token), each with --ca FILE. Flags win over EVGATECTL_SERVER,
EVGATECTL_CA, EVGATECTL_CERT, EVGATECTL_KEY, EVGATECTL_TOKEN (docs/security.md).
Exit codes: 0 ok, 1 refused/failed, 2 usage, 3 server unreachable, 4 service not hosted.
)";

}  // namespace

const std::map<std::string, ServiceInfo>& Services() {
  static const auto* services = new std::map<std::string, ServiceInfo>{
      {"devices", {"evgate.v1.DeviceDriver", "a device driver service (modbus, can, ocpp_bridge)"}},
      {"allocation", {"evgate.v1.LoadBalancer", "the load_balancer service"}},
      {"sessions", {"evgate.v1.SessionService", "the session service"}},
      {"ocpp", {"evgate.v1.OcppBridge", "the ocpp_bridge service"}},
      {"grid", {"evgate.v1.GridController", "the grid controller"}},
      {"sim", {"evgate.v1.Simulator", "the simulator service (a site with simulation.devices)"}},
  };
  return *services;
}

// Human label of an enum value: SESSION_STATE_ACTIVE -> ACTIVE.
std::string EnumLabel(const google::protobuf::EnumDescriptor* type, int number) {
  const google::protobuf::EnumValueDescriptor* value = type->FindValueByNumber(number);
  if (value == nullptr) return absl::StrCat(number);
  std::string prefix = type->value(0)->name();
  const std::string unspecified = "UNSPECIFIED";
  if (prefix.size() > unspecified.size() &&
      prefix.compare(prefix.size() - unspecified.size(), unspecified.size(), unspecified) == 0) {
    prefix.resize(prefix.size() - unspecified.size());
  } else {
    prefix.clear();
  }
  std::string name = value->name();
  if (!prefix.empty() && name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  if (number == 0) return "-";
  return name;
}

std::string FormatTime(const google::protobuf::Timestamp& ts, bool present) {
  if (!present) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(ts.seconds()),
                          absl::UTCTimeZone());
}

std::string Fixed(double value, int decimals) { return absl::StrFormat("%.*f", decimals, value); }

absl::StatusOr<google::protobuf::Timestamp> ParseTimeFlag(const std::string& flag,
                                                          const std::string& text) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error) &&
      !absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &t, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " '", text, "' is not a time; use RFC 3339 (2026-11-21T08:00:00Z) or a date"));
  }
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

std::string ToJson(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string PhaseText(const v1::PhaseValues& v, int decimals) {
  auto one = [&](bool has, double x) { return has ? Fixed(x, decimals) : std::string("-"); };
  return absl::StrCat(one(v.has_l1(), v.l1()), "/", one(v.has_l2(), v.l2()), "/",
                      one(v.has_l3(), v.l3()));
}

std::unique_ptr<grpc::ClientContext> Ctl::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout_));
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
  return context;
}

int Ctl::RpcFailure(const grpc::Status& status, const std::string& area) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      err_ << "evgatectl: cannot reach evgate at " << server_ << ": " << status.error_message()
           << "\n";
      return kExitUnreachable;
    case grpc::StatusCode::UNIMPLEMENTED: {
      const ServiceInfo& info = Services().at(area);
      err_ << "evgatectl: the server at " << server_ << " does not host " << info.full_name << "; '"
           << area << "' commands need " << info.hosted_by << "\n";
      return kExitNotHosted;
    }
    case grpc::StatusCode::UNAUTHENTICATED:
      err_ << "evgatectl: the server at " << server_
           << " wants credentials: " << status.error_message()
           << "; pass --cert FILE --key FILE (a client certificate of the site CA) or --token "
              "FILE, with --ca FILE (or EVGATECTL_CERT, EVGATECTL_KEY, EVGATECTL_TOKEN, "
              "EVGATECTL_CA)\n";
      return kExitFailure;
    case grpc::StatusCode::PERMISSION_DENIED:
      // A domain refusal (a blocked card) keeps the default form below; only
      // the authorizer's own refusals (runtime/auth.cc) get the hint.
      if (!absl::StartsWith(status.error_message(), "principal '") &&
          !absl::StrContains(status.error_message(), "services.auth")) {
        err_ << "evgatectl: permission_denied: " << status.error_message() << "\n";
        return kExitFailure;
      }
      err_ << "evgatectl: refused: " << status.error_message()
           << "; use credentials of a principal with that role (services.auth in site.yaml)\n";
      return kExitFailure;
    default:
      err_ << "evgatectl: "
           << absl::AsciiStrToLower(
                  absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())))
           << ": " << status.error_message() << "\n";
      return kExitFailure;
  }
}

int Ctl::Run() {
  if (args_.Has("help") || args_.words.empty()) {
    (args_.words.empty() && !args_.Has("help") ? err_ : out_) << kUsage;
    return args_.Has("help") ? kExitOk : kExitUsage;
  }
  const std::string output = args_.Get("output", "table");
  if (output != "table" && output != "json") {
    return Usage(absl::StrCat("-o must be table or json, not '", output, "'"));
  }
  if (args_.Has("timeout")) {
    double seconds = 0;
    if (!absl::SimpleAtod(args_.Get("timeout"), &seconds) || seconds <= 0) {
      return Usage("--timeout must be a positive number of seconds");
    }
    timeout_ = absl::Seconds(seconds);
  }
  server_ = args_.Get("server", kDefaultServer);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  auto read = [](const std::string& path, std::string* text) {
    std::ifstream in(path);
    if (!in) return false;
    std::stringstream content;
    content << in.rdbuf();
    *text = content.str();
    return true;
  };
  const std::string ca = args_.Has("ca") ? args_.Get("ca") : args_.Get("tls-ca");
  if (args_.Has("cert") != args_.Has("key")) return Usage("--cert and --key go together");
  if (args_.Has("cert") && ca.empty()) return Usage("--cert needs --ca, the site CA");
  if (!ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!read(ca, &ssl.pem_root_certs)) return Usage(absl::StrCat("cannot read --ca file ", ca));
    if (args_.Has("cert")) {
      if (!read(args_.Get("cert"), &ssl.pem_cert_chain)) {
        return Usage(absl::StrCat("cannot read --cert file ", args_.Get("cert")));
      }
      if (!read(args_.Get("key"), &ssl.pem_private_key)) {
        return Usage(absl::StrCat("cannot read --key file ", args_.Get("key")));
      }
    }
    credentials = grpc::SslCredentials(ssl);
  }
  if (args_.Has("token")) {
    if (ca.empty()) return Usage("--token needs --ca: a token is only sent over TLS");
    if (!read(args_.Get("token"), &token_)) {
      return Usage(absl::StrCat("cannot read --token file ", args_.Get("token")));
    }
    token_ = std::string(absl::StripAsciiWhitespace(token_));
  }
  channel_ = grpc::CreateChannel(server_, credentials);

  const std::string& area = args_.words[0];
  if (area == "health") return Health();
  if (area == "devices") return Devices();
  if (area == "sessions") return Sessions();
  if (area == "authorize") return Authorize();
  if (area == "cards") return Cards();
  if (area == "allocation") return Allocation();
  if (area == "sim") return Sim();
  if (area == "ocpp") return Ocpp();
  if (area == "grid") return Grid();
  return Usage(absl::StrCat("unknown command '", area, "'"));
}

int Ctl::Health() {
  if (auto s = CheckFlags(
          args_, {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token"}, "health");
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  std::vector<std::pair<std::string, std::string>> rows;
  bool all_serving = true;
  std::vector<std::string> names = {""};
  for (const auto& [area, info] : Services()) names.push_back(info.full_name);
  for (const std::string& name : names) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(name);
    grpc::health::v1::HealthCheckResponse response;
    auto context = Context();
    grpc::Status status = stub->Check(context.get(), request, &response);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // not hosted here
    if (!status.ok()) {
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        err_ << "evgatectl: the server at " << server_ << " has no health service\n";
        return kExitNotHosted;
      }
      return RpcFailure(status, "devices");
    }
    const std::string label = EnumLabel(
        grpc::health::v1::HealthCheckResponse::ServingStatus_descriptor(), response.status());
    if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) all_serving = false;
    rows.emplace_back(
        name.empty() ? "(server)" : name,
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? "SERVING" : label);
  }
  if (Json()) {
    out_ << "{\n  \"server\": \"" << server_ << "\",\n  \"services\": {";
    for (size_t i = 0; i < rows.size(); ++i) {
      out_ << (i ? "," : "") << "\n    \"" << rows[i].first << "\": \"" << rows[i].second << "\"";
    }
    out_ << "\n  }\n}\n";
  } else {
    Table table({"SERVICE", "STATUS"});
    for (const auto& [name, status] : rows) table.AddRow({name, status});
    table.PrintText(out_);
  }
  return all_serving ? kExitOk : kExitFailure;
}

int Ctl::Devices() {
  const std::string verb = args_.words.size() > 1 ? args_.words[1] : "";
  auto stub = v1::DeviceDriver::NewStub(channel_);
  if (verb == "list") {
    if (auto s = CheckFlags(
            args_, {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token", "kind"},
            "devices list");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    v1::ListDevicesRequest request;
    if (args_.Has("kind")) {
      const std::string wanted = "DEVICE_KIND_" + absl::AsciiStrToUpper(args_.Get("kind"));
      v1::DeviceKind kind;
      if (!v1::DeviceKind_Parse(wanted, &kind)) {
        return Usage(absl::StrCat("unknown --kind '", args_.Get("kind"), "'"));
      }
      request.set_kind(kind);
    }
    std::vector<v1::DeviceState> devices;
    do {
      v1::ListDevicesResponse response;
      auto context = Context();
      grpc::Status status = stub->ListDevices(context.get(), request, &response);
      if (!status.ok()) return RpcFailure(status, "devices");
      devices.insert(devices.end(), response.devices().begin(), response.devices().end());
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    if (Json()) {
      v1::ListDevicesResponse all;
      for (auto& d : devices) *all.add_devices() = d;
      out_ << ToJson(all) << "\n";
      return kExitOk;
    }
    Table table({"DEVICE", "KIND", "PROFILE", "BUS", "ADDR", "LINK", "LAST SEEN", "EVSES"});
    for (const v1::DeviceState& d : devices) {
      std::vector<std::string> evses;
      for (const v1::EvseState& e : d.evses()) {
        std::string text = absl::StrCat(
            e.evse_id(), ":", EnumLabel(v1::ConnectorStatus_descriptor(), e.connector_status()));
        if (e.measurements().has_power_w()) {
          absl::StrAppend(&text, " ", Fixed(e.measurements().power_w() / 1000.0, 1), "kW");
        }
        evses.push_back(text);
      }
      if (d.has_meter()) evses.push_back("meter");
      table.AddRow({d.device_id(), EnumLabel(v1::DeviceKind_descriptor(), d.kind()), d.profile(),
                    d.bus_id(), d.address(), d.link().stale() ? "STALE" : "ok",
                    FormatTime(d.link().last_seen(), d.link().has_last_seen()),
                    evses.empty() ? "-" : absl::StrJoin(evses, ", ")});
    }
    table.PrintText(out_);
    return kExitOk;
  }
  if (verb == "get") {
    if (auto s = CheckFlags(args_,
                            {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token"},
                            "devices get");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    if (args_.words.size() != 3) return Usage("usage: evgatectl devices get DEVICE_ID");
    v1::GetDeviceRequest request;
    request.set_device_id(args_.words[2]);
    v1::GetDeviceResponse response;
    auto context = Context();
    grpc::Status status = stub->GetDevice(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "devices");
    // A device has too many facets for one table; both forms print it whole.
    out_ << ToJson(response.device()) << "\n";
    return kExitOk;
  }
  if (verb == "buses") {
    if (auto s = CheckFlags(args_,
                            {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token"},
                            "devices buses");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    if (args_.words.size() != 2) return Usage("usage: evgatectl devices buses");
    v1::ListBusesResponse response;
    auto context = Context();
    grpc::Status status = stub->ListBuses(context.get(), v1::ListBusesRequest(), &response);
    if (!status.ok()) return RpcFailure(status, "devices");
    if (Json()) {
      out_ << ToJson(response) << "\n";
      return kExitOk;
    }
    Table table({"BUS", "KIND", "REQUESTS", "ERRORS", "TIMEOUTS", "AVG", "P99 <=", "FRAMES TX/RX",
                 "ERROR FRAMES", "BUS-OFF", "DOWN", "EXPIRED"});
    for (const v1::BusHealth& b : response.buses()) {
      const bool modbus = b.kind() == "modbus";
      const bool can = b.kind() == "can";
      const v1::DurationHistogram& d = b.request_duration();
      std::string avg = "-", p99 = "-";
      if (modbus && d.count() > 0) {
        avg = absl::StrCat(Fixed(d.sum_s() / static_cast<double>(d.count()) * 1000, 1), " ms");
        // The smallest bucket bound that holds 99 % of the answers.
        p99 = absl::StrCat(
            "> ",
            Fixed(d.upper_bounds_s_size() > 0 ? d.upper_bounds_s(d.upper_bounds_s_size() - 1) * 1000
                                              : 0,
                  1),
            " ms");
        for (int i = 0; i < d.upper_bounds_s_size() && i < d.cumulative_counts_size(); ++i) {
          if (static_cast<double>(d.cumulative_counts(i)) >=
              0.99 * static_cast<double>(d.count())) {
            p99 = absl::StrCat(Fixed(d.upper_bounds_s(i) * 1000, 1), " ms");
            break;
          }
        }
      }
      const uint64_t error_frames = b.error_warning_total() + b.error_passive_total() +
                                    b.bus_off_total() + b.other_error_frames_total();
      auto count = [](bool shown, uint64_t n) {
        return shown ? absl::StrCat(n) : std::string("-");
      };
      table.AddRow({b.bus_id(), b.kind(), count(modbus, b.requests_total()),
                    count(modbus, b.errors_total()), count(modbus, b.timeouts_total()), avg, p99,
                    can ? absl::StrCat(b.frames_sent_total(), "/", b.frames_received_total()) : "-",
                    count(can, error_frames), count(can, b.bus_off_total()),
                    count(can, b.interface_down_total()),
                    absl::StrCat(b.setpoints_expired_total())});
    }
    table.PrintText(out_);
    return kExitOk;
  }
  return Usage("usage: evgatectl devices list|get|buses");
}

absl::Status Ctl::FillSessionFilter(v1::ListSessionsRequest* request) {
  if (args_.Has("from")) {
    auto t = ParseTimeFlag("from", args_.Get("from"));
    if (!t.ok()) return t.status();
    *request->mutable_start_time_from() = *t;
  }
  if (args_.Has("to")) {
    auto t = ParseTimeFlag("to", args_.Get("to"));
    if (!t.ok()) return t.status();
    *request->mutable_start_time_to() = *t;
  }
  request->set_evse_id(args_.Get("evse"));
  request->set_id_tag(args_.Get("id-tag"));
  if (args_.Has("state")) {
    const std::string state = args_.Get("state");
    if (state == "open") {
      request->set_state(v1::SESSION_STATE_FILTER_OPEN);
    } else if (state == "closed") {
      request->set_state(v1::SESSION_STATE_FILTER_CLOSED);
    } else {
      return absl::InvalidArgumentError("--state must be open or closed");
    }
  }
  return absl::OkStatus();
}

int Ctl::PrintSessions(const std::vector<v1::Session>& sessions) {
  if (Json()) {
    v1::ListSessionsResponse all;
    for (const auto& s : sessions) *all.add_sessions() = s;
    out_ << ToJson(all) << "\n";
    return kExitOk;
  }
  Table table({"SESSION", "EVSE", "ID TAG", "STATE", "START", "END", "ENERGY kWh", "POWER kW",
               "STOP REASON"});
  for (const v1::Session& s : sessions) {
    // Discharged energy (V2X) follows the charged energy after a slash.
    std::string energy = Fixed(s.energy_charged_wh() / 1000.0, 3);
    if (s.energy_discharged_wh() > 0) {
      absl::StrAppend(&energy, "/-", Fixed(s.energy_discharged_wh() / 1000.0, 3));
    }
    std::string stop = EnumLabel(v1::StopReason_descriptor(), s.stop_reason());
    if (!s.vendor_stop_code().empty()) absl::StrAppend(&stop, " (", s.vendor_stop_code(), ")");
    table.AddRow({s.session_id(), s.evse_id(), s.id_tag().empty() ? "-" : s.id_tag(),
                  EnumLabel(v1::SessionState_descriptor(), s.state()),
                  FormatTime(s.start_time(), s.has_start_time()),
                  FormatTime(s.end_time(), s.has_end_time()), energy,
                  Fixed(s.power_w() / 1000.0, 2), stop});
  }
  table.PrintText(out_);
  return kExitOk;
}

namespace {

// The CSV that operators bill from: one row per session, stable column names,
// energies in Wh, times in UTC RFC 3339.
void PrintSessionsCsv(const std::vector<v1::Session>& sessions, std::ostream& out) {
  Table table({"session_id",
               "evse_id",
               "station_id",
               "connector_id",
               "id_tag",
               "state",
               "mode",
               "start_time",
               "end_time",
               "start_mode",
               "stop_reason",
               "vendor_stop_code",
               "vendor_stop_description",
               "meter_start_wh",
               "meter_stop_wh",
               "energy_charged_wh",
               "energy_discharged_wh",
               "peak_power_w",
               "card_name",
               "meter_export_start_wh",
               "meter_export_stop_wh",
               "soc_start_pct",
               "soc_end_pct",
               "ocpp_transaction_id"});
  auto time = [](const google::protobuf::Timestamp& ts, bool present) {
    return present ? google::protobuf::util::TimeUtil::ToString(ts) : std::string();
  };
  // An unset enum is an empty cell in CSV, not the table's "-".
  auto label = [](const google::protobuf::EnumDescriptor* type, int number) {
    return number == 0 ? std::string() : EnumLabel(type, number);
  };
  for (const v1::Session& s : sessions) {
    table.AddRow({s.session_id(),
                  s.evse_id(),
                  s.station_id(),
                  absl::StrCat(s.connector_id()),
                  s.id_tag(),
                  label(v1::SessionState_descriptor(), s.state()),
                  label(v1::ChargeMode_descriptor(), s.mode()),
                  time(s.start_time(), s.has_start_time()),
                  time(s.end_time(), s.has_end_time()),
                  label(v1::StartMode_descriptor(), s.start_mode()),
                  label(v1::StopReason_descriptor(), s.stop_reason()),
                  s.vendor_stop_code(),
                  s.vendor_stop_description(),
                  Fixed(s.meter_start_wh(), 1),
                  s.has_meter_stop_wh() ? Fixed(s.meter_stop_wh(), 1) : "",
                  Fixed(s.energy_charged_wh(), 1),
                  Fixed(s.energy_discharged_wh(), 1),
                  Fixed(s.peak_power_w(), 0),
                  s.card_name(),
                  Fixed(s.meter_export_start_wh(), 1),
                  s.has_meter_export_stop_wh() ? Fixed(s.meter_export_stop_wh(), 1) : "",
                  s.has_soc_start_pct() ? Fixed(s.soc_start_pct(), 1) : "",
                  s.has_soc_end_pct() ? Fixed(s.soc_end_pct(), 1) : "",
                  s.ocpp_transaction_id()});
  }
  table.PrintCsv(out);
}

}  // namespace

int Ctl::Sessions() {
  const std::string verb = args_.words.size() > 1 ? args_.words[1] : "";
  auto stub = v1::SessionService::NewStub(channel_);
  const std::set<std::string> common = {"server", "output", "timeout", "tls-ca",
                                        "ca",     "cert",   "key",     "token"};
  auto allowed = [&](std::set<std::string> extra) {
    extra.insert(common.begin(), common.end());
    return extra;
  };
  if (verb == "list" || verb == "export") {
    auto flags = verb == "list" ? allowed({"from", "to", "evse", "id-tag", "state", "limit"})
                                : allowed({"from", "to", "evse", "id-tag", "state", "format"});
    if (auto s = CheckFlags(args_, flags, "sessions " + verb); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    std::string format;
    if (verb == "export") {
      format = args_.Get("format");
      if (format != "csv" && format != "json") return Usage("--format must be csv or json");
    }
    v1::ListSessionsRequest request;
    if (auto s = FillSessionFilter(&request); !s.ok()) return Usage(std::string(s.message()));
    int64_t limit = verb == "list" ? 50 : -1;
    if (args_.Has("limit") && (!absl::SimpleAtoi(args_.Get("limit"), &limit) || limit <= 0)) {
      return Usage("--limit must be a positive number");
    }
    request.set_page_size(500);
    std::vector<v1::Session> sessions;
    do {
      v1::ListSessionsResponse response;
      auto context = Context();
      grpc::Status status = stub->ListSessions(context.get(), request, &response);
      if (!status.ok()) return RpcFailure(status, "sessions");
      for (const auto& s : response.sessions()) {
        if (limit >= 0 && static_cast<int64_t>(sessions.size()) >= limit) break;
        sessions.push_back(s);
      }
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty() &&
             (limit < 0 || static_cast<int64_t>(sessions.size()) < limit));
    if (format == "csv") {
      PrintSessionsCsv(sessions, out_);
      return kExitOk;
    }
    if (format == "json") args_.flags["output"] = "json";
    return PrintSessions(sessions);
  }
  if (verb == "get") {
    if (auto s = CheckFlags(args_, common, "sessions get"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    if (args_.words.size() != 3) return Usage("usage: evgatectl sessions get SESSION_ID");
    v1::GetSessionRequest request;
    request.set_session_id(args_.words[2]);
    v1::GetSessionResponse response;
    auto context = Context();
    grpc::Status status = stub->GetSession(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sessions");
    if (Json()) {
      out_ << ToJson(response.session()) << "\n";
      return kExitOk;
    }
    return PrintSessions({response.session()});
  }
  if (verb == "start") {
    if (auto s =
            CheckFlags(args_, allowed({"evse", "id-tag", "mode", "energy-limit-wh", "time-limit"}),
                       "sessions start");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    if (!args_.Has("evse") || !args_.Has("id-tag")) {
      return Usage(
          "usage: evgatectl sessions start --evse ID --id-tag TAG [--mode charge|discharge]");
    }
    v1::StartSessionRequest request;
    request.set_evse_id(args_.Get("evse"));
    request.set_id_tag(args_.Get("id-tag"));
    if (args_.Has("mode")) {
      const std::string mode = args_.Get("mode");
      if (mode == "charge") {
        request.set_mode(v1::CHARGE_MODE_CHARGE);
      } else if (mode == "discharge") {
        request.set_mode(v1::CHARGE_MODE_DISCHARGE);
      } else {
        return Usage("--mode must be charge or discharge");
      }
    }
    if (args_.Has("energy-limit-wh")) {
      double wh = 0;
      if (!absl::SimpleAtod(args_.Get("energy-limit-wh"), &wh) || !(wh > 0)) {
        return Usage("--energy-limit-wh must be a positive number of Wh");
      }
      request.set_energy_limit_wh(wh);
    }
    if (args_.Has("time-limit")) {
      absl::Duration limit;
      if (!absl::ParseDuration(args_.Get("time-limit"), &limit) || limit <= absl::ZeroDuration()) {
        return Usage("--time-limit must be a positive duration such as 90m or 2h");
      }
      request.mutable_time_limit()->set_seconds(absl::ToInt64Seconds(limit));
    }
    v1::StartSessionResponse response;
    auto context = Context();
    grpc::Status status = stub->StartSession(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sessions");
    if (Json()) {
      out_ << ToJson(response.session()) << "\n";
      return kExitOk;
    }
    return PrintSessions({response.session()});
  }
  if (verb == "stop") {
    if (auto s = CheckFlags(args_, allowed({"evse"}), "sessions stop"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    v1::StopSessionRequest request;
    if (args_.words.size() == 3 && !args_.Has("evse")) {
      request.set_session_id(args_.words[2]);
    } else if (args_.words.size() == 2 && args_.Has("evse")) {
      request.set_evse_id(args_.Get("evse"));
    } else {
      return Usage("usage: evgatectl sessions stop (SESSION_ID | --evse ID)");
    }
    request.set_reason(v1::STOP_REASON_REMOTE);
    v1::StopSessionResponse response;
    auto context = Context();
    grpc::Status status = stub->StopSession(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sessions");
    if (Json()) {
      out_ << ToJson(response.session()) << "\n";
      return kExitOk;
    }
    return PrintSessions({response.session()});
  }
  return Usage("usage: evgatectl sessions list|get|start|stop|export");
}

int Ctl::Authorize() {
  if (auto s = CheckFlags(
          args_, {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token", "evse"},
          "authorize");
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (args_.words.size() != 2) return Usage("usage: evgatectl authorize ID_TAG [--evse ID]");
  v1::AuthorizeRequest request;
  request.set_id_tag(args_.words[1]);
  request.set_evse_id(args_.Get("evse"));
  v1::AuthorizeResponse response;
  auto context = Context();
  grpc::Status status =
      v1::SessionService::NewStub(channel_)->Authorize(context.get(), request, &response);
  if (!status.ok()) return RpcFailure(status, "sessions");
  if (Json()) {
    out_ << ToJson(response) << "\n";
  } else {
    Table table({"STATUS", "SOURCE", "CARD", "MASTER", "EXPIRES"});
    table.AddRow({EnumLabel(v1::AuthorizationStatus_descriptor(), response.status()),
                  EnumLabel(v1::AuthorizationSource_descriptor(), response.source()),
                  response.card_name().empty() ? "-" : response.card_name(),
                  response.master() ? "yes" : "no",
                  FormatTime(response.expires_at(), response.has_expires_at())});
    table.PrintText(out_);
  }
  return response.status() == v1::AUTHORIZATION_STATUS_ACCEPTED ? kExitOk : kExitFailure;
}

int Ctl::Cards() {
  const std::string verb = args_.words.size() > 1 ? args_.words[1] : "";
  auto stub = v1::SessionService::NewStub(channel_);
  const std::set<std::string> common = {"server", "output", "timeout", "tls-ca",
                                        "ca",     "cert",   "key",     "token"};
  if (verb == "list") {
    if (auto s = CheckFlags(args_, common, "cards list"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    v1::ListCardsRequest request;
    request.set_page_size(1000);
    v1::ListCardsResponse all;
    do {
      v1::ListCardsResponse response;
      auto context = Context();
      grpc::Status status = stub->ListCards(context.get(), request, &response);
      if (!status.ok()) return RpcFailure(status, "sessions");
      for (const v1::Card& card : response.cards()) *all.add_cards() = card;
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    if (Json()) {
      out_ << ToJson(all) << "\n";
      return kExitOk;
    }
    Table table({"UID", "NAME", "WHERE", "VALID FROM", "VALID UNTIL", "FLAGS", "SOURCE"});
    for (const v1::Card& c : all.cards()) {
      std::vector<std::string> where(c.allowed_evse_ids().begin(), c.allowed_evse_ids().end());
      for (const std::string& g : c.allowed_groups()) where.push_back("group " + g);
      std::vector<std::string> flags;
      if (c.blocked()) flags.push_back("blocked");
      if (c.master()) flags.push_back("master");
      table.AddRow({c.uid(), c.name().empty() ? "-" : c.name(),
                    where.empty() ? "any" : absl::StrJoin(where, ", "),
                    FormatTime(c.valid_from(), c.has_valid_from()),
                    FormatTime(c.valid_until(), c.has_valid_until()),
                    flags.empty() ? "-" : absl::StrJoin(flags, ","),
                    c.from_site_config() ? "site.yaml" : "api"});
    }
    table.PrintText(out_);
    return kExitOk;
  }
  if (verb == "add") {
    std::set<std::string> flags = common;
    flags.insert(
        {"name", "evse", "group", "valid-from", "valid-until", "parent", "blocked", "master"});
    if (auto s = CheckFlags(args_, flags, "cards add"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    if (args_.words.size() != 3) return Usage("usage: evgatectl cards add UID [options]");
    v1::UpsertCardsRequest request;
    v1::Card* card = request.add_cards();
    card->set_uid(args_.words[2]);
    card->set_name(args_.Get("name"));
    for (absl::string_view id : absl::StrSplit(args_.Get("evse"), ',', absl::SkipEmpty())) {
      card->add_allowed_evse_ids(std::string(id));
    }
    for (absl::string_view id : absl::StrSplit(args_.Get("group"), ',', absl::SkipEmpty())) {
      card->add_allowed_groups(std::string(id));
    }
    for (const char* flag : {"valid-from", "valid-until"}) {
      if (!args_.Has(flag)) continue;
      auto t = ParseTimeFlag(flag, args_.Get(flag));
      if (!t.ok()) return Usage(std::string(t.status().message()));
      *(std::string(flag) == "valid-from" ? card->mutable_valid_from()
                                          : card->mutable_valid_until()) = *t;
    }
    card->set_parent_id_tag(args_.Get("parent"));
    card->set_blocked(args_.Has("blocked"));
    card->set_master(args_.Has("master"));
    v1::UpsertCardsResponse response;
    auto context = Context();
    grpc::Status status = stub->UpsertCards(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sessions");
    if (Json()) {
      out_ << ToJson(response) << "\n";
    } else {
      out_ << "card " << response.cards(0).uid() << " stored\n";
    }
    return kExitOk;
  }
  if (verb == "delete") {
    if (auto s = CheckFlags(args_, common, "cards delete"); !s.ok()) {
      return Usage(std::string(s.message()));
    }
    if (args_.words.size() != 3) return Usage("usage: evgatectl cards delete UID");
    v1::DeleteCardRequest request;
    request.set_uid(args_.words[2]);
    v1::DeleteCardResponse response;
    auto context = Context();
    grpc::Status status = stub->DeleteCard(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "sessions");
    if (!Json()) out_ << "card " << args_.words[2] << " deleted\n";
    return kExitOk;
  }
  return Usage("usage: evgatectl cards list|add|delete");
}

namespace {

// `failsafe_said`: the caller already printed why the site is in failsafe.
void PrintAllocation(const v1::Allocation& allocation, std::ostream& out,
                     bool failsafe_said = false) {
  if (allocation.failsafe() && !failsafe_said) {
    out << "FAILSAFE: the grid meter is stale; EVSEs at failsafe\n";
  }
  Table evses({"EVSE", "SETPOINT", "PHASES A (L1/L2/L3)", "PAUSED", "LIMITED BY"});
  for (const v1::EvseAllocation& e : allocation.evses()) {
    std::string setpoint = e.has_current_a() ? Fixed(e.current_a(), 1) + " A"
                           : e.has_power_w() ? Fixed(e.power_w() / 1000.0, 2) + " kW"
                                             : "-";
    std::string limited = "-";
    if (e.has_limited_by() && e.limited_by().kind() != 0) {
      limited = EnumLabel(v1::ConstraintKind_descriptor(), e.limited_by().kind());
      if (!e.limited_by().circuit_id().empty()) {
        absl::StrAppend(&limited, " ", e.limited_by().circuit_id());
      }
      if (e.limited_by().phase() != 0) {
        absl::StrAppend(&limited, " ", EnumLabel(v1::Phase_descriptor(), e.limited_by().phase()));
      }
      if (!e.limited_by().station_id().empty()) {
        absl::StrAppend(&limited, " ", e.limited_by().station_id());
      }
    }
    evses.AddRow(
        {e.evse_id(), setpoint, e.has_phase_current_a() ? PhaseText(e.phase_current_a(), 1) : "-",
         e.paused() ? EnumLabel(v1::PauseReason_descriptor(), e.pause_reason()) : "no", limited});
  }
  evses.PrintText(out);
  for (const v1::EvseAllocation& e : allocation.evses()) {
    if (!e.not_controlled_reason().empty()) {
      out << "NOT CONTROLLED " << e.evse_id() << ": " << e.not_controlled_reason()
          << " (sent its failsafe, counted at its worst case)\n";
    }
  }
  out << "\n";
  Table circuits({"CIRCUIT", "LOAD A (L1/L2/L3)", "HEADROOM A (L1/L2/L3)"});
  for (const v1::CircuitLoad& c : allocation.circuits()) {
    circuits.AddRow({c.circuit_id(), PhaseText(c.load_a(), 1), PhaseText(c.headroom_a(), 1)});
  }
  circuits.PrintText(out);
}

}  // namespace

int Ctl::Allocation() {
  const std::string verb = args_.words.size() > 1 ? args_.words[1] : "";
  auto stub = v1::LoadBalancer::NewStub(channel_);
  if (verb == "show") {
    if (auto s = CheckFlags(args_,
                            {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token"},
                            "allocation show");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    v1::GetSiteStatusResponse response;
    auto context = Context();
    grpc::Status status = stub->GetSiteStatus(context.get(), {}, &response);
    if (!status.ok()) return RpcFailure(status, "allocation");
    if (Json()) {
      out_ << ToJson(response) << "\n";
      return kExitOk;
    }
    if (response.failsafe()) {
      out_ << "FAILSAFE since "
           << FormatTime(response.failsafe_since(), response.has_failsafe_since()) << ": "
           << response.failsafe_detail() << "\n";
    }
    for (const v1::CircuitStatus& circuit : response.circuits()) {
      if (circuit.failsafe()) {
        out_ << "FAILSAFE circuit " << circuit.circuit_id() << " since "
             << FormatTime(circuit.failsafe_since(), circuit.has_failsafe_since()) << ": "
             << circuit.failsafe_detail() << "\n";
      }
    }
    for (const v1::DynamicLimit& limit : response.dynamic_limits()) {
      out_ << "limit " << limit.source() << " on " << limit.circuit_id() << ":";
      if (limit.has_current_limit_a()) out_ << " " << PhaseText(limit.current_limit_a(), 1) << " A";
      if (limit.has_power_limit_w()) out_ << " " << Fixed(limit.power_limit_w(), 0) << " W";
      if (limit.has_export_limit_w()) {
        out_ << " export " << Fixed(limit.export_limit_w(), 0) << " W";
      }
      out_ << (limit.has_expires_at() ? " until " + FormatTime(limit.expires_at(), true) : "")
           << "\n";
    }
    PrintAllocation(response.allocation(), out_, response.failsafe());
    return kExitOk;
  }
  if (verb == "watch") {
    if (auto s = CheckFlags(args_, {"server", "output", "tls-ca", "ca", "cert", "key", "token"},
                            "allocation watch");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    grpc::ClientContext context;  // no deadline: until the user stops it
    if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
    auto reader = stub->WatchAllocations(&context, v1::WatchAllocationsRequest());
    v1::WatchAllocationsResponse message;
    while (reader->Read(&message)) {
      if (Json()) {
        out_ << ToJson(message.allocation()) << "\n";
      } else {
        out_ << "#" << message.allocation().sequence() << " "
             << FormatTime(message.allocation().computed_at(), true) << " "
             << EnumLabel(v1::AllocationTrigger_descriptor(), message.allocation().trigger())
             << "\n";
        PrintAllocation(message.allocation(), out_);
        out_ << "\n";
      }
      out_.flush();
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) return RpcFailure(status, "allocation");
    return kExitOk;
  }
  if (verb == "limit") return AllocationLimit(stub.get());
  if (verb == "priority") {
    if (auto s = CheckFlags(
            args_, {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token", "ttl"},
            "allocation priority");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    int priority = 0;
    if (args_.words.size() != 4 || !absl::SimpleAtoi(args_.words[3], &priority)) {
      return Usage("usage: evgatectl allocation priority EVSE N [--ttl DURATION]");
    }
    v1::SetEvsePriorityRequest request;
    request.set_evse_id(args_.words[2]);
    request.set_priority(priority);
    if (args_.Has("ttl")) {
      absl::Duration ttl;
      if (!absl::ParseDuration(args_.Get("ttl"), &ttl) || ttl <= absl::ZeroDuration()) {
        return Usage("--ttl must be a positive duration such as 90m or 2h");
      }
      request.mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    }
    v1::SetEvsePriorityResponse response;
    auto context = Context();
    grpc::Status status = stub->SetEvsePriority(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "allocation");
    if (Json()) {
      out_ << ToJson(response) << "\n";
    } else {
      out_ << response.evse_id() << ": priority " << response.priority()
           << (response.has_expires_at() ? " until " + FormatTime(response.expires_at(), true) : "")
           << "\n";
    }
    return kExitOk;
  }
  if (verb == "simulate") {
    if (auto s = CheckFlags(
            args_,
            {"server", "output", "timeout", "tls-ca", "ca", "cert", "key", "token", "scenario"},
            "allocation simulate");
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    if (!args_.Has("scenario")) {
      return Usage("usage: evgatectl allocation simulate --scenario FILE.json");
    }
    std::ifstream in(args_.Get("scenario"));
    if (!in) return Usage(absl::StrCat("cannot read scenario file ", args_.Get("scenario")));
    std::stringstream text;
    text << in.rdbuf();
    v1::SimulateRequest request;
    request.set_scenario_json(text.str());
    v1::SimulateResponse response;
    auto context = Context();
    grpc::Status status = stub->Simulate(context.get(), request, &response);
    if (!status.ok()) return RpcFailure(status, "allocation");
    // The scenario format's own output is the JSON form (docs/scenario-format.md).
    if (args_.Get("output", "json") == "table") {
      PrintAllocation(response.allocation(), out_);
    } else {
      out_ << response.allocation_json() << "\n";
    }
    return kExitOk;
  }
  return Usage("usage: evgatectl allocation show|watch|simulate|limit|priority");
}

int Ctl::AllocationLimit(v1::LoadBalancer::Stub* stub) {
  const std::string action = args_.words.size() > 2 ? args_.words[2] : "";
  if (action != "set" && action != "clear") {
    return Usage("usage: evgatectl allocation limit set|clear --source S [--circuit C] ...");
  }
  std::set<std::string> flags = {"server", "output", "timeout", "tls-ca", "ca",
                                 "cert",   "key",    "token",   "source", "circuit"};
  if (action == "set") flags.insert({"current-a", "power-w", "export-w", "ttl"});
  if (auto s = CheckFlags(args_, flags, "allocation limit " + action); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (!args_.Has("source") || args_.words.size() != 3) {
    return Usage("allocation limit " + action + " needs --source (who sets the limit)");
  }
  v1::SetDynamicLimitsRequest request;
  v1::DynamicLimitUpdate* update = request.add_updates();
  v1::DynamicLimit* limit = update->mutable_limit();
  limit->set_source(args_.Get("source"));
  limit->set_circuit_id(args_.Get("circuit", "grid"));
  if (action == "clear") {
    update->mutable_ttl();  // zero: clears
  } else {
    if (args_.Has("current-a")) {
      std::vector<std::string> parts = absl::StrSplit(args_.Get("current-a"), ',');
      if (parts.size() == 1) parts = {parts[0], parts[0], parts[0]};
      double a[3] = {0, 0, 0};
      for (size_t i = 0; i < parts.size(); ++i) {
        if (parts.size() != 3 || !absl::SimpleAtod(parts[i], &a[i]) || a[i] < 0) {
          return Usage("--current-a takes A or A1,A2,A3 (amperes >= 0)");
        }
      }
      limit->mutable_current_limit_a()->set_l1(a[0]);
      limit->mutable_current_limit_a()->set_l2(a[1]);
      limit->mutable_current_limit_a()->set_l3(a[2]);
    }
    for (const auto& [flag, setter] :
         std::vector<std::pair<std::string, void (v1::DynamicLimit::*)(double)>>{
             {"power-w", &v1::DynamicLimit::set_power_limit_w},
             {"export-w", &v1::DynamicLimit::set_export_limit_w}}) {
      if (!args_.Has(flag)) continue;
      double w = 0;
      if (!absl::SimpleAtod(args_.Get(flag), &w) || w < 0) {
        return Usage(absl::StrCat("--", flag, " must be watts >= 0"));
      }
      (limit->*setter)(w);
    }
    if (!limit->has_current_limit_a() && !limit->has_power_limit_w() &&
        !limit->has_export_limit_w()) {
      return Usage("allocation limit set needs --current-a, --power-w or --export-w");
    }
    if (args_.Has("ttl")) {
      absl::Duration ttl;
      if (!absl::ParseDuration(args_.Get("ttl"), &ttl) || ttl <= absl::ZeroDuration()) {
        return Usage("--ttl must be a positive duration such as 15m or 2h");
      }
      update->mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
    }
  }
  v1::SetDynamicLimitsResponse response;
  auto context = Context();
  grpc::Status status = stub->SetDynamicLimits(context.get(), request, &response);
  if (!status.ok()) return RpcFailure(status, "allocation");
  if (Json()) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  out_ << response.active_limits_size() << " limit(s) in force\n";
  for (const v1::DynamicLimit& l : response.active_limits()) {
    out_ << "  " << l.source() << " on " << l.circuit_id() << "\n";
  }
  return kExitOk;
}

}  // namespace internal

int RunCli(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  return RunCli(argv, {}, out, err);
}

int RunCli(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
           std::ostream& out, std::ostream& err) {
  auto args = ParseArgs(argv, {"help", "blocked", "master"});
  if (!args.ok()) {
    err << "evgatectl: " << args.status().message() << "\n";
    return kExitUsage;
  }
  // A flag wins over its environment variable.
  for (const auto& [flag, variable] : EnvironmentFlags()) {
    auto value = env.find(variable);
    if (value != env.end() && !value->second.empty() && !args->Has(flag)) {
      args->flags[flag] = value->second;
    }
  }
  return internal::Ctl(*std::move(args), out, err).Run();
}

const std::map<std::string, std::string>& EnvironmentFlags() {
  static const auto* const kFlags = new std::map<std::string, std::string>{
      {"server", "EVGATECTL_SERVER"}, {"ca", "EVGATECTL_CA"},       {"cert", "EVGATECTL_CERT"},
      {"key", "EVGATECTL_KEY"},       {"token", "EVGATECTL_TOKEN"},
  };
  return *kFlags;
}

}  // namespace evgate::ctl
