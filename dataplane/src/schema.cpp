// Field roles, element types and schema validation.
#include "conflux/dataplane/schema.h"

#include "conflux/core/error.h"

#include <set>

namespace conflux::dataplane {

const char* role_name(Role role) {
  switch (role) {
    case Role::Tokens: return "tokens";
    case Role::Text: return "text";
    case Role::Features: return "features";
    case Role::Label: return "label";
    case Role::Group: return "group";
    case Role::Meta: return "meta";
  }
  return "?";
}

bool parse_role(const std::string& name, Role* out) {
  for (Role r : {Role::Tokens, Role::Text, Role::Features, Role::Label, Role::Group, Role::Meta}) {
    if (name == role_name(r)) {
      *out = r;
      return true;
    }
  }
  return false;
}

DType role_dtype(Role role) {
  switch (role) {
    case Role::Tokens: return DType::I32;
    case Role::Text: return DType::U8;
    case Role::Features: return DType::F32;
    default: return DType::I64;
  }
}

size_t Field::element_size() const { return dtype_size(dtype()); }

int64_t Field::row_width() const {
  if (ragged()) return 0;
  return role == Role::Features ? dim : 1;
}

std::string Field::offsets_name() const {
  return role == Role::Tokens && name == "tokens" ? "offsets" : name + "_offsets";
}

std::vector<int64_t> Field::shape() const {
  if (ragged()) return {-1};
  if (role == Role::Features) return {dim};
  return {};
}

Schema::Schema(std::vector<Field> fields) : fields_(std::move(fields)) {
  std::set<std::string> names;
  for (auto& f : fields_) {
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name.find('.') == 0)
      CONFLUX_THROW(DataError, "schema: invalid field name '{}' (non-empty, no '/', no leading '.')",
                    f.name);
    if (!names.insert(f.name).second) CONFLUX_THROW(DataError, "schema: field '{}' appears twice", f.name);
    if (f.role == Role::Features && f.dim < 1)
      CONFLUX_THROW(DataError, "schema: features field '{}' needs dim >= 1 (got {})", f.name, f.dim);
    if (f.role != Role::Features && f.dim != 0)
      CONFLUX_THROW(DataError, "schema: field '{}' with role {} cannot have a dim", f.name,
                    role_name(f.role));
  }
  for (auto& f : fields_) {
    if (f.ragged() && names.count(f.offsets_name()))
      CONFLUX_THROW(DataError, "schema: field '{}' clashes with the offsets of field '{}'",
                    f.offsets_name(), f.name);
  }
}

int Schema::index_of(const std::string& name) const {
  for (size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i].name == name) return static_cast<int>(i);
  return -1;
}

int Schema::index_of_role(Role role) const {
  for (size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i].role == role) return static_cast<int>(i);
  return -1;
}

size_t Schema::require(const std::string& name) const {
  int i = index_of(name);
  if (i < 0) CONFLUX_THROW(DataError, "field '{}' is not in the schema ({})", name, describe());
  return static_cast<size_t>(i);
}

size_t Schema::require_role(Role role) const {
  int i = index_of_role(role);
  if (i < 0)
    CONFLUX_THROW(DataError, "the dataset has no field with role '{}' (schema: {})", role_name(role),
                  describe());
  return static_cast<size_t>(i);
}

std::string Schema::describe() const {
  std::string s;
  for (auto& f : fields_) {
    if (!s.empty()) s += ", ";
    s += f.name + ":" + role_name(f.role);
    if (f.role == Role::Features) s += "[" + std::to_string(f.dim) + "]";
  }
  return s.empty() ? "(no fields)" : s;
}

}  // namespace conflux::dataplane
