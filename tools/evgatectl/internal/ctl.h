// What the files of evgatectl's command areas share: the command runner (Ctl, one per
// invocation: flags, channel, credentials, output) and the formatting helpers. cli.cc has the
// runner, health, devices, sessions, cards and allocation; sim_commands.cc, ocpp_commands.cc
// and grid_commands.cc one area each.
//
// Thread-compatible.
#ifndef EVGATE_TOOLS_EVGATECTL_INTERNAL_CTL_H_
#define EVGATE_TOOLS_EVGATECTL_INTERNAL_CTL_H_

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "evgate/v1/load_balancer.grpc.pb.h"
#include "evgate/v1/session.grpc.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "runtime/args.h"
#include "tools/evgatectl/cli.h"

namespace evgate::ctl::internal {

namespace v1 = ::evgate::v1;

// What each evgate API service is called, and what hosts it.
struct ServiceInfo {
  const char* full_name;
  const char* hosted_by;
};
const std::map<std::string, ServiceInfo>& Services();

// Human label of an enum value: SESSION_STATE_ACTIVE -> ACTIVE ("-" for 0).
std::string EnumLabel(const google::protobuf::EnumDescriptor* type, int number);
// UTC RFC 3339 to the second; "-" when not present.
std::string FormatTime(const google::protobuf::Timestamp& ts, bool present);
std::string Fixed(double value, int decimals);
absl::StatusOr<google::protobuf::Timestamp> ParseTimeFlag(const std::string& flag,
                                                          const std::string& text);
std::string ToJson(const google::protobuf::Message& message);
// "l1/l2/l3", "-" for an absent phase.
std::string PhaseText(const v1::PhaseValues& v, int decimals);

class Ctl {
 public:
  Ctl(Args args, std::ostream& out, std::ostream& err)
      : args_(std::move(args)), out_(out), err_(err) {}

  int Run();

 private:
  // Reports a failed RPC as one line; returns the exit code.
  int RpcFailure(const grpc::Status& status, const std::string& area);
  int Usage(const std::string& message) {
    err_ << "evgatectl: " << message << "\n";
    err_ << "Run 'evgatectl --help' for usage.\n";
    return kExitUsage;
  }
  std::unique_ptr<grpc::ClientContext> Context() const;
  bool Json() const { return args_.Get("output", "table") == "json"; }

  int Health();
  int Devices();
  int Sessions();
  int Authorize();
  int Cards();
  int Allocation();
  int AllocationLimit(v1::LoadBalancer::Stub* stub);
  int Sim();   // sim_commands.cc
  int Ocpp();  // ocpp_commands.cc
  int Grid();  // grid_commands.cc
  int PrintSessions(const std::vector<v1::Session>& sessions);
  absl::Status FillSessionFilter(v1::ListSessionsRequest* request);

  Args args_;
  std::ostream& out_;
  std::ostream& err_;
  std::string server_;
  absl::Duration timeout_ = absl::Seconds(10);
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;  // bearer token read from --token FILE
};

}  // namespace evgate::ctl::internal

#endif  // EVGATE_TOOLS_EVGATECTL_INTERNAL_CTL_H_
