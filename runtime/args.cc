#include "runtime/args.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace evgate {

std::string Args::Get(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::set<std::string>& boolean_flags) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {
      args.words.insert(args.words.end(), argv.begin() + i + 1, argv.end());
      break;
    }
    std::string name;
    if (absl::StartsWith(arg, "--") && arg.size() > 2) {
      name = arg.substr(2);
    } else if (arg.size() == 2 && arg[0] == '-' && arg[1] != '-') {
      name = arg.substr(1);
      if (name == "o") name = "output";
      if (name == "h") name = "help";
    } else {
      args.words.push_back(arg);
      continue;
    }
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (boolean_flags.count(name)) {
      if (has_value) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      args.flags[name] = "true";
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = argv[++i];
    }
    args.flags[name] = value;
  }
  return args;
}

absl::Status CheckFlags(const Args& args, const std::set<std::string>& allowed,
                        const std::string& command) {
  for (const auto& [name, value] : args.flags) {
    if (!allowed.count(name)) {
      std::vector<std::string> names;
      for (const std::string& a : allowed) names.push_back("--" + a);
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " for '", command,
                                                     "'; allowed: ", absl::StrJoin(names, ", ")));
    }
  }
  return absl::OkStatus();
}

}  // namespace evgate
