// Table: columnar rows; appends, filters and the byte serialisation used for rank shuffles.
#include "conflux/dataplane/table.h"

#include "conflux/core/error.h"

namespace conflux::dataplane {

Table::Table(Schema schema) : schema_(std::move(schema)), columns_(schema_.size()) {
  for (size_t f = 0; f < schema_.size(); ++f)
    if (schema_[f].ragged()) columns_[f].offsets.push_back(0);
}

std::string_view Table::row_bytes(size_t f, int64_t r) const {
  const Field& fd = schema_[f];
  const Column& c = columns_[f];
  size_t es = fd.element_size();
  if (fd.ragged())
    return {reinterpret_cast<const char*>(c.data.data()) + c.offsets[r] * es,
            static_cast<size_t>(c.offsets[r + 1] - c.offsets[r]) * es};
  size_t w = static_cast<size_t>(fd.row_width()) * es;
  return {reinterpret_cast<const char*>(c.data.data()) + r * w, w};
}

void Table::append_row(const std::vector<std::string_view>& field_bytes) {
  if (field_bytes.size() != schema_.size())
    CONFLUX_THROW(DataError, "row has {} fields, schema has {} ({})", field_bytes.size(),
                  schema_.size(), schema_.describe());
  for (size_t f = 0; f < schema_.size(); ++f) {
    const Field& fd = schema_[f];
    size_t es = fd.element_size();
    const auto& b = field_bytes[f];
    if (fd.ragged() ? b.size() % es != 0 : b.size() != static_cast<size_t>(fd.row_width()) * es)
      CONFLUX_THROW(DataError, "field '{}': {} bytes do not fit its layout ({} bytes per element{})",
                    fd.name, b.size(), es,
                    fd.ragged() ? "" : fmt::format(", {} elements per row", fd.row_width()));
  }
  for (size_t f = 0; f < schema_.size(); ++f) {
    Column& c = columns_[f];
    c.data.insert(c.data.end(), field_bytes[f].begin(), field_bytes[f].end());
    if (schema_[f].ragged())
      c.offsets.push_back(c.offsets.back() +
                          static_cast<int64_t>(field_bytes[f].size() / schema_[f].element_size()));
  }
  ++rows_;
}

void Table::append_row_from(const Table& src, int64_t r) {
  for (size_t f = 0; f < schema_.size(); ++f) {
    auto b = src.row_bytes(f, r);
    Column& c = columns_[f];
    c.data.insert(c.data.end(), b.begin(), b.end());
    if (schema_[f].ragged())
      c.offsets.push_back(c.offsets.back() + static_cast<int64_t>(b.size() / schema_[f].element_size()));
  }
  ++rows_;
}

void Table::append(const Table& src) {
  if (src.schema_ != schema_)
    CONFLUX_THROW(DataError, "cannot append rows with schema ({}) to a table with schema ({})",
                  src.schema_.describe(), schema_.describe());
  for (size_t f = 0; f < schema_.size(); ++f) {
    Column& c = columns_[f];
    const Column& s = src.columns_[f];
    if (schema_[f].ragged()) {
      int64_t base = c.offsets.back();
      c.offsets.reserve(c.offsets.size() + s.offsets.size() - 1);
      for (size_t i = 1; i < s.offsets.size(); ++i) c.offsets.push_back(base + s.offsets[i]);
    }
    c.data.insert(c.data.end(), s.data.begin(), s.data.end());
  }
  rows_ += src.rows_;
}

void Table::append_range(const Table& src, int64_t begin, int64_t end) {
  for (size_t f = 0; f < schema_.size(); ++f) {
    const Field& fd = schema_[f];
    Column& c = columns_[f];
    const Column& s = src.columns_[f];
    size_t es = fd.element_size();
    if (fd.ragged()) {
      int64_t base = c.offsets.back() - s.offsets[begin];
      for (int64_t r = begin + 1; r <= end; ++r) c.offsets.push_back(base + s.offsets[r]);
      c.data.insert(c.data.end(), s.data.begin() + s.offsets[begin] * es, s.data.begin() + s.offsets[end] * es);
    } else {
      size_t w = static_cast<size_t>(fd.row_width()) * es;
      c.data.insert(c.data.end(), s.data.begin() + begin * w, s.data.begin() + end * w);
    }
  }
  rows_ += end - begin;
}

void Table::filter(const std::vector<uint8_t>& keep) {
  CONFLUX_CHECK(static_cast<int64_t>(keep.size()) == rows_, "keep mask has {} entries for {} rows",
                keep.size(), rows_);
  for (size_t f = 0; f < schema_.size(); ++f) {
    const Field& fd = schema_[f];
    Column& c = columns_[f];
    size_t es = fd.element_size();
    size_t out = 0;
    // Runs of kept rows move with one memmove each (rows before the first drop do not move).
    if (fd.ragged()) {
      int64_t acc = 0;
      size_t orow = 0;
      for (int64_t r = 0; r < rows_;) {
        if (!keep[r]) {
          ++r;
          continue;
        }
        const int64_t first = c.offsets[r], acc0 = acc;  // offsets[r] is still the original here
        int64_t e = r;
        while (e < rows_ && keep[e]) {
          acc += c.offsets[e + 1] - c.offsets[e];
          c.offsets[++orow] = acc;  // index <= e + 1, and equal only while nothing was dropped
          ++e;
        }
        const size_t nb = static_cast<size_t>(acc - acc0) * es, src = static_cast<size_t>(first) * es;
        if (out != src && nb) std::memmove(&c.data[out], &c.data[src], nb);
        out += nb;
        r = e;
      }
      c.offsets.resize(orow + 1);
    } else {
      size_t w = static_cast<size_t>(fd.row_width()) * es;
      for (int64_t r = 0; r < rows_;) {
        if (!keep[r]) {
          ++r;
          continue;
        }
        int64_t e = r;
        while (e < rows_ && keep[e]) ++e;
        size_t nb = static_cast<size_t>(e - r) * w;
        if (out != static_cast<size_t>(r) * w) std::memmove(&c.data[out], &c.data[static_cast<size_t>(r) * w], nb);
        out += nb;
        r = e;
      }
    }
    c.data.resize(out);
  }
  int64_t n = 0;
  for (auto k : keep) n += k ? 1 : 0;
  rows_ = n;
}

void Table::reserve_rows(int64_t rows) {
  for (size_t f = 0; f < schema_.size(); ++f) {
    if (schema_[f].ragged())
      columns_[f].offsets.reserve(rows + 1);
    else
      columns_[f].data.reserve(rows * schema_[f].row_width() * schema_[f].element_size());
  }
}

void Table::clear() {
  for (size_t f = 0; f < schema_.size(); ++f) {
    columns_[f].data.clear();
    columns_[f].offsets.assign(schema_[f].ragged() ? 1 : 0, 0);
  }
  rows_ = 0;
}

// Layout: u64 rows, then per field: ragged -> u64 element counts[rows], then the values; fixed ->
// the values.
std::vector<uint8_t> Table::serialize(int64_t begin, int64_t end) const {
  std::vector<uint8_t> out;
  auto put = [&out](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  uint64_t n = static_cast<uint64_t>(end - begin);
  put(&n, 8);
  for (size_t f = 0; f < schema_.size(); ++f) {
    const Field& fd = schema_[f];
    const Column& c = columns_[f];
    size_t es = fd.element_size();
    if (fd.ragged()) {
      for (int64_t r = begin; r < end; ++r) {
        uint64_t len = static_cast<uint64_t>(c.offsets[r + 1] - c.offsets[r]);
        put(&len, 8);
      }
      put(c.data.data() + c.offsets[begin] * es, static_cast<size_t>(c.offsets[end] - c.offsets[begin]) * es);
    } else {
      size_t w = static_cast<size_t>(fd.row_width()) * es;
      put(c.data.data() + begin * w, static_cast<size_t>(end - begin) * w);
    }
  }
  return out;
}

void Table::append_serialized(const uint8_t* data, size_t size) {
  size_t pos = 0;
  auto need = [&](size_t n) {
    if (pos + n > size)
      CONFLUX_THROW(InternalError, "serialised rows truncated: need {} bytes at {}, have {}", n, pos, size);
  };
  while (pos < size) {
    need(8);
    uint64_t n;
    std::memcpy(&n, data + pos, 8);
    pos += 8;
    for (size_t f = 0; f < schema_.size(); ++f) {
      const Field& fd = schema_[f];
      Column& c = columns_[f];
      size_t es = fd.element_size();
      if (fd.ragged()) {
        need(n * 8);
        int64_t total = 0;
        for (uint64_t r = 0; r < n; ++r) {
          uint64_t len;
          std::memcpy(&len, data + pos + r * 8, 8);
          total += static_cast<int64_t>(len);
          c.offsets.push_back(c.offsets.back() + static_cast<int64_t>(len));
        }
        pos += n * 8;
        need(total * es);
        c.data.insert(c.data.end(), data + pos, data + pos + total * es);
        pos += total * es;
      } else {
        size_t nb = n * static_cast<size_t>(fd.row_width()) * es;
        need(nb);
        c.data.insert(c.data.end(), data + pos, data + pos + nb);
        pos += nb;
      }
    }
    rows_ += static_cast<int64_t>(n);
  }
}

void Table::check() const {
  for (size_t f = 0; f < schema_.size(); ++f) {
    const Field& fd = schema_[f];
    const Column& c = columns_[f];
    if (fd.ragged()) {
      CONFLUX_CHECK(static_cast<int64_t>(c.offsets.size()) == rows_ + 1, "field {} offsets", fd.name);
      for (int64_t r = 0; r < rows_; ++r)
        CONFLUX_CHECK(c.offsets[r] <= c.offsets[r + 1], "field {} offsets decrease at {}", fd.name, r);
      CONFLUX_CHECK(static_cast<size_t>(c.offsets.back()) * fd.element_size() == c.data.size(),
                    "field {} data size", fd.name);
    } else {
      CONFLUX_CHECK(c.data.size() == static_cast<size_t>(rows_ * fd.row_width()) * fd.element_size(),
                    "field {} data size", fd.name);
    }
  }
}

}  // namespace conflux::dataplane
