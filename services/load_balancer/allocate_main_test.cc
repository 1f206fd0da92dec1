// Runs the `allocate` binary as a user would: every documented example prints its expected
// output; bad input exits with code 2 and an error naming the field path; nothing crashes.

#include <dirent.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string Runfile(const std::string& path) {
  return std::string(std::getenv("TEST_SRCDIR")) + "/" + std::getenv("TEST_WORKSPACE") + "/" + path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string TmpFile(const std::string& name, const std::string& content) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << content;
  return path;
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

// Runs allocate with `args` (already shell-quoted as needed).
Result RunAllocate(const std::string& args) {
  const std::string out = std::string(std::getenv("TEST_TMPDIR")) + "/stdout";
  const std::string err = std::string(std::getenv("TEST_TMPDIR")) + "/stderr";
  const std::string command = "'" + Runfile("services/load_balancer/allocate") + "' " + args +
                              " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(command.c_str());
  Result r;
  EXPECT_TRUE(WIFEXITED(status)) << "allocate " << args << " did not exit normally: " << status;
  // A crash inside the shell shows up as 128 + signal.
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  EXPECT_LT(r.exit_code, 128) << "allocate " << args << " was killed by a signal";
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

std::vector<std::string> Examples() {
  const std::string dir = Runfile("site_controller/allocation/testdata");
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() > 5 && name.substr(name.size() - 5) == ".json") {
        files.push_back(dir + "/" + name);
      }
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(AllocateCli, PrintsTheExpectedOutputOfEveryExample) {
  const std::vector<std::string> files = Examples();
  ASSERT_GE(files.size(), 7u);
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    const Result r = RunAllocate("'" + file + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Json::parse(r.out), Json::parse(ReadFile(file)).at("expected")) << r.out;
    EXPECT_EQ(r.err, "");
  }
}

TEST(AllocateCli, ReadsStandardInput) {
  const std::string file = Examples().front();
  const Result r = RunAllocate("- <'" + file + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out), Json::parse(ReadFile(file)).at("expected"));
}

TEST(AllocateCli, MalformedScenarioExitsWithTwoAndNamesTheField) {
  const std::string path = TmpFile("bad.json", R"({"grid": {"limit_a": [32, 32, 32]},
    "evses": [{"id": "a", "type": "ac", "phases": ["L1", "L7"], "max_a": 16}]})");
  const Result r = RunAllocate("'" + path + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("evses[0].phases[1]: expected \"L1\", \"L2\" or \"L3\""));
}

TEST(AllocateCli, SemanticErrorExitsWithTwo) {
  const std::string path = TmpFile("semantic.json", R"({"grid": {"limit_a": [32, null, null]},
    "evses": [{"id": "a", "type": "ac", "phases": ["L2"], "max_a": 16}]})");
  const Result r = RunAllocate("'" + path + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("evses[0].phases[0]: phase L2 does not exist on circuit \"grid\""));
}

TEST(AllocateCli, SyntaxErrorExitsWithTwoAndGivesThePosition) {
  const std::string path = TmpFile("syntax.json", "{\n  \"grid\": {\"limit_a\": [32 32]}\n}");
  const Result r = RunAllocate("'" + path + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invalid JSON: line 2, column"));
}

TEST(AllocateCli, GarbageNeverCrashes) {
  for (const std::string& content :
       {std::string(""), std::string("\xff\xfe\x00garbage", 10), std::string(200000, '['),
        std::string("{\"grid\": 1, \"evses\": 2}"), std::string("null")}) {
    const Result r = RunAllocate("'" + TmpFile("garbage.json", content) + "'");
    EXPECT_EQ(r.exit_code, 2) << content.substr(0, 40);
    EXPECT_NE(r.err, "");
  }
}

TEST(AllocateCli, UsageAndMissingFileExitWithTwo) {
  EXPECT_EQ(RunAllocate("").exit_code, 2);
  EXPECT_THAT(RunAllocate("--help").err, HasSubstr("usage: allocate FILE.json"));
  const Result r = RunAllocate("/nonexistent/scenario.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/scenario.json: cannot read file"));
}

}  // namespace
