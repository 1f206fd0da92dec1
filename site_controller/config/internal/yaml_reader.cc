#include "site_controller/config/internal/yaml_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

namespace evgate::site::internal {
namespace {

std::string JoinPath(absl::string_view parent, absl::string_view key) {
  if (parent.empty()) {
    return std::string(key);
  }
  return absl::StrCat(parent, ".", key);
}

// yaml-cpp tags plain scalars "?" and quoted ones "!".
bool IsQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// A scalar's text, or an error naming what was expected.
std::optional<std::string> ScalarText(const Value& v, absl::string_view expected,
                                      ErrorList* errors) {
  if (!v.node.IsDefined() || v.node.IsNull() || !v.node.IsScalar()) {
    errors->Add(v.line, v.path, absl::StrCat("expected ", expected, ", got ", Describe(v.node)));
    return std::nullopt;
  }
  return v.node.Scalar();
}

// A scalar meant as a number: plain (unquoted) text.
std::optional<std::string> NumberText(const Value& v, absl::string_view expected,
                                      ErrorList* errors) {
  std::optional<std::string> text = ScalarText(v, expected, errors);
  if (!text) {
    return std::nullopt;
  }
  if (IsQuoted(v.node)) {
    errors->Add(v.line, v.path,
                absl::StrCat("expected ", expected, ", got the quoted text \"", *text,
                             "\"; write it without quotes"));
    return std::nullopt;
  }
  return text;
}

}  // namespace

void ErrorList::Add(int line, std::string path, std::string message) {
  if (reading_) {
    unreadable_.insert(path);
  }
  errors_.push_back(ConfigError{file_, line, std::move(path), std::move(message)});
}

std::vector<ConfigError> ErrorList::TakeSorted() {
  std::stable_sort(errors_.begin(), errors_.end(),
                   [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  // The same problem can be found on two routes; say it once.
  errors_.erase(std::unique(errors_.begin(), errors_.end()), errors_.end());
  return std::move(errors_);
}

int LineOf(const YAML::Node& node) {
  if (!node.IsDefined()) {
    return 0;
  }
  const YAML::Mark mark = node.Mark();
  return mark.line < 0 ? 0 : mark.line + 1;
}

std::string Describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) {
    return "nothing";
  }
  if (node.IsSequence()) {
    return "a list";
  }
  if (node.IsMap()) {
    return "a mapping";
  }
  return absl::StrCat("'", node.Scalar(), "'");
}

std::optional<std::string> DidYouMean(absl::string_view word,
                                      const std::vector<std::string>& candidates) {
  const size_t limit = std::min<size_t>(3, std::max<size_t>(1, word.size() / 3));
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const size_t d = EditDistance(absl::AsciiStrToLower(word), absl::AsciiStrToLower(candidate));
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-'))) {
      return false;
    }
  }
  return true;
}

std::optional<double> ToNumber(const Value& v, ErrorList* errors) {
  std::optional<std::string> text = NumberText(v, "a number", errors);
  if (!text) {
    return std::nullopt;
  }
  double value = 0;
  if (!absl::SimpleAtod(*text, &value) || !std::isfinite(value)) {
    errors->Add(v.line, v.path, absl::StrCat("expected a number, got '", *text, "'"));
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> ToInteger(const Value& v, ErrorList* errors) {
  std::optional<std::string> text = NumberText(v, "a whole number", errors);
  if (!text) {
    return std::nullopt;
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(*text, &value)) {
    errors->Add(v.line, v.path, absl::StrCat("expected a whole number, got '", *text, "'"));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> ToBool(const Value& v, ErrorList* errors) {
  std::optional<std::string> text = NumberText(v, "true or false", errors);
  if (!text) {
    return std::nullopt;
  }
  if (*text == "true" || *text == "True" || *text == "TRUE") {
    return true;
  }
  if (*text == "false" || *text == "False" || *text == "FALSE") {
    return false;
  }
  errors->Add(v.line, v.path, absl::StrCat("expected true or false, got '", *text, "'"));
  return std::nullopt;
}

std::optional<std::string> ToString(const Value& v, ErrorList* errors) {
  return ScalarText(v, "text", errors);
}

std::optional<std::string> ToId(const Value& v, ErrorList* errors) {
  std::optional<std::string> text = ScalarText(v, "an id", errors);
  if (!text) {
    return std::nullopt;
  }
  if (!IsValidId(*text)) {
    errors->Add(v.line, v.path, absl::StrCat("'", *text, "' is not a valid id; ", kIdRule));
    return std::nullopt;
  }
  return text;
}

std::optional<Phase> ToPhase(const Value& v, ErrorList* errors) {
  static const EnumTable<Phase>* const kPhases =
      new EnumTable<Phase>{{"L1", Phase::kL1}, {"L2", Phase::kL2}, {"L3", Phase::kL3}};
  return ToEnum(v, *kPhases, "phase", errors);
}

std::optional<absl::Time> ToTime(const Value& v, ErrorList* errors) {
  std::optional<std::string> text = ScalarText(v, "an RFC 3339 date-time", errors);
  if (!text) {
    return std::nullopt;
  }
  absl::Time time;
  std::string why;
  if (!absl::ParseTime(absl::RFC3339_full, *text, &time, &why)) {
    errors->Add(v.line, v.path,
                absl::StrCat("'", *text,
                             "' is not an RFC 3339 date-time; write e.g. "
                             "2026-01-01T00:00:00Z"));
    return std::nullopt;
  }
  return time;
}

std::optional<std::vector<Value>> ToSequence(const Value& v, ErrorList* errors) {
  std::vector<Value> items;
  if (v.node.IsNull()) {
    return items;
  }
  if (!v.node.IsSequence()) {
    errors->Add(v.line, v.path, absl::StrCat("expected a list, got ", Describe(v.node)));
    return std::nullopt;
  }
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    const int line = LineOf(item);
    items.push_back(Value{item, absl::StrCat(v.path, "[", i, "]"), line > 0 ? line : v.line});
  }
  return items;
}

bool CheckMapping(const Value& v, ErrorList* errors) {
  if (v.node.IsNull() || v.node.IsMap()) {
    return true;
  }
  errors->Add(v.line, v.path,
              absl::StrCat("expected a mapping of 'field: value' lines, got ", Describe(v.node)));
  return false;
}

MapReader::MapReader(Value value, ErrorList* errors, SourceLines* lines)
    : value_(std::move(value)), errors_(errors), lines_(lines) {
  lines_->SetPath(value_.path, value_.line);
  if (!value_.node.IsMap()) {
    return;
  }
  for (auto it = value_.node.begin(); it != value_.node.end(); ++it) {
    const YAML::Node key = it->first;
    const int line = LineOf(key) > 0 ? LineOf(key) : value_.line;
    if (!key.IsScalar()) {
      errors_->Add(line, value_.path,
                   absl::StrCat("field names must be plain words, got ", Describe(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    if (const Entry* first = Find(name)) {
      errors_->Add(line, JoinPath(value_.path, name),
                   absl::StrCat("field '", name, "' is given twice (first on line ", first->line,
                                "); keep one"));
      continue;
    }
    entries_.push_back(Entry{name, it->second, line});
  }
}

const MapReader::Entry* MapReader::Find(absl::string_view key) const {
  for (const Entry& entry : entries_) {
    if (entry.key == key) {
      return &entry;
    }
  }
  return nullptr;
}

bool MapReader::Present(absl::string_view key) const { return Find(key) != nullptr; }

std::optional<Value> MapReader::Field(absl::string_view key, Need need) {
  allowed_.emplace_back(key);
  const Entry* entry = Find(key);
  if (entry == nullptr) {
    if (need.required) {
      std::string message = "required field is missing";
      if (!need.hint.empty()) {
        absl::StrAppend(&message, "; ", need.hint);
      }
      errors_->Add(value_.line > 0 ? value_.line : 1, JoinPath(value_.path, key),
                   std::move(message));
    }
    return std::nullopt;
  }
  lines_->SetFieldLine(std::string(key), entry->line);
  return Value{entry->value, JoinPath(value_.path, key), entry->line};
}

bool MapReader::Number(absl::string_view key, double* out, Need need) {
  return Read(key, out, need, ToNumber);
}

bool MapReader::Number(absl::string_view key, std::optional<double>* out, Need need) {
  double value = 0;
  if (!Number(key, &value, need)) {
    return false;
  }
  *out = value;
  return true;
}

bool MapReader::Integer(absl::string_view key, int64_t* out, Need need) {
  return Read(key, out, need, ToInteger);
}

bool MapReader::Integer(absl::string_view key, int* out, Need need) {
  return Read(key, out, need, [](const Value& v, ErrorList* errors) -> std::optional<int> {
    std::optional<int64_t> number = ToInteger(v, errors);
    if (!number) return std::nullopt;
    if (*number < std::numeric_limits<int>::min() || *number > std::numeric_limits<int>::max()) {
      errors->Add(v.line, v.path, absl::StrCat(*number, " is far too large for this field"));
      return std::nullopt;
    }
    return static_cast<int>(*number);
  });
}

bool MapReader::Integer(absl::string_view key, std::optional<int>* out, Need need) {
  int value = 0;
  if (!Integer(key, &value, need)) {
    return false;
  }
  *out = value;
  return true;
}

bool MapReader::Bool(absl::string_view key, bool* out, Need need) {
  return Read(key, out, need, ToBool);
}

bool MapReader::String(absl::string_view key, std::string* out, Need need) {
  return Read(key, out, need, ToString);
}

bool MapReader::String(absl::string_view key, std::optional<std::string>* out, Need need) {
  std::string text;
  if (!String(key, &text, need)) {
    return false;
  }
  *out = std::move(text);
  return true;
}

bool MapReader::Id(absl::string_view key, std::string* out, Need need) {
  return Read(key, out, need, ToId);
}

bool MapReader::Id(absl::string_view key, std::optional<std::string>* out, Need need) {
  std::string id;
  if (!Id(key, &id, need)) {
    return false;
  }
  *out = std::move(id);
  return true;
}

bool MapReader::IdList(absl::string_view key, std::vector<std::string>* out, Need need) {
  std::optional<std::vector<Value>> items = Sequence(key, need);
  if (!items) {
    return false;
  }
  out->clear();
  bool ok = true;
  for (size_t i = 0; i < items->size(); ++i) {
    const Value& item = (*items)[i];
    std::optional<std::string> id = ToId(item, errors_);
    if (!id) {
      ok = false;
      continue;
    }
    lines_->SetFieldLine(absl::StrCat(key, "[", out->size(), "]"), item.line);
    out->push_back(std::move(*id));
  }
  return ok;
}

bool MapReader::Phases(absl::string_view key, std::vector<Phase>* out, Need need) {
  std::optional<Value> v = Field(key, need);
  if (!v) {
    return false;
  }
  std::optional<std::vector<Value>> items = ToSequence(*v, errors_);
  if (!items) {
    return false;
  }
  if (items->empty()) {
    errors_->Add(v->line, v->path, "expected at least one phase; allowed: L1, L2, L3");
    return false;
  }
  std::vector<Phase> phases;
  for (const Value& item : *items) {
    std::optional<Phase> phase = ToPhase(item, errors_);
    if (!phase) {
      return false;
    }
    phases.push_back(*phase);
  }
  *out = std::move(phases);
  return true;
}

bool MapReader::PerPhase(absl::string_view key, std::vector<double>* out, bool* uniform,
                         Need need) {
  std::optional<Value> v = Field(key, need);
  if (!v) {
    return false;
  }
  if (v->node.IsScalar()) {
    std::optional<double> number = ToNumber(*v, errors_);
    if (!number) {
      return false;
    }
    *out = {*number};
    *uniform = true;
    return true;
  }
  if (!v->node.IsSequence() || v->node.size() == 0) {
    errors_->Add(v->line, v->path,
                 absl::StrCat("expected a number (all phases) or a list with "
                              "one number per phase, got ",
                              v->node.IsSequence() ? "an empty list" : Describe(v->node)));
    return false;
  }
  std::optional<std::vector<Value>> items = ToSequence(*v, errors_);
  if (!items) {
    return false;
  }
  std::vector<double> values;
  for (const Value& item : *items) {
    std::optional<double> number = ToNumber(item, errors_);
    if (!number) {
      return false;
    }
    values.push_back(*number);
  }
  *out = std::move(values);
  *uniform = false;
  return true;
}

bool MapReader::Time(absl::string_view key, std::optional<absl::Time>* out, Need need) {
  std::optional<Value> v = Field(key, need);
  if (!v) {
    return false;
  }
  std::optional<absl::Time> time = ToTime(*v, errors_);
  if (!time) {
    return false;
  }
  *out = *time;
  return true;
}

std::optional<Value> MapReader::Mapping(absl::string_view key, Need need) {
  std::optional<Value> v = Field(key, need);
  if (!v || !CheckMapping(*v, errors_)) {
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<Value>> MapReader::Sequence(absl::string_view key, Need need) {
  std::optional<Value> v = Field(key, need);
  if (!v) {
    return std::nullopt;
  }
  return ToSequence(*v, errors_);
}

void MapReader::Finish(absl::string_view what) {
  std::vector<std::string> allowed;
  for (const std::string& key : allowed_) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      allowed.push_back(key);
    }
  }
  for (const Entry& entry : entries_) {
    if (std::find(allowed.begin(), allowed.end(), entry.key) != allowed.end()) {
      continue;
    }
    std::string message = absl::StrCat("unknown field '", entry.key, "'");
    if (!what.empty()) {
      absl::StrAppend(&message, " ", what);
    }
    if (std::optional<std::string> guess = DidYouMean(entry.key, allowed)) {
      absl::StrAppend(&message, " (did you mean '", *guess, "'?)");
    }
    absl::StrAppend(&message,
                    "; allowed: ", allowed.empty() ? "none" : absl::StrJoin(allowed, ", "));
    errors_->Add(entry.line, JoinPath(value_.path, entry.key), std::move(message));
  }
}

}  // namespace evgate::site::internal
