// Secure aggregation: one participant's four stages and the coordinator's unmasking (the message
// flow is documented in secagg.h). Shares travel in crypto_box ciphertexts between participants;
// the coordinator only relays them.
#include <conflux/federated/secagg.h>

#include <sodium.h>

#include <algorithm>
#include <map>
#include <set>

#include "secagg_internal.h"

namespace conflux::federated::secagg {

namespace {

constexpr size_t kShareBytes = 5 * 8;
constexpr size_t kPlainBytes = 4 + 4 + 8 + 2 * kShareBytes;

void put_share(uint8_t* p, const Share& s) {
  for (int c = 0; c < 5; ++c) detail::store_le64(p + 8 * c, s.y[c]);
}
Share get_share(const uint8_t* p, uint32_t holder) {
  Share s;
  s.holder = holder;
  for (int c = 0; c < 5; ++c) s.y[c] = detail::load_le64(p + 8 * c);
  return s;
}

int mask_sign(uint32_t self, uint32_t other) { return self < other ? +1 : -1; }

}  // namespace

Participant::Participant(const Params& p, uint32_t id, RandomSource rng)
    : params_(p), id_(id), degree_(validate(p)), rng_(std::move(rng)) {
  if (id >= p.num_participants)
    CONFLUX_THROW(UsageError, "secure aggregation: participant id {} outside the cohort of {}", id,
                  p.num_participants);
  neighbours_ = neighbour_graph(p.num_participants, degree_, p.graph_seed)[id];
}

KeyAdvertisement Participant::advertise() {
  if (stage_ != 0) CONFLUX_THROW(InternalError, "secure aggregation: advertise() called twice");
  stage_ = 1;
  c_ = make_keypair(rng_);
  s_ = make_keypair(rng_);
  self_seed_ = rng_.next_key();
  return {id_, c_.public_key, s_.public_key};
}

std::vector<EncryptedShares> Participant::share_keys(const std::vector<KeyAdvertisement>& roster) {
  if (stage_ != 1) CONFLUX_THROW(InternalError, "secure aggregation: share_keys() out of order");
  stage_ = 2;
  std::set<Key32> keys{c_.public_key, s_.public_key};
  std::set<uint32_t> seen;
  for (const KeyAdvertisement& a : roster) {
    if (!std::binary_search(neighbours_.begin(), neighbours_.end(), a.id)) continue;
    if (!seen.insert(a.id).second)
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {} advertised twice",
                    params_.round, a.id);
    if (!keys.insert(a.c_pk).second || !keys.insert(a.s_pk).second)
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {} advertised a "
                    "public key already in use", params_.round, a.id);
    roster_.push_back(a);
  }
  std::sort(roster_.begin(), roster_.end(), [](auto& a, auto& b) { return a.id < b.id; });
  // The holders: the neighbours that advertised keys, and this participant itself (as in
  // Bonawitz et al., a survivor's own share counts towards t).
  std::vector<uint32_t> holders{id_};
  for (const auto& a : roster_) holders.push_back(a.id);
  if (holders.size() < params_.threshold)
    throw NotEnoughSharesError(
        fmt::format("secure aggregation round {}: participant {} has {} share holders (itself and "
                    "its neighbours with keys), {} needed (threshold)", params_.round, id_,
                    holders.size(), params_.threshold),
        __FILE__, __LINE__, id_, holders.size(), params_.threshold);
  const auto key_shares = shamir_split(s_.secret_key, params_.threshold, holders, rng_);
  const auto self_shares = shamir_split(self_seed_, params_.threshold, holders, rng_);
  held_key_shares_.emplace_back(id_, key_shares[0]);
  held_self_shares_.emplace_back(id_, self_shares[0]);
  std::vector<EncryptedShares> out;
  for (size_t j = 1; j < holders.size(); ++j) {
    const size_t i = j - 1;  // roster_ index
    uint8_t plain[kPlainBytes];
    detail::store_le32(plain, id_);
    detail::store_le32(plain + 4, roster_[i].id);
    detail::store_le64(plain + 8, params_.round);
    put_share(plain + 16, key_shares[j]);
    put_share(plain + 16 + kShareBytes, self_shares[j]);
    EncryptedShares e{id_, roster_[i].id, {}};
    e.ciphertext.resize(crypto_box_NONCEBYTES + crypto_box_MACBYTES + kPlainBytes);
    rng_.fill(e.ciphertext.data(), crypto_box_NONCEBYTES);
    if (crypto_box_easy(e.ciphertext.data() + crypto_box_NONCEBYTES, plain, kPlainBytes,
                        e.ciphertext.data(), roster_[i].c_pk.data(), c_.secret_key.data()) != 0)
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: cannot encrypt shares for "
                    "participant {} (bad public key)", params_.round, roster_[i].id);
    sodium_memzero(plain, sizeof plain);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<uint32_t> Participant::masked_input(const std::vector<EncryptedShares>& received,
                                                const std::vector<uint32_t>& quantized) {
  if (stage_ != 2) CONFLUX_THROW(InternalError, "secure aggregation: masked_input() out of order");
  stage_ = 3;
  for (const EncryptedShares& e : received) {
    auto it = std::find_if(roster_.begin(), roster_.end(), [&](auto& a) { return a.id == e.from; });
    if (e.to != id_ || it == roster_.end())
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {} got shares from {} "
                    "addressed to {} (not a neighbour with keys, or not for it)", params_.round,
                    id_, e.from, e.to);
    if (std::find(u2_.begin(), u2_.end(), e.from) != u2_.end())
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {} got shares from {} "
                    "twice", params_.round, id_, e.from);
    uint8_t plain[kPlainBytes];
    if (e.ciphertext.size() != crypto_box_NONCEBYTES + crypto_box_MACBYTES + kPlainBytes ||
        crypto_box_open_easy(plain, e.ciphertext.data() + crypto_box_NONCEBYTES,
                             e.ciphertext.size() - crypto_box_NONCEBYTES, e.ciphertext.data(),
                             it->c_pk.data(), c_.secret_key.data()) != 0)
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {}: the shares from "
                    "participant {} fail to decrypt", params_.round, id_, e.from);
    if (detail::load_le32(plain) != e.from || detail::load_le32(plain + 4) != id_ ||
        detail::load_le64(plain + 8) != params_.round)
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {}: the shares from "
                    "participant {} are for another sender, recipient or round", params_.round,
                    id_, e.from);
    held_key_shares_.emplace_back(e.from, get_share(plain + 16, id_));
    held_self_shares_.emplace_back(e.from, get_share(plain + 16 + kShareBytes, id_));
    sodium_memzero(plain, sizeof plain);
    u2_.push_back(e.from);
  }
  std::sort(u2_.begin(), u2_.end());
  const uint32_t mask = params_.modulus_bits >= 32 ? 0xFFFFFFFFu : ((1u << params_.modulus_bits) - 1u);
  std::vector<uint32_t> y(quantized.begin(), quantized.end());
  for (auto& v : y) v &= mask;
  add_mask(y.data(), y.size(), self_seed_, +1, params_.modulus_bits);
  for (const auto& a : roster_) {
    if (!std::binary_search(u2_.begin(), u2_.end(), a.id)) continue;
    add_mask(y.data(), y.size(), pairwise_seed(id_, s_, a.id, a.s_pk, params_.round), mask_sign(id_, a.id),
             params_.modulus_bits);
  }
  return y;
}

UnmaskResponse Participant::unmask(const std::vector<uint32_t>& survivors) {
  if (stage_ != 3) CONFLUX_THROW(InternalError, "secure aggregation: unmask() out of order");
  stage_ = 4;
  const std::set<uint32_t> u3(survivors.begin(), survivors.end());
  if (u3.size() < params_.threshold)
    throw NotEnoughSharesError(
        fmt::format("secure aggregation round {}: participant {} refuses to unmask: {} survivors, "
                    "{} needed (threshold)", params_.round, id_, u3.size(), params_.threshold),
        __FILE__, __LINE__, id_, u3.size(), params_.threshold);
  if (!u3.count(id_))
    CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {} is asked to unmask "
                  "but is not among the survivors", params_.round, id_);
  for (uint32_t v : u3)
    if (std::binary_search(neighbours_.begin(), neighbours_.end(), v) &&
        !std::binary_search(u2_.begin(), u2_.end(), v))
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: survivor {} never sent its shares "
                    "to participant {}", params_.round, v, id_);
  UnmaskResponse r;
  r.from = id_;
  // Never both shares of one owner: the self-mask seed of a survivor, the key of a dropout.
  for (size_t i = 0; i < held_self_shares_.size(); ++i) {
    if (u3.count(held_self_shares_[i].first))
      r.self_mask_shares.push_back(held_self_shares_[i]);
    else
      r.key_shares.push_back(held_key_shares_[i]);
  }
  return r;
}

std::vector<uint32_t> unmask_sum(const Params& p, const std::vector<KeyAdvertisement>& roster,
                                 const std::vector<uint32_t>& u2,
                                 const std::vector<std::pair<uint32_t, std::vector<uint32_t>>>& masked,
                                 const std::vector<UnmaskResponse>& responses) {
  const uint32_t degree = validate(p);
  const auto graph = neighbour_graph(p.num_participants, degree, p.graph_seed);
  auto is_neighbour = [&](uint32_t a, uint32_t b) {
    return std::binary_search(graph[a].begin(), graph[a].end(), b);
  };
  std::map<uint32_t, Key32> s_pk;
  for (const auto& a : roster) s_pk[a.id] = a.s_pk;
  const std::set<uint32_t> in_u2(u2.begin(), u2.end());
  std::set<uint32_t> u3;
  if (masked.empty())
    CONFLUX_THROW(ProtocolError, "secure aggregation round {}: no masked inputs", p.round);
  const size_t len = masked.front().second.size();
  for (const auto& [id, y] : masked) {
    if (!in_u2.count(id) || !s_pk.count(id) || !u3.insert(id).second)
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: masked input from participant {} "
                    "(not in U2, no advertised key, or sent twice)", p.round, id);
    if (y.size() != len)
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {}'s masked input has "
                    "{} values, participant {}'s has {}", p.round, id, y.size(),
                    masked.front().first, len);
  }
  for (uint32_t v : in_u2)
    if (!s_pk.count(v))
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {} is in U2 but "
                    "advertised no key", p.round, v);
  // Gather the shares, checking who may hold which.
  std::map<uint32_t, std::vector<Share>> self_shares, key_shares;
  std::set<uint32_t> answered;
  for (const UnmaskResponse& r : responses) {
    if (!u3.count(r.from) || !answered.insert(r.from).second)
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: unmasking answer from participant "
                    "{} (not a survivor, or answered twice)", p.round, r.from);
    std::set<uint32_t> owners;
    auto take = [&](const auto& list, auto& into, bool want_survivor) {
      for (const auto& [owner, sh] : list) {
        if (sh.holder != r.from || (owner != r.from && !is_neighbour(owner, r.from)) || !in_u2.count(owner) ||
            u3.count(owner) != (want_survivor ? 1u : 0u) || !owners.insert(owner).second)
          CONFLUX_THROW(ProtocolError, "secure aggregation round {}: participant {} sent an "
                        "invalid {} share of participant {}'s secret", p.round, r.from,
                        want_survivor ? "self-mask" : "key", owner);
        into[owner].push_back(sh);
      }
    };
    take(r.self_mask_shares, self_shares, true);
    take(r.key_shares, key_shares, false);
  }
  std::vector<uint32_t> sum(len, 0);
  const uint32_t mask = p.modulus_bits >= 32 ? 0xFFFFFFFFu : ((1u << p.modulus_bits) - 1u);
  for (const auto& [id, y] : masked)
    for (size_t i = 0; i < len; ++i) sum[i] = (sum[i] + y[i]) & mask;
  auto rebuild = [&](auto& shares, uint32_t owner, const char* what) {
    try {
      return shamir_reconstruct(shares[owner], p.threshold, owner,
                                fmt::format("participant {}'s {}", owner, what));
    } catch (const NotEnoughSharesError& e) {
      throw NotEnoughSharesError(
          fmt::format("{} ({} of {} participants survived to send masked inputs, {} answered the "
                      "unmasking request)", e.message(), u3.size(), p.num_participants,
                      answered.size()),
          __FILE__, __LINE__, e.owner(), e.available(), e.needed());
    }
  };
  for (uint32_t u : u3) add_mask(sum.data(), len, rebuild(self_shares, u, "self-mask seed"), -1, p.modulus_bits);
  for (uint32_t v : in_u2) {
    if (u3.count(v)) continue;
    KeyPair kp;
    kp.secret_key = rebuild(key_shares, v, "mask key");
    crypto_scalarmult_base(kp.public_key.data(), kp.secret_key.data());
    if (kp.public_key != s_pk[v])
      CONFLUX_THROW(ProtocolError, "secure aggregation round {}: the shares of dropped participant "
                    "{}'s mask key rebuild a key that does not match its advertised one", p.round, v);
    for (uint32_t w : graph[v]) {
      if (!u3.count(w)) continue;
      // w added mask_sign(w, v) * PRG(s_wv); take it out.
      add_mask(sum.data(), len, pairwise_seed(v, kp, w, s_pk[w], p.round), -mask_sign(w, v), p.modulus_bits);
    }
    sodium_memzero(kp.secret_key.data(), kp.secret_key.size());
  }
  return sum;
}

}  // namespace conflux::federated::secagg
