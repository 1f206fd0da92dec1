#include "tools/probe/probe.h"

#include <chrono>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "runtime/args.h"
#include "runtime/client_credentials.h"

namespace evgate::probe {
namespace {

constexpr char kUsageText[] =
    "usage: evgate-probe [--address HOST:PORT] [--service NAME] [--timeout-ms N] "
    "[--ca FILE [--cert FILE --key FILE]]";

}  // namespace

int RunProbe(const std::vector<std::string>& argv, std::ostream& err) {
  auto args = ParseArgs(argv, {"help"});
  if (!args.ok()) {
    err << args.status().message() << "\n" << kUsageText << "\n";
    return kUsage;
  }
  if (auto s = CheckFlags(*args, {"address", "service", "timeout-ms", "ca", "cert", "key", "help"},
                          "evgate-probe");
      !s.ok() || !args->words.empty() || args->Has("help")) {
    if (!s.ok()) err << s.message() << "\n";
    err << kUsageText << "\n";
    return kUsage;
  }
  int timeout_ms = 1000;
  if (args->Has("timeout-ms") &&
      (!absl::SimpleAtoi(args->Get("timeout-ms"), &timeout_ms) || timeout_ms <= 0)) {
    err << "--timeout-ms must be a positive number of milliseconds, not '"
        << args->Get("timeout-ms") << "'\n";
    return kUsage;
  }
  // A flag, else its environment variable (one env entry per container
  // instead of every probe command in a manifest).
  const auto flag_or_env = [&](const char* flag, const char* env) {
    if (args->Has(flag)) return args->Get(flag);
    const char* value = std::getenv(env);
    return std::string(value == nullptr ? "" : value);
  };
  ClientTls tls{flag_or_env("ca", "EVGATE_PROBE_CA"), flag_or_env("cert", "EVGATE_PROBE_CERT"),
                flag_or_env("key", "EVGATE_PROBE_KEY")};
  if (tls.cert_file.empty() != tls.key_file.empty() ||
      (!tls.cert_file.empty() && tls.ca_file.empty())) {
    err << "--cert and --key go together, and with --ca (or EVGATE_PROBE_CERT, _KEY, _CA)\n";
    return kUsage;
  }
  auto credentials = MakeClientCredentials(tls.ca_file.empty(), tls);
  if (!credentials.ok()) {
    err << credentials.status().message() << "\n";
    return kUsage;
  }
  const std::string address = args->Get("address", "127.0.0.1:50051");
  auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(address, *credentials));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(args->Get("service"));
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  const std::string what =
      request.service().empty() ? address : request.service() + " at " + address;
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    err << what << ": not hosted there\n";
    return kNotServing;
  }
  if (!status.ok()) {
    err << what << ": " << status.error_message() << "\n";
    return kUnreachable;
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    err << what << ": "
        << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
    return kNotServing;
  }
  return kServing;
}

}  // namespace evgate::probe
