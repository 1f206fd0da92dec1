// The small YAML-reading layer of the site.yaml loader: typed getters that
// never throw and record every problem as a ConfigError with the path and
// 1-based line of the offending value.
//
// A MapReader reads one YAML mapping. Each getter names a field and thereby
// declares it allowed; Finish() then reports every field of the mapping that
// no getter asked for ("unknown field 'max_curent_a'; did you mean
// 'max_current_a'? allowed: ..."), so a typo is always an error.
//
// Thread-compatible. Private to site_controller/config.

#ifndef EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_YAML_READER_H_
#define EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_YAML_READER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "site_controller/config/site_config.h"
#include "site_controller/config/site_config_loader.h"
#include "yaml-cpp/yaml.h"

namespace evgate::site::internal {

// Collects the errors of one load.
class ErrorList {
 public:
  explicit ErrorList(std::string file) : file_(std::move(file)) {}

  void Add(int line, std::string path, std::string message);
  bool empty() const { return errors_.empty(); }

  // While reading (before FinishReading()), every error marks its path as
  // unreadable; the validator then stays quiet about those fields instead of
  // judging the default that was left in their place.
  void FinishReading() { reading_ = false; }
  bool Unreadable(absl::string_view path) const {
    return unreadable_.find(path) != unreadable_.end();
  }
  // Sorted by line (stable: same-line errors keep the order they were found).
  std::vector<ConfigError> TakeSorted();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  bool reading_ = true;
  std::set<std::string, std::less<>> unreadable_;
};

// A YAML value and where it is.
struct Value {
  YAML::Node node;
  std::string path;
  int line = 0;
};

// 1-based line of a parsed node (0 if yaml-cpp has no mark for it).
int LineOf(const YAML::Node& node);

// "a list", "a mapping", "'abc'", "nothing": how a value is named in errors.
std::string Describe(const YAML::Node& node);

// The closest of `candidates` to `word` when it is a plausible typo.
std::optional<std::string> DidYouMean(absl::string_view word,
                                      const std::vector<std::string>& candidates);

// ids: [a-z0-9][a-z0-9_-]*, at most 64 characters.
bool IsValidId(absl::string_view id);
inline constexpr char kIdRule[] =
    "ids are 1–64 characters: lower-case letters, digits, '_' and '-', "
    "starting with a letter or digit";

// Scalar conversions: return the value, or record an error and return nullopt.
std::optional<double> ToNumber(const Value& v, ErrorList* errors);
std::optional<int64_t> ToInteger(const Value& v, ErrorList* errors);
std::optional<bool> ToBool(const Value& v, ErrorList* errors);
std::optional<std::string> ToString(const Value& v, ErrorList* errors);
std::optional<std::string> ToId(const Value& v, ErrorList* errors);
std::optional<Phase> ToPhase(const Value& v, ErrorList* errors);
std::optional<absl::Time> ToTime(const Value& v, ErrorList* errors);
// Items of a sequence (null counts as empty), or nullopt + error.
std::optional<std::vector<Value>> ToSequence(const Value& v, ErrorList* errors);
// True for a mapping (or null, an empty mapping); else records an error.
bool CheckMapping(const Value& v, ErrorList* errors);

template <typename E>
using EnumTable = std::vector<std::pair<absl::string_view, E>>;

template <typename E>
std::optional<E> ToEnum(const Value& v, const EnumTable<E>& table, absl::string_view what,
                        ErrorList* errors) {
  std::optional<std::string> text = ToString(v, errors);
  if (!text) return std::nullopt;
  for (const auto& [name, value] : table) {
    if (name == *text) return value;
  }
  std::vector<std::string> names;
  for (const auto& entry : table) names.emplace_back(entry.first);
  errors->Add(v.line, v.path,
              absl::StrCat("'", *text, "' is not a valid ", what,
                           "; allowed: ", absl::StrJoin(names, ", ")));
  return std::nullopt;
}

// Whether a field must be present; `hint` tells the operator what to write.
struct Need {
  bool required = false;
  absl::string_view hint;
};
inline Need Required(absl::string_view hint = {}) { return Need{true, hint}; }

// Reads one mapping; see the file comment.
class MapReader {
 public:
  // `value` must have passed CheckMapping. Field lines go to `lines`.
  MapReader(Value value, ErrorList* errors, SourceLines* lines);

  MapReader(const MapReader&) = delete;
  MapReader& operator=(const MapReader&) = delete;

  const Value& value() const { return value_; }
  ErrorList* errors() const { return errors_; }

  // Declares `key` allowed. Returns its value if present; records "missing
  // required field" if absent and required.
  std::optional<Value> Field(absl::string_view key, Need need = {});
  // Declares `key` allowed without reading it.
  void Allow(absl::string_view key) { allowed_.emplace_back(key); }
  // True if `key` is present (does not declare it).
  bool Present(absl::string_view key) const;

  // Typed getters: on success store into *out and return true. When absent
  // or invalid, *out is left unchanged (holding the default).
  bool Number(absl::string_view key, double* out, Need need = {});
  bool Number(absl::string_view key, std::optional<double>* out, Need need = {});
  bool Integer(absl::string_view key, int* out, Need need = {});
  bool Integer(absl::string_view key, int64_t* out, Need need = {});
  bool Integer(absl::string_view key, std::optional<int>* out, Need need = {});
  bool Bool(absl::string_view key, bool* out, Need need = {});
  bool String(absl::string_view key, std::string* out, Need need = {});
  bool String(absl::string_view key, std::optional<std::string>* out, Need need = {});
  bool Id(absl::string_view key, std::string* out, Need need = {});
  bool Id(absl::string_view key, std::optional<std::string>* out, Need need = {});
  // A list of ids; each item's line is recorded as "key[i]".
  bool IdList(absl::string_view key, std::vector<std::string>* out, Need need = {});
  // A list of L1/L2/L3 (no check of count or duplicates).
  bool Phases(absl::string_view key, std::vector<Phase>* out, Need need = {});
  // A number (applies to every phase: *uniform = true) or a list of numbers.
  bool PerPhase(absl::string_view key, std::vector<double>* out, bool* uniform, Need need = {});
  bool Time(absl::string_view key, std::optional<absl::Time>* out, Need need = {});
  template <typename E>
  bool Enum(absl::string_view key, const EnumTable<E>& table, absl::string_view what, E* out,
            Need need = {}) {
    return Read(key, out, need,
                [&](const Value& v, ErrorList* errors) { return ToEnum(v, table, what, errors); });
  }
  // A nested mapping (null = empty) or sequence (null = empty).
  std::optional<Value> Mapping(absl::string_view key, Need need = {});
  std::optional<std::vector<Value>> Sequence(absl::string_view key, Need need = {});

  // Reports fields no getter asked for. `what` names this mapping in the
  // "allowed" list, e.g. "for a modbus_tcp bus".
  void Finish(absl::string_view what = {});

 private:
  // The shape of every scalar getter: find the field, convert it (the
  // converter records its own errors and returns nullopt), store it.
  template <typename T, typename Convert>
  bool Read(absl::string_view key, T* out, Need need, Convert convert) {
    std::optional<Value> v = Field(key, need);
    if (!v) return false;
    auto converted = convert(*v, errors_);
    if (!converted) return false;
    *out = std::move(*converted);
    return true;
  }

 public:
 private:
  struct Entry {
    std::string key;
    YAML::Node value;
    int line;
  };
  const Entry* Find(absl::string_view key) const;

  Value value_;
  ErrorList* errors_;
  SourceLines* lines_;
  std::vector<Entry> entries_;
  std::vector<std::string> allowed_;
};

}  // namespace evgate::site::internal

#endif  // EVGATE_SITE_CONTROLLER_CONFIG_INTERNAL_YAML_READER_H_
