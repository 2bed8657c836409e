// HDF5 error-stack capture and handle closing for the H5_CHECK macro.
#include "h5.h"

#include <mutex>

namespace conflux::dataplane::h5 {

void quiet() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

namespace {
herr_t walk(unsigned n, const H5E_error2_t* e, void* out) {
  auto* s = static_cast<std::string*>(out);
  char maj[128] = "", min[128] = "";
  H5Eget_msg(e->maj_num, nullptr, maj, sizeof maj);
  H5Eget_msg(e->min_num, nullptr, min, sizeof min);
  if (!s->empty()) *s += "; ";
  *s += std::string(e->func_name ? e->func_name : "?") + ": " + (e->desc ? e->desc : "") + " (" +
        maj + " / " + min + ")";
  return n >= 3 ? 1 : 0;  // the innermost few frames say what went wrong
}
}  // namespace

std::string error_stack() {
  std::string s;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk, &s);
  H5Eclear2(H5E_DEFAULT);
  return s.empty() ? "no HDF5 error stack" : s;
}

static herr_t close_id(hid_t id, Handle::Kind kind) {
  switch (kind) {
    case Handle::Kind::File: return H5Fclose(id);
    case Handle::Kind::Dataset: return H5Dclose(id);
    case Handle::Kind::Dataspace: return H5Sclose(id);
    case Handle::Kind::Datatype: return H5Tclose(id);
    case Handle::Kind::Plist: return H5Pclose(id);
    case Handle::Kind::Group: return H5Gclose(id);
    case Handle::Kind::Attribute: return H5Aclose(id);
  }
  return -1;
}

void Handle::reset() {
  if (id_ >= 0) close_id(id_, kind_);
  id_ = -1;
}

void Handle::close_checked(const std::string& what) {
  if (id_ < 0) return;
  hid_t id = id_;
  id_ = -1;
  H5_CHECK(close_id(id, kind_), "{}", what);
}

hid_t file_type(DType t) {
  switch (t) {
    case DType::F32: return H5T_IEEE_F32LE;
    case DType::F64: return H5T_IEEE_F64LE;
    case DType::I32: return H5T_STD_I32LE;
    case DType::I64: return H5T_STD_I64LE;
    case DType::U8: return H5T_STD_U8LE;
    case DType::BF16:
    case DType::F16: break;
  }
  CONFLUX_THROW(InternalError, "no HDF5 file type for {}", dtype_name(t));
}

hid_t native_type(DType t) {
  switch (t) {
    case DType::F32: return H5T_NATIVE_FLOAT;
    case DType::F64: return H5T_NATIVE_DOUBLE;
    case DType::I32: return H5T_NATIVE_INT32;
    case DType::I64: return H5T_NATIVE_INT64;
    case DType::U8: return H5T_NATIVE_UINT8;
    case DType::BF16:
    case DType::F16: break;
  }
  CONFLUX_THROW(InternalError, "no HDF5 memory type for {}", dtype_name(t));
}

bool type_matches(hid_t type, DType t) {
  const bool floating = t == DType::F32 || t == DType::F64 || t == DType::BF16 || t == DType::F16;
  if (H5Tget_size(type) != dtype_size(t)) return false;
  if (floating) return H5Tget_class(type) == H5T_FLOAT;
  // Signed types must be stored signed; uint8 text accepts either sign (bytes are bytes).
  return H5Tget_class(type) == H5T_INTEGER && (t == DType::U8 || H5Tget_sign(type) == H5T_SGN_2);
}

}  // namespace conflux::dataplane::h5
