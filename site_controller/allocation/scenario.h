// The scenario format (docs/scenario-format.md): a JSON description of a site snapshot that maps
// one to one onto `AllocationInput`, and the JSON form of an `Allocation`. Used by the `allocate`
// CLI, the Simulate RPC and tests.
//
// Contract: parsing never throws and never crashes on any input; every problem is reported with
// its field path ("evses[2].phases[1]: ...") or, for JSON syntax errors, its line and column.
// Unknown fields are errors (they are usually typos). Top-level "description" (string) and
// "expected" (any JSON, the expected output) are accepted and ignored.
//
// Thread-safety: all functions are thread-safe.

#ifndef EVGATE_SITE_CONTROLLER_ALLOCATION_SCENARIO_H_
#define EVGATE_SITE_CONTROLLER_ALLOCATION_SCENARIO_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "site_controller/allocation/allocation.h"

namespace evgate::allocation {

// Parses and validates (ValidateInput) a scenario. InvalidArgument lists every error found, one
// per line.
absl::StatusOr<AllocationInput> ParseScenario(std::string_view json_text);

// Writes `input` as scenario JSON that ParseScenario reads back to an equal input.
// indent < 0: one line.
std::string ScenarioToJson(const AllocationInput& input, int indent = -1);

// Writes the documented output JSON:
//   {"failsafe": false, "evses": [{"id", "current_a" | "power_w", "paused", ["limited_by"],
//    ["pause_reason"]}], "circuits": [{"id", "load_a", "headroom_a"}]}
std::string AllocationToJson(const Allocation& allocation, int indent = -1);

}  // namespace evgate::allocation

#endif  // EVGATE_SITE_CONTROLLER_ALLOCATION_SCENARIO_H_
