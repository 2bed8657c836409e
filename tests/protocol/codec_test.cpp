// Unit tests of the pure protocol layer: encode/decode/reassemble round trips for every dtype
// (single and chunked), every rejection path of the decoder, replay protection, reduce_sum
// reference values, key files and allow-lists.
#include "test_util.h"
#include "scratch_dir.h"

#include <conflux/core/error.h>
#include <conflux/protocol/executor.h>
#include <conflux/protocol/keys.h>
#include <conflux/protocol/worker.h>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

using namespace conflux;
using namespace conflux::protocol;
using namespace conflux::protocol::test;

namespace {

Message task_message(std::vector<Tensor> tensors) {
  Message m;
  m.header.set_version(kProtocolVersion);
  m.header.set_type(wire::TASK);
  m.header.set_job_id("job");
  m.header.set_task_id(7);
  m.header.set_round(3);
  m.header.set_sender("coordinator");
  m.header.set_instance(42);
  m.header.mutable_task()->set_kind("reduce_sum");
  m.header.mutable_task()->set_attempt(1);
  m.tensors = std::move(tensors);
  return m;
}

// Encodes and pushes every wire message through decode + guard + reassembler.
std::vector<Message> round_trip(const Message& m, uint64_t chunk, size_t* wire_count = nullptr) {
  uint64_t seq = 1;
  auto wires = encode(m, chunk, &seq);
  if (wire_count) *wire_count = wires.size();
  SequenceGuard guard;
  Reassembler re;
  std::vector<Message> out;
  for (auto& w : wires) {
    auto r = decode_frames(to_frames(w), Limits());
    EXPECT_TRUE(r.ok()) << r.error.message;
    if (!r.ok()) return out;
    EXPECT_FALSE(guard.check(r.value->header.instance(), r.value->header.sequence()).has_value());
    auto o = re.feed(std::move(*r.value));
    EXPECT_NE(o.kind, Reassembler::Outcome::Failed) << o.error.message;
    if (o.kind == Reassembler::Outcome::Complete) out.push_back(std::move(o.message));
  }
  return out;
}

DecodeError decode_error(const std::vector<FrameRef>& frames, Limits limits = Limits()) {
  auto r = decode_frames(frames, limits);
  EXPECT_FALSE(r.ok());
  return r.error;
}

// A valid single-message encoding whose header the test then edits.
struct Mutable {
  wire::Header header;
  std::vector<FrameRef> frames;
  std::vector<FrameRef> build() const {
    std::vector<FrameRef> f = frames;
    f[0] = string_frame(header.SerializeAsString());
    return f;
  }
};

Mutable valid_single() {
  uint64_t seq = 1;
  auto wires = encode(task_message({make_tensor("a", DType::F32, {4, 3}, 1),
                                    make_tensor("b", DType::I64, {5}, 2)}),
                      1 << 20, &seq);
  Mutable m;
  m.frames = to_frames(wires.at(0));
  m.header.ParseFromArray(m.frames[0].data, static_cast<int>(m.frames[0].size));
  return m;
}

}  // namespace

TEST(ProtocolCodec, RoundTripEveryDtypeUnchunked) {
  std::vector<Tensor> in;
  for (DType dt : all_dtypes()) in.push_back(make_tensor(std::string(dtype_name(dt)), dt, {3, 5, 2}, 11));
  in.push_back(make_tensor("scalar", DType::F64, {}, 3));
  in.push_back(make_tensor("empty", DType::F32, {0, 4}, 4));
  size_t wires = 0;
  auto out = round_trip(task_message(in), 1 << 20, &wires);
  EXPECT_EQ(wires, 1u);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(out[0].tensors[i].equals(in[i])) << i;
  EXPECT_EQ(out[0].header.task_id(), 7u);
  EXPECT_EQ(out[0].header.round(), 3u);
  EXPECT_EQ(out[0].header.task().kind(), "reduce_sum");
}

TEST(ProtocolCodec, RoundTripEveryDtypeChunked) {
  std::vector<Tensor> in;
  for (DType dt : all_dtypes()) in.push_back(make_tensor(std::string(dtype_name(dt)), dt, {1000, 37}, 5));
  uint64_t total = 0;
  for (auto& t : in) total += t.byte_length();
  const uint64_t chunk = 65536 + 13;  // odd size: pieces straddle tensor boundaries
  size_t wires = 0;
  auto out = round_trip(task_message(in), chunk, &wires);
  EXPECT_EQ(wires, (total + chunk - 1) / chunk);
  ASSERT_EQ(out.size(), 1u);
  for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(out[0].tensors[i].equals(in[i])) << i;
}

TEST(ProtocolCodec, UnchunkedTensorsAreNotCopied) {
  uint64_t seq = 1;
  auto wires = encode(task_message({make_tensor("a", DType::F32, {1024}, 1)}), 1 << 20, &seq);
  auto frames = to_frames(wires[0]);
  auto r = decode_frames(frames, Limits());
  ASSERT_TRUE(r.ok());
  Reassembler re;
  auto o = re.feed(std::move(*r.value));
  ASSERT_EQ(o.kind, Reassembler::Outcome::Complete);
  EXPECT_EQ(o.message.tensors[0].data(), frames[1].data);  // adopted, zero-copy
}

TEST(ProtocolCodec, EncodeRejectsInconsistentTensor) {
  Message m = task_message({});
  auto buf = std::make_shared<std::vector<uint8_t>>(10);
  // Tensor::adopt itself refuses a wrong size.
  EXPECT_THROW(Tensor::adopt("x", DType::F32, {3}, buf, buf->data(), 10), DataError);
}

TEST(ProtocolCodec, RejectsGarbageAndEmpty) {
  EXPECT_EQ(decode_error({}).code, wire::MALFORMED);
  EXPECT_EQ(decode_error({string_frame("\xff\xff\xff\xff garbage")}).code, wire::MALFORMED);
  Limits small;
  small.max_header_bytes = 16;
  EXPECT_EQ(decode_error(valid_single().build(), small).code, wire::TOO_LARGE);
}

TEST(ProtocolCodec, RejectsWrongVersionTypeAndIds) {
  auto m = valid_single();
  m.header.set_version(1);  // a v1 peer: CANCEL and error kinds are not optional
  auto e = decode_error(m.build());
  EXPECT_EQ(e.code, wire::UNSUPPORTED_VERSION);
  EXPECT_EQ(e.ref_sequence, 1u);
  m = valid_single();
  m.header.set_type(static_cast<wire::MessageType>(99));
  EXPECT_EQ(decode_error(m.build()).code, wire::BAD_TYPE);
  m = valid_single();
  m.header.set_type(wire::RESULT);  // body is a task
  EXPECT_EQ(decode_error(m.build()).code, wire::MALFORMED);
  m = valid_single();
  m.header.set_sequence(0);
  EXPECT_EQ(decode_error(m.build()).code, wire::MALFORMED);
  m = valid_single();
  m.header.set_instance(0);
  EXPECT_EQ(decode_error(m.build()).code, wire::MALFORMED);
}

TEST(ProtocolCodec, RejectsBadDtypesAndShapes) {
  auto m = valid_single();
  m.header.mutable_tensors(0)->set_dtype(static_cast<wire::DType>(42));
  EXPECT_EQ(decode_error(m.build()).code, wire::BAD_DTYPE);
  m = valid_single();
  m.header.mutable_tensors(0)->set_shape(0, 5);  // 5*3*4 != 48
  EXPECT_EQ(decode_error(m.build()).code, wire::BAD_SHAPE);
  m = valid_single();
  m.header.mutable_tensors(0)->set_shape(0, -4);
  EXPECT_EQ(decode_error(m.build()).code, wire::BAD_SHAPE);
  m = valid_single();
  m.header.mutable_tensors(0)->set_shape(0, int64_t{1} << 62);  // overflows
  EXPECT_EQ(decode_error(m.build()).code, wire::BAD_SHAPE);
  m = valid_single();
  m.header.mutable_tensors(1)->set_name("a");
  EXPECT_EQ(decode_error(m.build()).code, wire::MALFORMED);
  m = valid_single();
  m.header.mutable_tensors(1)->set_name("");
  EXPECT_EQ(decode_error(m.build()).code, wire::MALFORMED);
}

TEST(ProtocolCodec, RejectsSizesThatLie) {
  // Truncated: a payload frame missing.
  auto m = valid_single();
  auto f = m.build();
  f.pop_back();
  EXPECT_EQ(decode_error(f).code, wire::SIZE_MISMATCH);
  // A frame shorter than its piece declares.
  f = m.build();
  f[1] = string_frame(std::string(f[1].size - 1, 'x'));
  EXPECT_EQ(decode_error(f).code, wire::SIZE_MISMATCH);
  // Piece lengths and tensor byte lengths both lie consistently larger than the frames.
  m = valid_single();
  m.header.mutable_pieces(0)->set_length(1000);
  EXPECT_EQ(decode_error(m.build()).code, wire::SIZE_MISMATCH);
  // Piece points at the wrong place.
  m = valid_single();
  m.header.mutable_pieces(1)->set_offset(8);
  EXPECT_EQ(decode_error(m.build()).code, wire::SIZE_MISMATCH);
  // Extra frame.
  f = valid_single().build();
  f.push_back(string_frame("extra"));
  EXPECT_EQ(decode_error(f).code, wire::SIZE_MISMATCH);
}

TEST(ProtocolCodec, RejectsHugeDeclarations) {
  auto m = valid_single();
  auto* t = m.header.add_tensors();
  t->set_name("huge");
  t->set_dtype(wire::FLOAT64);
  t->add_shape(int64_t{1} << 40);
  t->set_byte_length(uint64_t{8} << 40);  // 8 TiB, consistent with the shape
  EXPECT_EQ(decode_error(m.build()).code, wire::TOO_LARGE);
  Limits few;
  few.max_tensors = 1;
  EXPECT_EQ(decode_error(valid_single().build(), few).code, wire::TOO_LARGE);
  Limits small_frames;
  small_frames.max_frame_bytes = 8;
  EXPECT_EQ(decode_error(valid_single().build(), small_frames).code, wire::TOO_LARGE);
}

TEST(ProtocolCodec, SequenceGuardRejectsReplays) {
  SequenceGuard g;
  EXPECT_FALSE(g.check(10, 1));
  EXPECT_FALSE(g.check(10, 2));
  EXPECT_FALSE(g.check(10, 5));  // gaps are fine
  auto e = g.check(10, 5);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, wire::STALE);
  EXPECT_EQ(g.check(10, 3)->code, wire::STALE);
  EXPECT_FALSE(g.check(11, 1));                   // new sender instance starts over
  EXPECT_EQ(g.check(10, 99)->code, wire::STALE);  // the retired instance cannot come back
  EXPECT_EQ(g.check(0, 1)->code, wire::MALFORMED);
}

TEST(ProtocolCodec, ChunkErrorsAreDetected) {
  std::vector<Tensor> in{make_tensor("w", DType::F32, {4096}, 9)};
  uint64_t seq = 1;
  auto wires = encode(task_message(in), 4096, &seq);
  ASSERT_EQ(wires.size(), 4u);
  auto decode = [](const WireMessage& w) { return std::move(*decode_frames(to_frames(w), Limits()).value); };
  {  // Skipping a chunk.
    Reassembler re;
    EXPECT_EQ(re.feed(decode(wires[0])).kind, Reassembler::Outcome::Pending);
    auto o = re.feed(decode(wires[2]));
    EXPECT_EQ(o.kind, Reassembler::Outcome::Failed);
    EXPECT_EQ(o.error.code, wire::CHUNK_ERROR);
  }
  {  // A middle chunk with no transfer.
    Reassembler re;
    EXPECT_EQ(re.feed(decode(wires[1])).error.code, wire::CHUNK_ERROR);
  }
  {  // A later chunk that changes the task id.
    Reassembler re;
    re.feed(decode(wires[0]));
    auto d = decode(wires[1]);
    d.header.set_task_id(8);
    EXPECT_EQ(re.feed(std::move(d)).error.code, wire::CHUNK_ERROR);
  }
  {  // Chunk 1 with a body is refused by the decoder.
    auto f = to_frames(wires[1]);
    wire::Header h;
    h.ParseFromArray(f[0].data, static_cast<int>(f[0].size));
    h.mutable_task()->set_kind("x");
    f[0] = string_frame(h.SerializeAsString());
    EXPECT_EQ(decode_error(f).code, wire::CHUNK_ERROR);
  }
  {  // Transfer ends early: every chunk claims count 3 of what is a 4-chunk transfer.
    Reassembler re;
    std::vector<Reassembler::Outcome::Kind> kinds;
    Reassembler::Outcome last;
    for (int k = 0; k < 3; ++k) {
      auto d = decode(wires[k]);
      d.header.mutable_chunk()->set_count(3);
      last = re.feed(std::move(d));
      kinds.push_back(last.kind);
    }
    EXPECT_EQ(kinds[0], Reassembler::Outcome::Pending);
    EXPECT_EQ(kinds[1], Reassembler::Outcome::Pending);
    EXPECT_EQ(kinds[2], Reassembler::Outcome::Failed);
    EXPECT_EQ(last.error.code, wire::SIZE_MISMATCH);
  }
}

TEST(ProtocolExecutor, ReduceSumReferenceValues) {
  auto f32 = [](std::vector<float> v) { return Tensor::from_vector("x", DType::F32, {int64_t(v.size())}, v); };
  Tensor s = reduce_sum({f32({1.5f, 2.25f}), f32({0.25f, -1.0f}), f32({1.0f, 0.0f})});
  EXPECT_EQ(s.name(), "sum");
  EXPECT_EQ(s.as<float>()[0], 2.75f);
  EXPECT_EQ(s.as<float>()[1], 1.25f);
  Tensor i32 = reduce_sum({Tensor::from_vector("a", DType::I32, {2}, std::vector<int32_t>{INT32_MAX, -5}),
                           Tensor::from_vector("b", DType::I32, {2}, std::vector<int32_t>{1, 7})});
  EXPECT_EQ(i32.as<int32_t>()[0], INT32_MIN);  // wraps
  EXPECT_EQ(i32.as<int32_t>()[1], 2);
  Tensor u8 = reduce_sum({Tensor::from_vector("a", DType::U8, {1}, std::vector<uint8_t>{250}),
                          Tensor::from_vector("b", DType::U8, {1}, std::vector<uint8_t>{10})});
  EXPECT_EQ(u8.as<uint8_t>()[0], 4);
  Tensor bf = reduce_sum({Tensor::from_vector("a", DType::BF16, {1}, std::vector<uint16_t>{0x3F80}),
                          Tensor::from_vector("b", DType::BF16, {1}, std::vector<uint16_t>{0x3F80})});
  EXPECT_EQ(bf.as<uint16_t>()[0], 0x4000);  // 1 + 1 = 2
  Tensor h = reduce_sum({Tensor::from_vector("a", DType::F16, {1}, std::vector<uint16_t>{0x3800}),
                         Tensor::from_vector("b", DType::F16, {1}, std::vector<uint16_t>{0x3400})});
  EXPECT_EQ(h.as<uint16_t>()[0], 0x3A00);  // 0.5 + 0.25 = 0.75
  Tensor d = reduce_sum({Tensor::from_vector("a", DType::F64, {1}, std::vector<double>{0.1}),
                         Tensor::from_vector("b", DType::F64, {1}, std::vector<double>{0.2})});
  EXPECT_EQ(d.as<double>()[0], 0.1 + 0.2);
  EXPECT_THROW(reduce_sum({f32({1}), f32({1, 2})}), DataError);
  EXPECT_THROW(reduce_sum({}), DataError);
}

TEST(ProtocolKeys, KeygenFilesAndAllowList) {
  std::string dir = conflux::test::make_scratch_dir("conflux-keys-");
  auto kp = generate_keypair();
  write_keypair(dir + "/alice", kp, "alice", false);
  struct stat st {};
  ASSERT_EQ(stat((dir + "/alice.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THROW(write_keypair(dir + "/alice", generate_keypair(), "alice", false), IoError);
  auto back = read_secret_key_file(dir + "/alice.key");
  EXPECT_EQ(back.secret_key, kp.secret_key);
  EXPECT_EQ(back.public_key, kp.public_key);
  EXPECT_EQ(read_public_key_file(dir + "/alice.pub"), kp.public_key);
  auto bob = generate_keypair();
  {
    std::ofstream a(dir + "/allow.txt");
    a << "# workers\n" << kp.public_key << " alice\n\n" << bob.public_key << "   # no name\n";
  }
  auto allow = AllowList::load(dir + "/allow.txt");
  EXPECT_EQ(allow.size(), 2u);
  EXPECT_EQ(allow.identity_for(kp.public_key).value(), "alice");
  EXPECT_EQ(allow.identity_for(bob.public_key).value(), bob.public_key);
  EXPECT_FALSE(allow.identity_for(generate_keypair().public_key));
  {
    std::ofstream a(dir + "/bad.txt");
    a << kp.public_key << " alice\n" << bob.public_key << " alice\n";
  }
  EXPECT_THROW(AllowList::load(dir + "/bad.txt"), DataError);  // two keys, one identity
  {
    std::ofstream a(dir + "/bad2.txt");
    a << "notakey alice\n";
  }
  EXPECT_THROW(AllowList::load(dir + "/bad2.txt"), DataError);
  chmod((dir + "/alice.key").c_str(), 0644);
  EXPECT_THROW(read_secret_key_file(dir + "/alice.key"), DataError);  // readable by others
  EXPECT_EQ(system(("rm -rf " + dir).c_str()), 0);
}

TEST(ProtocolWorker, DataSummaryCountsRowsAndNeverData) {
  char tmpl[] = "/tmp/conflux-ds-XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  std::string dir = std::string(tmpl) + "/alice_data";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  {
    // A manifest in the dataplane's format; the digest below is Python's
    // hashlib.blake2b(text, digest_size=32) of exactly these bytes.
    std::ofstream m(dir + "/manifest.json", std::ios::binary);
    m << R"({"format_version":1,"schema":[{"name":"tokens","role":"tokens","dtype":"int32","shape":[]},)"
      << R"({"name":"label","role":"label","dtype":"int64","shape":[]}],"rows":30,"shards":[)"
      << R"({"file":"part-00000.h5","rows":10,"bytes":100,"sha256":"x"},)"
      << R"({"file":"part-00001.h5","rows":20,"bytes":200,"sha256":"y"}]})";
  }
  auto s = summarize_dataset(dir + "/");
  EXPECT_EQ(s.dataset(), "alice_data");
  EXPECT_EQ(s.rows(), 30u);
  ASSERT_EQ(s.fields_size(), 2);
  EXPECT_EQ(s.fields(0), "tokens");
  EXPECT_EQ(s.fields(1), "label");
  EXPECT_EQ(s.manifest_digest(), "cb212b82979764b02e2c0411ad8930465bb4d3ddbeb758062d4549669c22ae88");
  EXPECT_EQ(s.extra().at("shards"), "2");
  EXPECT_EQ(s.extra().at("format_version"), "1");
  EXPECT_EQ(s.extra().count("error"), 0u);
  auto missing = summarize_dataset(std::string(tmpl) + "/nope");
  EXPECT_EQ(missing.rows(), 0u);
  EXPECT_EQ(missing.extra().at("error"), "no readable manifest.json");
  EXPECT_EQ(system(("rm -rf " + std::string(tmpl)).c_str()), 0);
}
