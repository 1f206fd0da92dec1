#include "runtime/service_catalog.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace evgate {

const ServiceEntry* FindService(const ServiceCatalog& catalog, const std::string& name) {
  for (const ServiceEntry& entry : catalog) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

absl::StatusOr<std::vector<const ServiceEntry*>> SelectServices(const ServiceCatalog& catalog,
                                                                const std::string& names) {
  std::vector<std::string> available;
  for (const ServiceEntry& entry : catalog) {
    if (entry.create) available.push_back(entry.name);
  }
  std::vector<const ServiceEntry*> selected;
  if (names.empty()) {
    for (const ServiceEntry& entry : catalog) {
      if (entry.create) selected.push_back(&entry);
    }
    return selected;
  }
  std::vector<std::string> wanted;
  for (absl::string_view name : absl::StrSplit(names, ',', absl::SkipWhitespace())) {
    wanted.emplace_back(absl::StripAsciiWhitespace(name));  // "a, b" as well as "a,b"
  }
  for (const ServiceEntry& entry : catalog) {  // catalog order = start order
    for (const std::string& name : wanted) {
      if (name == entry.name) {
        if (!entry.create) {
          return absl::UnimplementedError(
              absl::StrCat("service '", name, "': ", entry.not_yet,
                           "; available: ", absl::StrJoin(available, ", ")));
        }
        selected.push_back(&entry);
      }
    }
  }
  for (size_t i = 0; i < wanted.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (wanted[i] == wanted[j]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "service '", wanted[i], "' is listed twice; one process hosts each service once"));
      }
    }
  }
  for (const std::string& name : wanted) {
    if (FindService(catalog, name) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown service '", name, "'; available: ", absl::StrJoin(available, ", ")));
    }
  }
  return selected;
}

}  // namespace evgate
