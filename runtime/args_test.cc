#include "runtime/args.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evgate {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ParseArgsTest, WordsAndFlagsInAnyOrder) {
  auto args =
      ParseArgs({"--server", "h:1", "sessions", "export", "--format=csv", "-o", "json"}, {"help"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->words, ElementsAre("sessions", "export"));
  EXPECT_THAT(args->flags,
              ElementsAre(Pair("format", "csv"), Pair("output", "json"), Pair("server", "h:1")));
}

TEST(ParseArgsTest, FlagWithoutValueIsAnError) {
  auto args = ParseArgs({"sessions", "list", "--from"}, {"help"});
  ASSERT_FALSE(args.ok());
  EXPECT_THAT(args.status().message(), HasSubstr("--from needs a value"));
}

TEST(ParseArgsTest, BooleanFlagsTakeNoValue) {
  auto args = ParseArgs({"-h"}, {"help"});
  ASSERT_TRUE(args.ok());
  EXPECT_TRUE(args->Has("help"));
  EXPECT_FALSE(ParseArgs({"--help=yes"}, {"help"}).ok());
}

TEST(ParseArgsTest, DoubleDashEndsFlags) {
  auto args = ParseArgs({"sessions", "get", "--", "--odd-id"}, {"help"});
  ASSERT_TRUE(args.ok());
  EXPECT_THAT(args->words, ElementsAre("sessions", "get", "--odd-id"));
}

TEST(CheckFlagsTest, UnknownFlagNamesWhatIsAllowed) {
  auto args = ParseArgs({"health", "--evse", "x"}, {});
  ASSERT_TRUE(args.ok());
  absl::Status s = CheckFlags(*args, {"server", "output"}, "health");
  EXPECT_EQ(s.message(), "unknown flag --evse for 'health'; allowed: --output, --server");
}

}  // namespace
}  // namespace evgate
