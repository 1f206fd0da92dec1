#include "device_drivers/modbus/builtin_profiles.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"

namespace evgate::modbus {
namespace {

struct Parsed {
  std::map<std::string, RegisterMap, std::less<>> maps;
  std::string errors;  // a broken built-in file is a build defect; tests catch it
};

const Parsed& AllParsed() {
  static const Parsed* parsed = [] {
    auto* p = new Parsed;
    for (const auto& [file, text] : internal::BuiltinProfileFiles()) {
      absl::StatusOr<RegisterMap> map =
          ParseRegisterMap(text, absl::StrCat("device_drivers/modbus/profiles/", file));
      if (!map.ok()) {
        absl::StrAppend(&p->errors, map.status().message(), "\n");
        continue;
      }
      std::string name = map->name;
      p->maps.emplace(std::move(name), *std::move(map));
    }
    return p;
  }();
  return *parsed;
}

}  // namespace

absl::StatusOr<const RegisterMap*> BuiltinRegisterMap(absl::string_view name) {
  const Parsed& parsed = AllParsed();
  if (!parsed.errors.empty()) return absl::InternalError(parsed.errors);
  auto it = parsed.maps.find(name);
  if (it == parsed.maps.end()) {
    return absl::NotFoundError(absl::StrCat("no built-in Modbus register map '", name, "'"));
  }
  return &it->second;
}

}  // namespace evgate::modbus
