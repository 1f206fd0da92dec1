#include "services/ocpp_bridge/json_schema.h"

#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace evgate::ocpp {
namespace {

using nlohmann::json;

enum Type : uint8_t {
  kNull = 1 << 0,
  kBoolean = 1 << 1,
  kInteger = 1 << 2,
  kNumber = 1 << 3,  // includes integers
  kString = 1 << 4,
  kArray = 1 << 5,
  kObject = 1 << 6,
};

std::optional<uint8_t> TypeBit(absl::string_view name) {
  if (name == "null") return kNull;
  if (name == "boolean") return kBoolean;
  if (name == "integer") return kInteger;
  if (name == "number") return kNumber;
  if (name == "string") return kString;
  if (name == "array") return kArray;
  if (name == "object") return kObject;
  return std::nullopt;
}

std::string TypeNames(uint8_t types) {
  std::vector<std::string> names;
  for (const char* name : {"null", "boolean", "integer", "number", "string", "array", "object"}) {
    if (types & *TypeBit(name)) names.push_back(name);
  }
  return absl::StrJoin(names, " or ");
}

bool IsIntegral(const json& value) {
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  const double d = value.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

bool HasType(uint8_t types, const json& value) {
  if (types == 0) return true;
  switch (value.type()) {
    case json::value_t::null:
      return types & kNull;
    case json::value_t::boolean:
      return types & kBoolean;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return (types & kNumber) || ((types & kInteger) && IsIntegral(value));
    case json::value_t::string:
      return types & kString;
    case json::value_t::array:
      return types & kArray;
    case json::value_t::object:
      return types & kObject;
    default:
      return false;
  }
}

const char* ValueTypeName(const json& value) {
  if (value.is_number()) return IsIntegral(value) ? "integer" : "number";
  return value.type_name();
}

// Code points of a UTF-8 string (nlohmann's parser has checked it is UTF-8).
uint64_t CodePoints(const std::string& s) {
  uint64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// RFC 6901: "~" and "/" in a property name are escaped.
void AppendPointerToken(std::string& pointer, absl::string_view token) {
  pointer += '/';
  for (char c : token) {
    if (c == '~') {
      pointer += "~0";
    } else if (c == '/') {
      pointer += "~1";
    } else {
      pointer += c;
    }
  }
}

std::string Number(double d) {
  json j = d;
  if (IsIntegral(j) && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<int64_t>(d));
  }
  return j.dump();
}

bool Digits(absl::string_view s, size_t at, size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (!absl::ascii_isdigit(s[i])) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

bool IsLeap(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

}  // namespace

bool IsRfc3339DateTime(absl::string_view s) {
  // full-date "T" partial-time time-offset
  int year, month, day, hour, minute, second;
  if (!Digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, month) ||
      s[7] != '-' || !Digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't') ||
      !Digits(s, 11, 2, hour) || s[13] != ':' || !Digits(s, 14, 2, minute) || s[16] != ':' ||
      !Digits(s, 17, 2, second)) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return false;
  const int days_in_month = kDays[month - 1] + (month == 2 && IsLeap(year));
  // Second 60 is a leap second.
  if (day > days_in_month || hour > 23 || minute > 59 || second > 60) {
    return false;
  }
  size_t at = 19;
  if (at < s.size() && s[at] == '.') {
    const size_t digits_from = ++at;
    while (at < s.size() && absl::ascii_isdigit(s[at])) ++at;
    if (at == digits_from) return false;
  }
  if (at == s.size()) return false;  // the offset is required
  if (s[at] == 'Z' || s[at] == 'z') return at + 1 == s.size();
  int offset_hour, offset_minute;
  return (s[at] == '+' || s[at] == '-') && at + 6 == s.size() &&
         Digits(s, at + 1, 2, offset_hour) && s[at + 3] == ':' &&
         Digits(s, at + 4, 2, offset_minute) && offset_hour <= 23 && offset_minute <= 59;
}

bool IsRfc3986Uri(absl::string_view s) {
  // scheme ":" hier-part [ "?" query ] [ "#" fragment ], checked as: a
  // scheme, then only characters a URI may contain, '%' only before two hex
  // digits, at most one '#'.
  size_t at = 0;
  if (s.empty() || !absl::ascii_isalpha(s[0])) return false;
  while (at < s.size() &&
         (absl::ascii_isalnum(s[at]) || s[at] == '+' || s[at] == '-' || s[at] == '.')) {
    ++at;
  }
  if (at == s.size() || s[at] != ':') return false;
  static constexpr absl::string_view kAllowed =
      "-._~:/?#[]@!$&'()*+,;=";  // unreserved marks, gen-delims, sub-delims
  bool fragment = false;
  for (++at; at < s.size(); ++at) {
    const char c = s[at];
    if (c == '%') {
      if (at + 2 >= s.size() || !absl::ascii_isxdigit(s[at + 1]) ||
          !absl::ascii_isxdigit(s[at + 2])) {
        return false;
      }
      at += 2;
    } else if (c == '#') {
      if (fragment) return false;
      fragment = true;
    } else if (!absl::ascii_isalnum(c) && kAllowed.find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

const char* SchemaRuleName(SchemaRule rule) {
  switch (rule) {
    case SchemaRule::kType:
      return "type";
    case SchemaRule::kRequired:
      return "required";
    case SchemaRule::kAdditionalProperty:
      return "additionalProperties";
    case SchemaRule::kEnum:
      return "enum";
    case SchemaRule::kConst:
      return "const";
    case SchemaRule::kMinLength:
      return "minLength";
    case SchemaRule::kMaxLength:
      return "maxLength";
    case SchemaRule::kMinimum:
      return "minimum";
    case SchemaRule::kMaximum:
      return "maximum";
    case SchemaRule::kExclusiveMinimum:
      return "exclusiveMinimum";
    case SchemaRule::kExclusiveMaximum:
      return "exclusiveMaximum";
    case SchemaRule::kMultipleOf:
      return "multipleOf";
    case SchemaRule::kMinItems:
      return "minItems";
    case SchemaRule::kMaxItems:
      return "maxItems";
    case SchemaRule::kFormat:
      return "format";
  }
  return "?";
}

// Builds the node list from the schema document. Definitions are compiled
// when first referenced, once each, so shared and recursive references work.
class JsonSchema::Compiler {
 public:
  explicit Compiler(const json& root) : root_(root) {}

  absl::StatusOr<std::vector<Node>> Run() {
    nodes_.emplace_back();
    if (absl::Status s = Fill(0, root_, "#"); !s.ok()) return s;
    return std::move(nodes_);
  }

 private:
  absl::StatusOr<int> Add(const json& schema, const std::string& where) {
    const int index = static_cast<int>(nodes_.size());
    nodes_.emplace_back();
    if (absl::Status s = Fill(index, schema, where); !s.ok()) return s;
    return index;
  }

  absl::StatusOr<int> Reference(const json& ref, const std::string& where) {
    if (!ref.is_string()) {
      return Error(where, "$ref", "must be a string");
    }
    const std::string target = ref.get<std::string>();
    if (target == "#") return 0;
    static constexpr absl::string_view kPrefix = "#/definitions/";
    if (!absl::StartsWith(target, kPrefix)) {
      return Error(where, "$ref",
                   absl::StrCat("'", target,
                                "' is not \"#\" or \"#/definitions/<name>\" "
                                "(remote references are not supported)"));
    }
    const std::string name = target.substr(kPrefix.size());
    if (auto it = definitions_.find(name); it != definitions_.end()) {
      return it->second;
    }
    const auto defs = root_.find("definitions");
    if (defs == root_.end() || !defs->is_object() || !defs->contains(name)) {
      return Error(where, "$ref", absl::StrCat("'", target, "' is not defined"));
    }
    const int index = static_cast<int>(nodes_.size());
    nodes_.emplace_back();
    definitions_[name] = index;
    if (absl::Status s = Fill(index, (*defs)[name], target); !s.ok()) return s;
    return index;
  }

  static absl::Status Error(const std::string& where, absl::string_view keyword,
                            absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("schema ", where, ": ", keyword, " ", what));
  }

  static absl::StatusOr<uint64_t> Count(const std::string& where, const std::string& keyword,
                                        const json& value) {
    if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
      return Error(where, keyword, "must be a non-negative integer");
    }
    return value.get<uint64_t>();
  }

  static absl::StatusOr<double> Bound(const std::string& where, const std::string& keyword,
                                      const json& value) {
    if (!value.is_number()) return Error(where, keyword, "must be a number");
    return value.get<double>();
  }

  // Nodes may move while `Fill` recurses (nodes_ grows), so every write goes
  // through nodes_[index] after the recursive call returns.
  absl::Status Fill(int index, const json& schema, const std::string& where) {
    if (!schema.is_object()) {
      return Error(where, "schema", "must be an object");
    }
    static const absl::flat_hash_set<absl::string_view> kAnnotations = {
        "$schema",     "$id",     "$comment", "comment",  "title",
        "description", "default", "examples", "javaType", "definitions"};
    if (const auto ref = schema.find("$ref"); ref != schema.end()) {
      for (const auto& [key, value] : schema.items()) {
        if (key != "$ref" && !kAnnotations.contains(key)) {
          return Error(where, key, "beside $ref would be ignored; not supported");
        }
      }
      absl::StatusOr<int> target = Reference(*ref, where);
      if (!target.ok()) return target.status();
      nodes_[index].ref = *target;
      return absl::OkStatus();
    }
    const bool items_is_schema = schema.contains("items") && schema["items"].is_object();
    for (const auto& [key, value] : schema.items()) {
      const std::string at = where + "/" + key;
      if (kAnnotations.contains(key)) continue;
      if (key == "type") {
        uint8_t types = 0;
        const json names = value.is_array() ? value : json::array({value});
        for (const json& name : names) {
          std::optional<uint8_t> bit =
              name.is_string() ? TypeBit(name.get<std::string>()) : std::nullopt;
          if (!bit)
            return Error(where, key, absl::StrCat(name.dump(), " is not a JSON Schema type"));
          types |= *bit;
        }
        nodes_[index].types = types;
      } else if (key == "properties") {
        if (!value.is_object()) return Error(where, key, "must be an object");
        for (const auto& [name, sub] : value.items()) {
          absl::StatusOr<int> child = Add(sub, at + "/" + name);
          if (!child.ok()) return child.status();
          nodes_[index].properties[name] = *child;
        }
      } else if (key == "required") {
        if (!value.is_array()) return Error(where, key, "must be an array");
        for (const json& name : value) {
          if (!name.is_string()) return Error(where, key, "must list strings");
          nodes_[index].required.push_back(name.get<std::string>());
        }
      } else if (key == "additionalProperties") {
        if (value.is_boolean()) {
          nodes_[index].additional_allowed = value.get<bool>();
        } else {
          absl::StatusOr<int> child = Add(value, at);
          if (!child.ok()) return child.status();
          nodes_[index].additional_schema = *child;
        }
      } else if (key == "items") {
        if (!value.is_object()) {
          return Error(where, key, "as a list of schemas is not supported");
        }
        absl::StatusOr<int> child = Add(value, at);
        if (!child.ok()) return child.status();
        nodes_[index].items = *child;
      } else if (key == "additionalItems") {
        // Meaningful only beside a list of `items`, which Compile refuses.
        if (!items_is_schema) {
          return Error(where, key, "without a single-schema items");
        }
      } else if (key == "minItems" || key == "maxItems" || key == "minLength" ||
                 key == "maxLength") {
        absl::StatusOr<uint64_t> n = Count(where, key, value);
        if (!n.ok()) return n.status();
        Node& node = nodes_[index];
        (key == "minItems"    ? node.min_items
         : key == "maxItems"  ? node.max_items
         : key == "minLength" ? node.min_length
                              : node.max_length) = *n;
      } else if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
                 key == "exclusiveMaximum" || key == "multipleOf") {
        absl::StatusOr<double> d = Bound(where, key, value);
        if (!d.ok()) return d.status();
        if (key == "multipleOf" && !(*d > 0)) {
          return Error(where, key, "must be greater than 0");
        }
        Node& node = nodes_[index];
        (key == "minimum"            ? node.minimum
         : key == "maximum"          ? node.maximum
         : key == "exclusiveMinimum" ? node.exclusive_minimum
         : key == "exclusiveMaximum" ? node.exclusive_maximum
                                     : node.multiple_of) = *d;
      } else if (key == "enum") {
        if (!value.is_array() || value.empty()) {
          return Error(where, key, "must be a non-empty array");
        }
        nodes_[index].enum_values.assign(value.begin(), value.end());
      } else if (key == "const") {
        nodes_[index].const_value = value;
      } else if (key == "format") {
        const std::string format = value.is_string() ? value.get<std::string>() : "";
        if (format == "date-time") {
          nodes_[index].format = Node::Format::kDateTime;
        } else if (format == "uri") {
          nodes_[index].format = Node::Format::kUri;
        } else {
          return Error(where, key,
                       absl::StrCat(value.dump(), " is not supported (date-time and uri are)"));
        }
      } else {
        return Error(where, key, "is not supported by this validator");
      }
    }
    return absl::OkStatus();
  }

  const json& root_;
  std::vector<Node> nodes_;
  absl::flat_hash_map<std::string, int> definitions_;
};

absl::StatusOr<JsonSchema> JsonSchema::Compile(const nlohmann::json& schema) {
  absl::StatusOr<std::vector<Node>> nodes = Compiler(schema).Run();
  if (!nodes.ok()) return nodes.status();
  JsonSchema compiled;
  compiled.nodes_ = *std::move(nodes);
  return compiled;
}

std::optional<SchemaViolation> JsonSchema::Validate(const nlohmann::json& value) const {
  std::optional<SchemaViolation> out;
  std::string pointer;
  Check(0, value, pointer, out);
  return out;
}

void JsonSchema::Check(int index, const json& value, std::string& pointer,
                       std::optional<SchemaViolation>& out) const {
  // A chain of $ref aliases ends at a node with constraints; a cycle of
  // aliases alone ("a": {"$ref": "#/definitions/b"}, "b": {"$ref": ...a})
  // constrains nothing.
  for (size_t hops = 0; nodes_[index].ref >= 0; ++hops) {
    if (hops > nodes_.size()) return;
    index = nodes_[index].ref;
  }
  const Node& node = nodes_[index];
  auto fail = [&](SchemaRule rule, std::string message) {
    out = SchemaViolation{rule, pointer, std::move(message)};
  };

  if (!HasType(node.types, value)) {
    return fail(SchemaRule::kType,
                absl::StrCat("must be ", TypeNames(node.types), ", is ", ValueTypeName(value)));
  }
  if (!node.enum_values.empty()) {
    bool listed = false;
    for (const json& allowed : node.enum_values) listed |= allowed == value;
    if (!listed) {
      std::vector<std::string> names;
      for (const json& allowed : node.enum_values) names.push_back(allowed.dump());
      return fail(SchemaRule::kEnum,
                  absl::StrCat(value.dump(), " is not one of ", absl::StrJoin(names, ", ")));
    }
  }
  if (node.const_value && *node.const_value != value) {
    return fail(SchemaRule::kConst, absl::StrCat("must be ", node.const_value->dump()));
  }

  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    const uint64_t length = CodePoints(s);
    if (node.max_length && length > *node.max_length) {
      return fail(SchemaRule::kMaxLength,
                  absl::StrCat("must be at most ", *node.max_length, " characters, has ", length));
    }
    if (node.min_length && length < *node.min_length) {
      return fail(SchemaRule::kMinLength,
                  absl::StrCat("must be at least ", *node.min_length, " characters, has ", length));
    }
    if (node.format == Node::Format::kDateTime && !IsRfc3339DateTime(s)) {
      return fail(SchemaRule::kFormat, absl::StrCat(value.dump(),
                                                    " is not an RFC 3339 date-time with offset "
                                                    "(e.g. 2026-12-05T19:30:00Z)"));
    }
    if (node.format == Node::Format::kUri && !IsRfc3986Uri(s)) {
      return fail(SchemaRule::kFormat, absl::StrCat(value.dump(), " is not an absolute URI"));
    }
  } else if (value.is_number()) {
    const double d = value.get<double>();
    if (node.minimum && d < *node.minimum) {
      return fail(SchemaRule::kMinimum,
                  absl::StrCat("must be at least ", Number(*node.minimum), ", is ", value.dump()));
    }
    if (node.maximum && d > *node.maximum) {
      return fail(SchemaRule::kMaximum,
                  absl::StrCat("must be at most ", Number(*node.maximum), ", is ", value.dump()));
    }
    if (node.exclusive_minimum && d <= *node.exclusive_minimum) {
      return fail(
          SchemaRule::kExclusiveMinimum,
          absl::StrCat("must be above ", Number(*node.exclusive_minimum), ", is ", value.dump()));
    }
    if (node.exclusive_maximum && d >= *node.exclusive_maximum) {
      return fail(
          SchemaRule::kExclusiveMaximum,
          absl::StrCat("must be below ", Number(*node.exclusive_maximum), ", is ", value.dump()));
    }
    if (node.multiple_of) {
      const double quotient = d / *node.multiple_of;
      const double tolerance = 1e-9 * std::max(1.0, std::fabs(quotient));
      if (!std::isfinite(quotient) || std::fabs(quotient - std::round(quotient)) > tolerance) {
        return fail(SchemaRule::kMultipleOf,
                    absl::StrCat("must be a multiple of ", Number(*node.multiple_of), ", is ",
                                 value.dump()));
      }
    }
  } else if (value.is_array()) {
    if (node.min_items && value.size() < *node.min_items) {
      return fail(SchemaRule::kMinItems, absl::StrCat("must have at least ", *node.min_items,
                                                      " items, has ", value.size()));
    }
    if (node.max_items && value.size() > *node.max_items) {
      return fail(SchemaRule::kMaxItems, absl::StrCat("must have at most ", *node.max_items,
                                                      " items, has ", value.size()));
    }
    if (node.items >= 0) {
      const size_t length = pointer.size();
      for (size_t i = 0; i < value.size() && !out; ++i) {
        AppendPointerToken(pointer, std::to_string(i));
        Check(node.items, value[i], pointer, out);
        pointer.resize(length);
      }
    }
  } else if (value.is_object()) {
    for (const std::string& name : node.required) {
      if (!value.contains(name)) {
        return fail(SchemaRule::kRequired, absl::StrCat("misses required property '", name, "'"));
      }
    }
    const size_t length = pointer.size();
    for (const auto& [name, member] : value.items()) {
      int child = -1;
      if (const auto it = node.properties.find(name); it != node.properties.end()) {
        child = it->second;
      } else if (node.additional_schema >= 0) {
        child = node.additional_schema;
      } else if (!node.additional_allowed) {
        return fail(SchemaRule::kAdditionalProperty,
                    absl::StrCat("has property '", name, "', which is not allowed here"));
      }
      if (child < 0) continue;
      AppendPointerToken(pointer, name);
      Check(child, member, pointer, out);
      if (out) return;
      pointer.resize(length);
    }
  }
}

}  // namespace evgate::ocpp
