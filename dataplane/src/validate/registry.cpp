// The one list of validators, in the order they run (add one: one file plus one line here).
#include "conflux/dataplane/ops.h"

namespace conflux::dataplane {

const Validator& nonfinite_validator();
const Validator& length_validator();
const Validator& utf8_validator();
const Validator& non_alnum_validator();
const Validator& repeated_lines_validator();
const Validator& word_count_validator();
const Validator& word_length_validator();

const std::vector<const Validator*>& validator_registry() {
  static const std::vector<const Validator*> r = {
      &nonfinite_validator(), &length_validator(),     &utf8_validator(),       &non_alnum_validator(),
      &repeated_lines_validator(), &word_count_validator(), &word_length_validator()};
  return r;
}

}  // namespace conflux::dataplane
