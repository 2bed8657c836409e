// Secure aggregation, the cryptographic core (Bonawitz et al. 2017, "Practical Secure Aggregation
// for Privacy-Preserving Machine Learning"; SecAgg+, Bell et al. 2020): the coordinator learns the
// sum of the cohort's quantized updates and nothing about any single one. No networking here: the
// round driver (`conflux federate`, tasks/include/conflux/tasks/secagg_round.h) relays the messages below between participants
// and enforces one deadline per stage (StageDeadlines); this file is the maths and the crypto, built
// on libsodium (X25519, ChaCha20, BLAKE2b, crypto_box).
//
// Message flow of one round (n participants with ids 0..n-1, threshold t, neighbour graph G, which
// is every other participant for SecAgg and a seeded k-regular graph for SecAgg+):
//   0. AdvertiseKeys (deadline advertise_s). Each participant u makes two X25519 key pairs: c_u
//      (encrypts the shares it sends) and s_u (agrees the pairwise masks), and sends
//      KeyAdvertisement{u, c_pk, s_pk} to the coordinator, which binds it to u's CURVE identity.
//      Survivors U1. The coordinator relays to each u the advertisements of its neighbours in U1.
//   1. ShareKeys (deadline share_keys_s). u draws its self-mask seed b_u, Shamir-shares b_u and
//      s_sk_u among itself and its neighbours in U1 (threshold t; u keeps its own share, which
//      counts towards t when u survives), and sends one EncryptedShares per neighbour
//      v (crypto_box from c_u to c_v: the coordinator cannot read it). Needs >= t holders.
//      Survivors U2. The coordinator forwards each ciphertext to its recipient.
//   2. MaskedInput (deadline masked_input_s). u opens the shares addressed to it (their senders are
//      its neighbours in U2) and sends y_u = x_u + PRG(b_u) + sum_{v in N(u) cap U2} sign(u,v)
//      PRG(s_uv) mod 2^bits, with sign +1 for u < v and -1 for u > v, so pairwise masks cancel in
//      the sum; s_uv = BLAKE2b(X25519(s_sk_u, s_pk_v), both public keys, round). Survivors U3.
//   3. Unmasking (deadline unmask_s). The coordinator sends U3 to every survivor. Survivor u answers
//      for itself and each neighbour v in U2: its share of b_v if v is in U3, its share of s_sk_v
//      if v dropped (U2 \ U3), never both for the same v. The coordinator (unmask_sum) rebuilds each b_v
//      and each dropped s_sk_v from >= t shares, removes the self masks and the dropped
//      participants' pairwise masks, and gets sum_{u in U3} x_u mod 2^bits. Fewer than t shares
//      for any needed secret: NotEnoughSharesError (the round fails cleanly).
// A stage that ends, at its deadline, with fewer than t participants (U1, U2, U3) or fewer than t
// unmasking answers fails the round. Security is honest-but-curious with t > n/2 (the paper's
// active-adversary variant adds signatures and a consistency round; not in this slice).
//
// Thread safety: the free functions are re-entrant; a Participant is one participant's state for
// one round, used by one thread. Vectors of uint32_t hold values mod 2^bits (bits <= 32).
#pragma once

#include <conflux/core/error.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace conflux::federated::secagg {

using Key32 = std::array<uint8_t, 32>;

// Per-stage deadlines, in seconds, enforced by the round driver (not here).
struct StageDeadlines {
  double advertise_s = 30;
  double share_keys_s = 30;
  double masked_input_s = 300;  // includes the local training's upload
  double unmask_s = 30;
};

struct Params {
  uint32_t num_participants = 0;  // n, ids 0..n-1
  uint32_t threshold = 0;         // t: shares that rebuild a secret, 1 <= t <= degree
  uint32_t degree = 0;            // SecAgg+ neighbours per participant; 0 or >= n-1: all others
  uint64_t round = 0;             // bound into every mask seed and every share ciphertext
  uint64_t graph_seed = 0;        // seeds the SecAgg+ neighbour graph (the same for everyone)
  int modulus_bits = 32;          // values mod 2^bits, 8 <= bits <= 32
  StageDeadlines deadlines;
};

// ConfigError naming the field if the parameters are inconsistent. Returns the effective degree.
uint32_t validate(const Params& p);

// Thrown by unmask_sum (and Participant::unmask) when a secret cannot be rebuilt: names whose
// secret, how many shares were available and how many are needed.
class NotEnoughSharesError : public ProtocolError {
 public:
  NotEnoughSharesError(std::string message, const char* file, int line, uint32_t owner,
                       size_t available, size_t needed)
      : ProtocolError(std::move(message), file, line),
        owner_(owner), available_(available), needed_(needed) {}
  uint32_t owner() const { return owner_; }
  size_t available() const { return available_; }
  size_t needed() const { return needed_; }

 private:
  uint32_t owner_;
  size_t available_;
  size_t needed_;
};

// ---- Randomness -------------------------------------------------------------------------------
// Either libsodium's secure generator or, for tests and reproducible demos, a ChaCha20 stream
// keyed by BLAKE2b(seed, label) (then NOT private). Plain value; not thread-safe.
class RandomSource {
 public:
  static RandomSource secure();
  static RandomSource seeded(uint64_t seed, const std::string& label);
  void fill(uint8_t* out, size_t len);
  uint64_t next_u64();
  Key32 next_key();
  bool is_seeded() const { return seeded_; }

 private:
  bool seeded_ = false;
  Key32 key_{};
  uint64_t block_ = 0;  // ChaCha20 block counter
  std::array<uint8_t, 64> buf_{};
  size_t used_ = 64;
};

// ---- Quantization -----------------------------------------------------------------------------
// Clip each coordinate to [-clip, clip], scale by `scale()` and round stochastically (unbiased) to
// an integer stored mod 2^bits; a NaN or infinite coordinate is a DataError naming its index. The scale is chosen so that the sum of up to `max_summands`
// quantized vectors never wraps: |q| <= M with n*M < 2^(bits-1), M = floor((2^(bits-1)-1)/n).
class Quantizer {
 public:
  Quantizer(double clip, int bits, uint32_t max_summands);
  double scale() const { return scale_; }
  uint32_t max_level() const { return max_level_; }  // M
  std::vector<uint32_t> quantize(const float* x, size_t count, RandomSource& rng) const;
  // The sum (mod 2^bits) of at most max_summands quantized vectors, back to floats (the sum of the
  // clipped inputs, within max_summands / scale per coordinate).
  std::vector<float> dequantize_sum(const std::vector<uint32_t>& sum) const;

 private:
  double clip_;
  int bits_;
  uint32_t max_summands_;
  uint32_t max_level_;
  double scale_;
};

// ---- Building blocks (public for tests and the benchmark) -------------------------------------
struct KeyPair {
  Key32 public_key{};
  Key32 secret_key{};
};
KeyPair make_keypair(RandomSource& rng);

// s_uv: BLAKE2b-256 over X25519(my_sk, their_pk), the two public keys ordered by id, and the
// round. Symmetric: pairwise_seed(u, sk_u, v, pk_v) == pairwise_seed(v, sk_v, u, pk_u).
// ProtocolError if the peer's key is a low-order point.
Key32 pairwise_seed(uint32_t my_id, const KeyPair& mine, uint32_t their_id, const Key32& their_pk,
                    uint64_t round);

// acc[i] += sign * PRG(seed)[i] mod 2^bits, PRG = ChaCha20 keystream read as little-endian u32.
void add_mask(uint32_t* acc, size_t count, const Key32& seed, int sign, int bits);

// SecAgg+ neighbours: a Harary graph H(degree, n) on a seeded permutation of the ids (every
// participant has exactly `degree` neighbours, the relation is symmetric; the complete graph when
// degree >= n-1). neighbours[u] is sorted. ConfigError when odd degree and odd n.
std::vector<std::vector<uint32_t>> neighbour_graph(uint32_t n, uint32_t degree, uint64_t seed);

// Shamir secret sharing of a 32-byte secret over GF(2^61 - 1): the secret is cut into five
// 7-byte (or shorter) chunks, each the constant term of its own random polynomial of degree t-1.
// The share for participant id is the polynomials evaluated at x = id + 1.
struct Share {
  uint32_t holder = 0;  // participant id; x = holder + 1
  std::array<uint64_t, 5> y{};
};
std::vector<Share> shamir_split(const Key32& secret, uint32_t threshold,
                                const std::vector<uint32_t>& holders, RandomSource& rng);
// Rebuilds from the first t shares (distinct holders); extra shares are checked against the
// polynomial (ProtocolError naming the holder whose share disagrees). NotEnoughSharesError with
// owner `owner` when fewer than t. `what` names the secret in errors ("participant 3's self mask").
Key32 shamir_reconstruct(const std::vector<Share>& shares, uint32_t threshold, uint32_t owner,
                         const std::string& what);

// ---- Protocol messages ------------------------------------------------------------------------
struct KeyAdvertisement {
  uint32_t id = 0;
  Key32 c_pk{};  // share-encryption key
  Key32 s_pk{};  // mask-agreement key
};

// The shares of b_u and s_sk_u that u sends to neighbour v, sealed with crypto_box (c_u -> c_v).
struct EncryptedShares {
  uint32_t from = 0;
  uint32_t to = 0;
  std::vector<uint8_t> ciphertext;  // nonce || box(from, to, round, share of s_sk, share of b)
};

// A survivor's stage-3 answer: shares of the survivors' self-mask seeds and of the dropped
// participants' mask keys, each tagged with the owner of the secret.
struct UnmaskResponse {
  uint32_t from = 0;
  std::vector<std::pair<uint32_t, Share>> self_mask_shares;  // owner in U3
  std::vector<std::pair<uint32_t, Share>> key_shares;        // owner in U2 \ U3
};

// One participant's state through one round. Stages must be called in order, each once.
class Participant {
 public:
  // `rng` supplies keys, b_u and the Shamir polynomials (secure, or seeded for tests).
  Participant(const Params& p, uint32_t id, RandomSource rng);
  uint32_t id() const { return id_; }
  const std::vector<uint32_t>& neighbours() const { return neighbours_; }

  KeyAdvertisement advertise();
  // Stage 1: `roster` holds the advertisements the coordinator relayed (U1; others' entries are
  // ignored). NotEnoughSharesError if fewer than t holders (itself and the neighbours that
  // advertised); ProtocolError if a key repeats.
  std::vector<EncryptedShares> share_keys(const std::vector<KeyAdvertisement>& roster);
  // Stage 2: opens the shares addressed to this participant (U2 = their senders plus itself) and
  // returns the masked input y_u. ProtocolError naming the sender of a ciphertext that fails to
  // open or is not for this round/recipient.
  std::vector<uint32_t> masked_input(const std::vector<EncryptedShares>& received,
                                     const std::vector<uint32_t>& quantized);
  // Stage 3: `survivors` is U3. Refuses (NotEnoughSharesError) when fewer than t survivors, and
  // ProtocolError when a survivor is not in U2.
  UnmaskResponse unmask(const std::vector<uint32_t>& survivors);

 private:
  Params params_;
  uint32_t id_;
  uint32_t degree_;
  RandomSource rng_;
  std::vector<uint32_t> neighbours_;
  KeyPair c_, s_;
  Key32 self_seed_{};
  std::vector<KeyAdvertisement> roster_;  // neighbours in U1, by id
  std::vector<uint32_t> u2_;              // neighbours whose shares arrived (sorted)
  std::vector<std::pair<uint32_t, Share>> held_key_shares_, held_self_shares_;
  int stage_ = 0;
};

// The coordinator's last step. `roster` is U1 (needed for the dropped participants' public keys),
// `u2` the participants whose shares were delivered, `masked` the survivors' (U3) masked inputs
// with their ids, `responses` the unmasking answers. Returns sum_{u in U3} x_u mod 2^bits.
// NotEnoughSharesError when a secret has fewer than t shares; ProtocolError on inconsistent input.
std::vector<uint32_t> unmask_sum(const Params& p, const std::vector<KeyAdvertisement>& roster,
                                 const std::vector<uint32_t>& u2,
                                 const std::vector<std::pair<uint32_t, std::vector<uint32_t>>>& masked,
                                 const std::vector<UnmaskResponse>& responses);

}  // namespace conflux::federated::secagg
