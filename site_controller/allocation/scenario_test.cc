// The scenario format: the documented examples (testdata/*.json, each with its "expected"
// output), precise errors with field paths, round trips, and robustness against any input.

#include "site_controller/allocation/scenario.h"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "site_controller/allocation/allocation.h"

namespace evgate::allocation {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string TestdataDir() {
  return std::string(std::getenv("TEST_SRCDIR")) + "/" + std::getenv("TEST_WORKSPACE") +
         "/site_controller/allocation/testdata";
}

std::vector<std::string> TestdataFiles() {
  std::vector<std::string> files;
  DIR* dir = opendir(TestdataDir().c_str());
  if (dir == nullptr) return files;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.size() > 5 && name.substr(name.size() - 5) == ".json") {
      files.push_back(TestdataDir() + "/" + name);
    }
  }
  closedir(dir);
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(Examples, EveryExampleGivesItsExpectedOutput) {
  const std::vector<std::string> files = TestdataFiles();
  ASSERT_GE(files.size(), 7u);
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    const std::string text = ReadFile(file);
    absl::StatusOr<AllocationInput> input = ParseScenario(text);
    ASSERT_TRUE(input.ok()) << input.status();
    absl::StatusOr<Allocation> out = Allocate(*input);
    ASSERT_TRUE(out.ok()) << out.status();
    const Json expected = Json::parse(text).at("expected");
    EXPECT_EQ(Json::parse(AllocationToJson(*out)), expected) << "got " << AllocationToJson(*out, 2);
  }
}

TEST(RoundTrip, WritingAndReadingBackGivesTheSameScenario) {
  for (const std::string& file : TestdataFiles()) {
    SCOPED_TRACE(file);
    absl::StatusOr<AllocationInput> input = ParseScenario(ReadFile(file));
    ASSERT_TRUE(input.ok()) << input.status();
    const std::string written = ScenarioToJson(*input);
    absl::StatusOr<AllocationInput> again = ParseScenario(written);
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << written;
    EXPECT_EQ(ScenarioToJson(*again), written);
    EXPECT_EQ(AllocationToJson(*Allocate(*again)), AllocationToJson(*Allocate(*input)));
  }
}

std::string ErrorOf(const std::string& text) {
  absl::StatusOr<AllocationInput> input = ParseScenario(text);
  EXPECT_FALSE(input.ok()) << text;
  EXPECT_EQ(input.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(input.status().message());
}

constexpr char kMinimal[] = R"({"grid": {"limit_a": [32, 32, 32]}, "evses": [EVSE]})";

std::string WithEvse(const std::string& evse) {
  std::string s = kMinimal;
  s.replace(s.find("EVSE"), 4, evse);
  return s;
}

TEST(Errors, NameTheFieldPath) {
  EXPECT_THAT(ErrorOf(WithEvse(R"({"id": "a", "type": "ac", "phases": ["L1"], "max_a": "16"})")),
              HasSubstr("evses[0].max_a: expected a number, got string"));
  EXPECT_THAT(
      ErrorOf(WithEvse(R"({"id": "a", "type": "ac", "phases": ["L1", "L4"], "max_a": 16})")),
      HasSubstr("evses[0].phases[1]: expected \"L1\", \"L2\" or \"L3\", got \"L4\""));
  EXPECT_THAT(ErrorOf(WithEvse(R"({"id": "a", "type": "ac", "phases": ["L1"]})")),
              HasSubstr("evses[0].max_a: required field is missing"));
  EXPECT_THAT(ErrorOf(WithEvse(R"({"id": "a", "type": "dc", "phases": ["L1"], "max_w": 1})")),
              HasSubstr("evses[0].efficiency: required field is missing"));
  EXPECT_THAT(ErrorOf(WithEvse(R"({"id": "a", "type": "xx", "phases": ["L1"]})")),
              HasSubstr("evses[0].type: expected \"ac\" or \"dc\", got \"xx\""));
  EXPECT_THAT(ErrorOf(WithEvse(R"({"id": "a", "type": "ac", "phases": ["L1"], "max_a": 16,
                           "circuit": "garage"})")),
              HasSubstr("evses[0].circuit: unknown circuit \"garage\""));
  EXPECT_THAT(ErrorOf(R"({"grid": {"limit_a": [32, 32]}, "evses": []})"),
              HasSubstr("grid.limit_a: expected an array of 3 values"));
  EXPECT_THAT(ErrorOf(R"({"grid": {"limit_a": [32, 32, 32], "measured_a": [1, null, 2]},
                          "evses": []})"),
              HasSubstr("grid.measured_a[1]: missing reading for phase L2"));
  EXPECT_THAT(ErrorOf(R"({"grid": {"limit_a": [32, 32, 32]}})"),
              HasSubstr("evses: required field is missing"));
  EXPECT_THAT(ErrorOf(R"([1, 2])"), HasSubstr("(top level): expected an object, got array"));
}

TEST(Errors, UnknownFieldsAreReported) {
  EXPECT_THAT(
      ErrorOf(WithEvse(R"({"id": "a", "type": "ac", "phases": ["L1"], "max_current_a": 16})")),
      HasSubstr("evses[0].max_current_a: unknown field of an AC EVSE"));
  EXPECT_THAT(ErrorOf(WithEvse(R"({"id": "a", "type": "ac", "phases": ["L1"], "max_a": 16,
                                   "max_w": 100})")),
              HasSubstr("evses[0].max_w: unknown field of an AC EVSE"));
}

TEST(Errors, EveryErrorIsListed) {
  const std::string error = ErrorOf(R"({"grid": {"limit_a": [32, 32, 32], "margin": 1},
    "evses": [{"id": "a", "type": "ac", "phases": ["L1"], "max_a": -1},
              {"id": "a", "type": "ac", "phases": ["L2"], "max_a": 16, "min_a": 0}]})");
  EXPECT_THAT(error, HasSubstr("grid.margin: unknown field"));
  // Field errors stop before semantic checks; fix the typo and the rest shows up.
  const std::string semantic = ErrorOf(R"({"grid": {"limit_a": [32, 32, 32]},
    "evses": [{"id": "a", "type": "ac", "phases": ["L1"], "max_a": -1},
              {"id": "a", "type": "ac", "phases": ["L2"], "max_a": 16, "min_a": 0}]})");
  EXPECT_THAT(semantic, HasSubstr("evses[0].max_a: must be >= min_a (6), got -1"));
  EXPECT_THAT(semantic, HasSubstr("evses[1].id: duplicate EVSE id \"a\""));
  EXPECT_THAT(semantic, HasSubstr("evses[1].min_a: must be > 0, got 0"));
}

TEST(Errors, SyntaxErrorsGiveLineAndColumn) {
  EXPECT_THAT(ErrorOf("{\n  \"grid\": {\"limit_a\": [32, 32, 32]},\n  \"evses\": [,]\n}"),
              HasSubstr("invalid JSON: line 3, column 13"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("invalid JSON"));
}

TEST(Robustness, DeepNestingDoesNotCrash) {
  EXPECT_THAT(ErrorOf(std::string(100000, '[') + std::string(100000, ']')),
              HasSubstr("expected an object"));
  EXPECT_THAT(ErrorOf(std::string(100000, '[')), HasSubstr("invalid JSON"));
}

TEST(Robustness, MutatedScenariosNeverCrash) {
  const std::vector<std::string> files = TestdataFiles();
  ASSERT_FALSE(files.empty());
  const std::vector<std::string> tokens = {"null",   "-1",   "1e308",  "0",
                                           "\"L2\"", "[]",   "{}",     "true",
                                           "1.5",    "\"\"", "1e-320", "99999999999"};
  std::mt19937_64 rng(42);
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = ReadFile(files[round % files.size()]);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !text.empty(); ++k) {
      const size_t pos = rng() % text.size();
      switch (rng() % 4) {
        case 0:
          text[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          text.erase(pos, 1 + rng() % 8);
          break;
        case 2:
          text.insert(pos, tokens[rng() % tokens.size()]);
          break;
        default: {
          // Replace a number with a token: keeps the JSON valid more often.
          const size_t start = text.find_first_of("0123456789", pos);
          if (start == std::string::npos) break;
          const size_t end = text.find_first_not_of("0123456789.", start);
          text.replace(start, end - start, tokens[rng() % tokens.size()]);
        }
      }
    }
    absl::StatusOr<AllocationInput> input = ParseScenario(text);
    if (!input.ok()) {
      EXPECT_EQ(input.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_FALSE(input.status().message().empty());
      continue;
    }
    ++accepted;
    absl::StatusOr<Allocation> out = Allocate(*input);
    ASSERT_TRUE(out.ok()) << out.status() << "\n" << text;
    AllocationToJson(*out);
  }
  EXPECT_GT(accepted, 100);  // the mutations also reach the engine
}

}  // namespace
}  // namespace evgate::allocation
