// Writes the seed corpus for decoder_fuzz (valid messages of every type, tensors of every dtype,
// a chunked transfer) in the fuzz input layout. Usage: make_seeds DIR
#include "fuzz_input.h"

#include <conflux/protocol/codec.h>

#include <fstream>
#include <iostream>

using namespace conflux;
using namespace conflux::protocol;

namespace {

std::vector<std::string> wire_frames(const WireMessage& w) {
  std::vector<std::string> f{w.header};
  for (auto& p : w.frames) f.emplace_back(reinterpret_cast<const char*>(p.data), p.size);
  return f;
}

Message base(MessageType type) {
  Message m;
  m.header.set_version(kProtocolVersion);
  m.header.set_type(type);
  m.header.set_job_id("job");
  m.header.set_task_id(type == wire::TASK || type == wire::RESULT ? 5 : 0);
  m.header.set_sender("alice");
  m.header.set_instance(0x1234);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds DIR\n";
    return 2;
  }
  std::vector<std::pair<std::string, std::vector<Message>>> seeds;
  Message hello = base(wire::HELLO);
  hello.header.mutable_hello()->set_name("alice");
  hello.header.mutable_hello()->add_task_kinds("reduce_sum");
  hello.header.mutable_hello()->mutable_data()->set_rows(1000);
  seeds.push_back({"hello", {hello}});
  Message welcome = base(wire::WELCOME);
  welcome.header.mutable_welcome()->set_identity("alice");
  seeds.push_back({"welcome", {welcome}});
  Message hb = base(wire::HEARTBEAT);
  hb.header.mutable_heartbeat();
  seeds.push_back({"heartbeat", {hb}});
  Message err = base(wire::ERROR);
  err.header.mutable_error()->set_code(wire::STALE);
  err.header.mutable_error()->set_message("stale");
  seeds.push_back({"error", {err}});
  Message bye = base(wire::BYE);
  bye.header.mutable_bye()->set_reason("done");
  seeds.push_back({"bye", {bye}});
  Message task = base(wire::TASK);
  task.header.mutable_task()->set_kind("reduce_sum");
  task.header.mutable_task()->set_attempt(1);
  const DType all[] = {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32, DType::I64, DType::U8};
  int i = 0;
  for (DType dt : all) {
    Tensor t = Tensor::allocate("t" + std::to_string(i), dt, {2, 3});
    for (size_t b = 0; b < t.byte_length(); ++b) t.mutable_data()[b] = static_cast<uint8_t>(b * 7 + i);
    task.tensors.push_back(t);
    ++i;
  }
  task.tensors.push_back(Tensor::allocate("empty", DType::F32, {0}));
  seeds.push_back({"task_all_dtypes", {task}});
  Message result = base(wire::RESULT);
  result.header.mutable_result()->set_kind("reduce_sum");
  result.header.mutable_result()->set_attempt(1);
  result.tensors.push_back(task.tensors[0]);
  seeds.push_back({"result", {result}});
  for (auto& [name, msgs] : seeds) {
    std::string out;
    uint64_t seq = 1;
    for (auto& m : msgs) {
      for (auto& w : encode(m, 1 << 20, &seq)) fuzz::append_message(&out, wire_frames(w));
    }
    std::ofstream(std::string(argv[1]) + "/seed_" + name, std::ios::binary) << out;
  }
  // A chunked transfer: 3 wire messages of one logical task in a single input.
  std::string chunked;
  uint64_t seq = 1;
  Message big = base(wire::TASK);
  big.header.mutable_task()->set_kind("reduce_sum");
  Tensor t = Tensor::allocate("w", DType::F32, {30});
  for (size_t b = 0; b < t.byte_length(); ++b) t.mutable_data()[b] = static_cast<uint8_t>(b);
  big.tensors.push_back(t);
  for (auto& w : encode(big, 48, &seq)) fuzz::append_message(&chunked, wire_frames(w));
  std::ofstream(std::string(argv[1]) + "/seed_chunked", std::ios::binary) << chunked;
  return 0;
}
