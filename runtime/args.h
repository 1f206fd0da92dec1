// Command-line parsing shared by evgate and evgatectl: positional words (the
// command path and its arguments) and --flags, in any order.
//
//   evgatectl sessions export --format csv --from 2026-11-01 -o json
//   -> words {"sessions", "export"}, flags {format: csv, from: 2026-11-01, o: json}
//
// Thread-compatible value type.
#ifndef EVGATE_RUNTIME_ARGS_H_
#define EVGATE_RUNTIME_ARGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace evgate {

struct Args {
  std::vector<std::string> words;
  std::map<std::string, std::string> flags;  // name (without dashes) -> value

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
};

// `boolean_flags` take no value (e.g. --help). Every other flag needs one,
// given as `--name value` or `--name=value`. `-o` is short for `--output`.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::set<std::string>& boolean_flags);

// Fails with the first flag not in `allowed`, naming what is allowed.
absl::Status CheckFlags(const Args& args, const std::set<std::string>& allowed,
                        const std::string& command);

}  // namespace evgate

#endif  // EVGATE_RUNTIME_ARGS_H_
