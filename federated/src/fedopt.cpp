// The FedOpt family's shared parts (fedopt.h).
#include "fedopt.h"

namespace conflux::federated::detail {

void bind_fedopt(ConfigBinder& b, FedOptValues& v) {
  const std::string s = "strategy." + v.name + ".";
  b.field(s + "eta", v.eta, "server-side learning rate").min(0);
  b.field(s + "eta_l", v.eta_l, "client-side learning rate (for the clients; unused by aggregation)").min(0);
  if (v.has_betas) {
    b.field(s + "beta_1", v.beta_1, "momentum parameter").range(0, 1);
    b.field(s + "beta_2", v.beta_2, "second moment parameter").range(0, 1);
  }
  b.field(s + "tau", v.tau, "controls the algorithm's degree of adaptability").min(0);
}

Weights FedOptBase::begin_finish() {
  Weights next = sum_.mean();
  m_.ensure(layout());
  v_state_.ensure(layout());
  return next;
}

void FedOptBase::save_tensors(Weights& out) const {
  m_.save(out);
  v_state_.save(out);
}

void FedOptBase::load_tensors(const Weights& in) {
  m_.load(in);
  v_state_.load(in);
}

void FedOptBase::on_reset() {
  m_.tensors.clear();
  v_state_.tensors.clear();
}

}  // namespace conflux::federated::detail
