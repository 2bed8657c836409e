// Dataset schema: the fields of a Conflux dataset and their roles.
//
// Every field has a role that fixes its on-disk layout and element type (one type per role keeps
// readers simple and the format easy to read from h5py):
//   tokens   int32, ragged  -> datasets /<name> (flat) + /offsets (tokens field) or /<name>_offsets
//   text     uint8, ragged  -> datasets /<name> (UTF-8 bytes, flat) + /<name>_offsets
//   features float32, [d]   -> dataset  /<name> of shape (rows, d)
//   label    int64, scalar  -> dataset  /<name> of shape (rows,)
//   group    int64, scalar  -> dataset  /<name> of shape (rows,)
//   meta     int64, scalar  -> dataset  /<name> of shape (rows,) (aug_source, aug_op: bookkeeping)
// Offsets have rows + 1 int64 entries, start at 0 in every shard and never decrease.
// Thread safety: plain values.
#pragma once

#include "conflux/core/dtype.h"

#include <cstdint>
#include <string>
#include <vector>

namespace conflux::dataplane {

enum class Role : uint8_t { Tokens, Text, Features, Label, Group, Meta };

const char* role_name(Role role);
bool parse_role(const std::string& name, Role* out);
DType role_dtype(Role role);  // the single element type a role uses

struct Field {
  std::string name;
  Role role = Role::Tokens;
  int64_t dim = 0;  // features: number of columns (>= 1); 0 for every other role

  bool ragged() const { return role == Role::Tokens || role == Role::Text; }
  DType dtype() const { return role_dtype(role); }
  size_t element_size() const;
  // Elements per row for fixed-size fields (features: dim, scalars: 1); 0 for ragged ones.
  int64_t row_width() const;
  // Name of the HDF5 dataset holding offsets (ragged fields): "offsets" for a tokens field named
  // "tokens", otherwise "<name>_offsets".
  std::string offsets_name() const;
  // Per-row shape as written in the manifest: [] scalar, [d] features, [-1] ragged.
  std::vector<int64_t> shape() const;
  bool operator==(const Field& o) const {
    return name == o.name && role == o.role && dim == o.dim;
  }
};

class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields);  // validates names/roles (throws DataError)

  const std::vector<Field>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  const Field& operator[](size_t i) const { return fields_[i]; }
  // Index of the field named `name`, or -1.
  int index_of(const std::string& name) const;
  // Index of the first field with `role`, or -1.
  int index_of_role(Role role) const;
  // Like index_of but throws DataError naming the field and the available ones.
  size_t require(const std::string& name) const;
  size_t require_role(Role role) const;
  bool operator==(const Schema& o) const { return fields_ == o.fields_; }
  bool operator!=(const Schema& o) const { return !(*this == o); }
  std::string describe() const;  // "tokens:tokens, text:text, label:label"

 private:
  std::vector<Field> fields_;
};

}  // namespace conflux::dataplane
