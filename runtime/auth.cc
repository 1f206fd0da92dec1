#include "runtime/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/log.h"
#include "runtime/secret_file.h"

namespace evgate {
namespace {

constexpr log::Logger kLog("auth");

std::array<uint8_t, 32> Sha256(absl::string_view text) {
  std::array<uint8_t, 32> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

// The token of "Bearer <token>" (scheme case-insensitive); nullopt otherwise.
std::optional<absl::string_view> BearerToken(absl::string_view authorization) {
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  return absl::StripAsciiWhitespace(authorization.substr(kScheme.size()));
}

}  // namespace

std::optional<Role> ParseRole(absl::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "integrator") return Role::kIntegrator;
  if (name == "operator") return Role::kOperator;
  if (name == "controller") return Role::kController;
  return std::nullopt;
}

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kIntegrator:
      return "integrator";
    case Role::kOperator:
      return "operator";
    case Role::kController:
      return "controller";
  }
  return "?";
}

const std::vector<std::string>& RoleNames() {
  static const auto* const kNames =
      new std::vector<std::string>{"viewer", "integrator", "operator", "controller"};
  return *kNames;
}

absl::string_view AccessName(Access access) {
  switch (access) {
    case Access::kOpen:
      return "open";
    case Access::kRead:
      return "viewer";
    case Access::kIntegrate:
      return "integrator";
    case Access::kOperate:
      return "operator";
    case Access::kControl:
      return "controller";
  }
  return "?";
}

bool RoleGrants(Role role, Access access) {
  if (access == Access::kOpen) return true;
  switch (role) {
    case Role::kViewer:
      return access == Access::kRead;
    case Role::kIntegrator:
      return access == Access::kRead || access == Access::kIntegrate;
    case Role::kOperator:
      return access == Access::kRead || access == Access::kIntegrate || access == Access::kOperate;
    case Role::kController:
      return access == Access::kControl;
  }
  return false;
}

const std::map<std::string, Access>& RpcAccessTable() {
  using A = Access;
  static const auto* const kTable = new std::map<std::string, Access>{
      // DeviceDriver: setpoints and their sequence only from the load balancer.
      {"/evgate.v1.DeviceDriver/ListDevices", A::kRead},
      {"/evgate.v1.DeviceDriver/ListBuses", A::kRead},
      {"/evgate.v1.DeviceDriver/GetDevice", A::kRead},
      {"/evgate.v1.DeviceDriver/WatchDevices", A::kRead},
      {"/evgate.v1.DeviceDriver/ApplySetpoints", A::kControl},
      {"/evgate.v1.DeviceDriver/GetControllerSequence", A::kControl},
      {"/evgate.v1.DeviceDriver/Command", A::kOperate},
      // GridController
      {"/evgate.v1.GridController/GetGridState", A::kRead},
      {"/evgate.v1.GridController/WatchGridState", A::kRead},
      {"/evgate.v1.GridController/GetV2xParameters", A::kRead},
      {"/evgate.v1.GridController/SetV2xParameters", A::kOperate},
      {"/evgate.v1.GridController/RequestGridMode", A::kOperate},
      // LoadBalancer: Simulate is a dry run on a scenario, nothing is applied.
      {"/evgate.v1.LoadBalancer/GetSiteStatus", A::kRead},
      {"/evgate.v1.LoadBalancer/WatchAllocations", A::kRead},
      {"/evgate.v1.LoadBalancer/Simulate", A::kRead},
      {"/evgate.v1.LoadBalancer/SetDynamicLimits", A::kIntegrate},
      {"/evgate.v1.LoadBalancer/SetEvsePriority", A::kOperate},
      // OcppBridge
      {"/evgate.v1.OcppBridge/ListChargePoints", A::kRead},
      {"/evgate.v1.OcppBridge/GetUpstreamStatus", A::kRead},
      {"/evgate.v1.OcppBridge/SendChargerCommand", A::kOperate},
      // SessionService: card UIDs are credentials (RFID UIDs can be cloned),
      // so even listing them is the operator's.
      {"/evgate.v1.SessionService/GetSession", A::kRead},
      {"/evgate.v1.SessionService/ListSessions", A::kRead},
      {"/evgate.v1.SessionService/WatchSessions", A::kRead},
      {"/evgate.v1.SessionService/Authorize", A::kIntegrate},
      {"/evgate.v1.SessionService/StartSession", A::kIntegrate},
      {"/evgate.v1.SessionService/StopSession", A::kIntegrate},
      {"/evgate.v1.SessionService/ListCards", A::kOperate},
      {"/evgate.v1.SessionService/UpsertCards", A::kOperate},
      {"/evgate.v1.SessionService/DeleteCard", A::kOperate},
      // Simulator: moves simulated devices, which the controller acts on.
      {"/evgate.v1.Simulator/ListSimulatedDevices", A::kRead},
      {"/evgate.v1.Simulator/PlugIn", A::kOperate},
      {"/evgate.v1.Simulator/Unplug", A::kOperate},
      {"/evgate.v1.Simulator/TapCard", A::kOperate},
      {"/evgate.v1.Simulator/InjectFault", A::kOperate},
      {"/evgate.v1.Simulator/ClearFault", A::kOperate},
      {"/evgate.v1.Simulator/SetDeviceResponding", A::kOperate},
      {"/evgate.v1.Simulator/SetBuildingLoad", A::kOperate},
      {"/evgate.v1.Simulator/SetGrid", A::kOperate},
      {"/evgate.v1.Simulator/PressBackupBatteryButton", A::kOperate},
  };
  return *kTable;
}

std::optional<Access> RequiredAccess(absl::string_view method) {
  if (absl::StartsWith(method, "/grpc.health.v1.Health/") ||
      absl::StartsWith(method, "/grpc.reflection.v1alpha.ServerReflection/") ||
      absl::StartsWith(method, "/grpc.reflection.v1.ServerReflection/")) {
    return Access::kOpen;
  }
  const auto& table = RpcAccessTable();
  auto it = table.find(std::string(method));
  if (it == table.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Create(
    std::vector<PrincipalSpec> principals) {
  std::vector<Principal> loaded;
  std::set<std::string> names, certificates;
  std::set<std::array<uint8_t, 32>> tokens;
  for (PrincipalSpec& spec : principals) {
    if (!names.insert(spec.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("principal '", spec.name, "' is listed twice"));
    }
    if (spec.certificate.empty() == spec.token_file.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("principal '", spec.name,
                       "' needs exactly one of a certificate identity and a token file"));
    }
    Principal p{spec.name, spec.certificate, std::nullopt, std::move(spec.roles)};
    if (!spec.certificate.empty() && !certificates.insert(spec.certificate).second) {
      return absl::InvalidArgumentError(absl::StrCat("principal '", spec.name, "': certificate '",
                                                     spec.certificate,
                                                     "' already belongs to another principal"));
    }
    if (!spec.token_file.empty()) {
      absl::StatusOr<std::string> token = ReadSecretFile(spec.token_file);
      if (!token.ok() || token->size() < 16) {
        return absl::FailedPreconditionError(absl::StrCat(
            "principal '", spec.name, "': ",
            token.ok()
                ? absl::StrCat("the token in ", spec.token_file, " is shorter than 16 characters")
                : std::string(token.status().message()),
            "; generate one with 'openssl rand -hex 32'"));
      }
      absl::string_view trimmed = *token;
      p.token_sha256 = Sha256(trimmed);
      OPENSSL_cleanse(token->data(), token->size());
      if (!tokens.insert(*p.token_sha256).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "principal '", spec.name, "': its token is the same as another principal's"));
      }
    }
    loaded.push_back(std::move(p));
  }
  return std::unique_ptr<Authorizer>(new Authorizer(std::move(loaded)));
}

AuthVerdict Authorizer::Decide(absl::string_view method, const CallerCredentials& caller) const {
  const std::optional<Access> access = RequiredAccess(method);
  if (access == Access::kOpen) return {absl::OkStatus(), ""};

  const Principal* who = nullptr;
  if (caller.authorization.has_value()) {
    std::optional<absl::string_view> token = BearerToken(*caller.authorization);
    if (!token) {
      return {absl::UnauthenticatedError(
                  "the authorization metadata is not 'Bearer <token>'; pass the token file's "
                  "content as a bearer token"),
              ""};
    }
    // Compares against every token so the time taken does not tell which
    // (or whether one) matched.
    const std::array<uint8_t, 32> digest = Sha256(*token);
    for (const Principal& p : principals_) {
      if (p.token_sha256 &&
          CRYPTO_memcmp(p.token_sha256->data(), digest.data(), digest.size()) == 0) {
        who = &p;
      }
    }
    if (who == nullptr) {
      return {absl::UnauthenticatedError("the bearer token matches no principal in services.auth"),
              ""};
    }
  } else if (!caller.certificate_identities.empty()) {
    for (const Principal& p : principals_) {
      if (p.certificate.empty()) continue;
      for (const std::string& identity : caller.certificate_identities) {
        if (identity == p.certificate) who = &p;
      }
      if (who != nullptr) break;
    }
    if (who == nullptr) {
      return {absl::PermissionDeniedError(
                  absl::StrCat("client certificate '", caller.certificate_identities.front(),
                               "' is signed by the site CA but is no principal in services.auth")),
              ""};
    }
  } else {
    return {absl::UnauthenticatedError(
                "no credentials: present a client certificate signed by the site CA or a bearer "
                "token"),
            ""};
  }

  if (!access.has_value()) {
    return {absl::PermissionDeniedError(absl::StrCat(method, " is not an evgate RPC")), who->name};
  }
  for (Role role : who->roles) {
    if (RoleGrants(role, *access)) return {absl::OkStatus(), who->name};
  }
  std::vector<std::string> roles, granting;
  for (Role role : who->roles) roles.emplace_back(RoleName(role));
  for (Role role : {Role::kViewer, Role::kIntegrator, Role::kOperator, Role::kController}) {
    if (RoleGrants(role, *access)) granting.emplace_back(RoleName(role));
  }
  return {absl::PermissionDeniedError(absl::StrCat(
              "principal '", who->name, "' (roles ", absl::StrJoin(roles, ", "), ") may not call ",
              method, "; that needs the role ", absl::StrJoin(granting, " or "))),
          who->name};
}

AuthVerdict Authorizer::Check(absl::string_view method, const CallerCredentials& caller) const {
  AuthVerdict verdict = Decide(method, caller);
  if (verdict.status.ok()) {
    allowed_.fetch_add(1, std::memory_order_relaxed);
  } else {
    (verdict.status.code() == absl::StatusCode::kUnauthenticated ? unauthenticated_
                                                                 : permission_denied_)
        .fetch_add(1, std::memory_order_relaxed);
    kLog.Warning("denied %s: %s", method, verdict.status.ToString());
  }
  return verdict;
}

AuthCounts Authorizer::counts() const {
  return {allowed_.load(std::memory_order_relaxed),
          unauthenticated_.load(std::memory_order_relaxed),
          permission_denied_.load(std::memory_order_relaxed)};
}

}  // namespace evgate
