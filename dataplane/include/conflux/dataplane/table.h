// Table: an in-memory, columnar batch of rows that follows a Schema. It is what readers return,
// what pipeline stages transform and what writers store.
//
// Layout per column: `data` holds the values of all rows back to back (row-major; features rows
// are `dim` floats); ragged columns also hold `offsets` (rows + 1 element offsets, offsets[0] = 0).
// Rows are addressed 0..rows()-1. Typed views (values<T>) do no conversion: T must match the
// role's dtype (int32 tokens, uint8 text, float features, int64 label/group/meta).
// Thread safety: none; a Table is owned by one thread.
#pragma once

#include "conflux/dataplane/schema.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace conflux::dataplane {

struct Column {
  std::vector<uint8_t> data;
  std::vector<int64_t> offsets;  // ragged only
};

class Table {
 public:
  Table() = default;
  explicit Table(Schema schema);

  const Schema& schema() const { return schema_; }
  int64_t rows() const { return rows_; }
  Column& column(size_t f) { return columns_[f]; }
  const Column& column(size_t f) const { return columns_[f]; }

  // Elements of row r in field f, as a typed pointer and a count.
  template <typename T>
  const T* row(size_t f, int64_t r, int64_t* count) const {
    const Field& fd = schema_[f];
    const Column& c = columns_[f];
    if (fd.ragged()) {
      *count = c.offsets[r + 1] - c.offsets[r];
      return reinterpret_cast<const T*>(c.data.data()) + c.offsets[r];
    }
    *count = fd.row_width();
    return reinterpret_cast<const T*>(c.data.data()) + r * fd.row_width();
  }
  template <typename T>
  T* row_mut(size_t f, int64_t r, int64_t* count) {
    return const_cast<T*>(static_cast<const Table*>(this)->row<T>(f, r, count));
  }
  // Raw bytes of row r in field f.
  std::string_view row_bytes(size_t f, int64_t r) const;
  // All values of field f as a typed array (count in *n).
  template <typename T>
  const T* values(size_t f, size_t* n) const {
    *n = columns_[f].data.size() / sizeof(T);
    return reinterpret_cast<const T*>(columns_[f].data.data());
  }

  // Appends one row given raw bytes per field (ragged: any multiple of the element size; fixed:
  // exactly row_width elements). Throws DataError on a size mismatch.
  void append_row(const std::vector<std::string_view>& field_bytes);
  // Appends row r of `src` (same schema).
  void append_row_from(const Table& src, int64_t r);
  // Appends all rows of `src` (same schema).
  void append(const Table& src);
  // Appends rows [begin, end) of `src` (same schema) with one bulk copy per column.
  void append_range(const Table& src, int64_t begin, int64_t end);
  // Keeps rows whose keep[r] is true, in order.
  void filter(const std::vector<uint8_t>& keep);
  void reserve_rows(int64_t rows);
  void clear();

  // Serialises rows [begin, end) to bytes (for shuffles between ranks) and back.
  std::vector<uint8_t> serialize(int64_t begin, int64_t end) const;
  void append_serialized(const uint8_t* data, size_t size);

  // After filling columns directly (readers, ops that rebuild a column): sets the row count and
  // validates sizes with check().
  void set_rows(int64_t rows) {
    rows_ = rows;
    check();
  }

  // Checks internal consistency (offsets monotone, sizes match); throws InternalError.
  void check() const;

 private:
  Schema schema_;
  std::vector<Column> columns_;
  int64_t rows_ = 0;
};

}  // namespace conflux::dataplane
