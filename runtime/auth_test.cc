#include "runtime/auth.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "evgate/v1/device.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"

namespace evgate {
namespace {

using ::testing::HasSubstr;

// Every .proto of proto/evgate/v1 (from the filegroup in the runfiles).
std::vector<std::string> ProtoFiles() {
  std::vector<std::string> files;
  DIR* dir = opendir("proto/evgate/v1");
  if (dir == nullptr) return files;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (absl::EndsWith(name, ".proto")) files.push_back("evgate/v1/" + name);
  }
  closedir(dir);
  return files;
}

TEST(RpcAccessTableTest, EveryRpcOfEveryServiceHasAnEntryAndNoEntryIsStale) {
  // Makes sure the generated descriptors are linked in.
  (void)v1::DeviceDriver::service_full_name();
  const std::vector<std::string> files = ProtoFiles();
  ASSERT_GE(files.size(), 6u) << "proto/evgate/v1 not found in the runfiles";
  std::set<std::string> methods;
  for (const std::string& file : files) {
    const google::protobuf::FileDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(file);
    ASSERT_NE(descriptor, nullptr) << file << " is not linked into auth_test";
    for (int s = 0; s < descriptor->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = descriptor->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        const std::string method =
            absl::StrCat("/", service->full_name(), "/", service->method(m)->name());
        methods.insert(method);
        EXPECT_EQ(RpcAccessTable().count(method), 1u)
            << method << " has no entry in RpcAccessTable() (runtime/auth.cc): decide who may "
            << "call it";
      }
    }
  }
  for (const auto& [method, access] : RpcAccessTable()) {
    EXPECT_EQ(methods.count(method), 1u) << method << " is in the table but in no proto";
  }
}

TEST(RoleTest, ControllerReadsNothingAndViewerCommandsNothing) {
  EXPECT_FALSE(RoleGrants(Role::kController, Access::kRead));
  EXPECT_TRUE(RoleGrants(Role::kController, Access::kControl));
  for (Role role : {Role::kViewer, Role::kIntegrator, Role::kOperator}) {
    EXPECT_FALSE(RoleGrants(role, Access::kControl)) << RoleName(role);
    EXPECT_TRUE(RoleGrants(role, Access::kRead)) << RoleName(role);
  }
  EXPECT_FALSE(RoleGrants(Role::kViewer, Access::kIntegrate));
  EXPECT_TRUE(RoleGrants(Role::kIntegrator, Access::kIntegrate));
  EXPECT_FALSE(RoleGrants(Role::kIntegrator, Access::kOperate));
  EXPECT_TRUE(RoleGrants(Role::kOperator, Access::kOperate));
  EXPECT_EQ(ParseRole("operator"), Role::kOperator);
  EXPECT_EQ(ParseRole("admin"), std::nullopt);
}

std::string WriteToken(const std::string& name, const std::string& content) {
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  std::ofstream(path) << content;
  return path;
}

TEST(AuthorizerTest, TokensAreMatchedExactlyAndNeverEchoed) {
  const std::string secret = "0123456789abcdef0123456789abcdef";
  auto authorizer = Authorizer::Create(
      {{"bms", "", WriteToken("bms.token", secret + "\n"), {Role::kIntegrator}}});
  ASSERT_TRUE(authorizer.ok()) << authorizer.status();
  const std::string limits = "/evgate.v1.LoadBalancer/SetDynamicLimits";
  EXPECT_TRUE((*authorizer)->Check(limits, {{}, "Bearer " + secret}).status.ok());
  EXPECT_TRUE((*authorizer)->Check(limits, {{}, "bearer " + secret}).status.ok());
  for (const std::string& wrong : {"Bearer " + secret + "0", "Bearer " + secret.substr(1),
                                   std::string("Bearer "), secret, std::string("Basic abc")}) {
    AuthVerdict verdict = (*authorizer)->Check(limits, {{}, wrong});
    EXPECT_EQ(verdict.status.code(), absl::StatusCode::kUnauthenticated) << wrong;
    EXPECT_THAT(std::string(verdict.status.message()), ::testing::Not(HasSubstr(secret)));
  }
  AuthVerdict denied =
      (*authorizer)->Check("/evgate.v1.SessionService/UpsertCards", {{}, "Bearer " + secret});
  EXPECT_EQ(denied.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.status.message()), HasSubstr("operator"));
  EXPECT_EQ((*authorizer)->counts().allowed, 2u);
  EXPECT_EQ((*authorizer)->counts().unauthenticated, 5u);
  EXPECT_EQ((*authorizer)->counts().permission_denied, 1u);
}

TEST(AuthorizerTest, UnknownMethodsAreRefusedAndHealthIsOpen) {
  auto authorizer = Authorizer::Create({{"ops", "ops.depot", "", {Role::kOperator}}});
  ASSERT_TRUE(authorizer.ok()) << authorizer.status();
  EXPECT_TRUE((*authorizer)->Check("/grpc.health.v1.Health/Check", {}).status.ok());
  EXPECT_EQ((*authorizer)->Check("/evgate.v1.Nope/Do", {{"ops.depot"}, {}}).status.code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*authorizer)->Check("/evgate.v1.DeviceDriver/Command", {}).status.code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthorizerTest, BadPrincipalListsAreRefusedWithTheReason) {
  EXPECT_THAT(std::string(Authorizer::Create({{"a", "", "/nonexistent/token", {Role::kViewer}}})
                              .status()
                              .message()),
              HasSubstr("/nonexistent/token"));
  EXPECT_THAT(
      std::string(
          Authorizer::Create({{"a", "", WriteToken("short", "abc"), {}}}).status().message()),
      HasSubstr("shorter than 16"));
  EXPECT_FALSE(Authorizer::Create({{"a", "x", "", {}}, {"a", "y", "", {}}}).ok());
  EXPECT_FALSE(Authorizer::Create({{"a", "x", "", {}}, {"b", "x", "", {}}}).ok());
  EXPECT_FALSE(Authorizer::Create({{"a", "", "", {}}}).ok());
}

}  // namespace
}  // namespace evgate
