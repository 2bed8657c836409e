// Internal HDF5 helpers: the H5_CHECK macro and RAII handles.
//
// H5_CHECK(expr, what...) evaluates an HDF5 call once; a negative result (herr_t < 0 or
// hid_t < 0) throws DataError with `what` (which names the file and dataset), the call text and
// the messages of the HDF5 error stack (automatic printing of that stack is turned off).
#pragma once

#include "conflux/core/dtype.h"
#include "conflux/core/error.h"

#include <hdf5.h>

#include <string>

namespace conflux::dataplane::h5 {

// Turns off HDF5's automatic error printing (idempotent; called by every entry point).
void quiet();
// The current HDF5 error stack as one line (major/minor descriptions), then cleared.
std::string error_stack();

// HDF5 types of an element type (core's DType table; a field's role fixes its DType): the
// little-endian type stored in files, the native type for reading and writing memory, and whether
// a dataset's stored type holds that element type. InternalError for a DType HDF5 cannot store.
hid_t file_type(DType t);
hid_t native_type(DType t);
bool type_matches(hid_t type, DType t);

// An owned hid_t closed with the right H5*close function.
class Handle {
 public:
  enum class Kind { File, Dataset, Dataspace, Datatype, Plist, Group, Attribute };
  Handle() = default;
  Handle(hid_t id, Kind kind) : id_(id), kind_(kind) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), kind_(o.kind_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      kind_ = o.kind_;
      o.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  void reset();
  // Closes now and reports a failure (files: flush errors surface here).
  void close_checked(const std::string& what);

 private:
  hid_t id_ = -1;
  Kind kind_ = Kind::File;
};

}  // namespace conflux::dataplane::h5

#define H5_CHECK(expr, ...)                                                                    \
  ([&]() {                                                                                     \
    auto h5_check_result_ = (expr);                                                            \
    if (h5_check_result_ < 0) {                                                                \
      CONFLUX_THROW(DataError, "{}: HDF5 call {} failed: {}", ::fmt::format(__VA_ARGS__), #expr, \
                    ::conflux::dataplane::h5::error_stack());                                  \
    }                                                                                          \
    return h5_check_result_;                                                                   \
  }())
