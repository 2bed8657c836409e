# shellcheck shell=bash
# Helpers of the pipeline tests (sourced).
#   expect TEXT REGEX WHAT     fails (printing TEXT) unless TEXT matches the extended REGEX
#   tiny_model_tables STAGE    the [stages.STAGE.model] and [stages.STAGE.train] tables of the tests'
#                              tiny GPT (1 layer, width 32, context 32; constant warmup 0)
#   ingest_stage               [stages.ingest] of one fortunes file (computers, ~1000 rows)
# `fail` is the sourcing test's (it may print a job log).
expect() { grep -qE -- "$2" <<<"$1" || { echo "$1" >&2; fail "$3: expected /$2/"; }; }
tiny_model_tables() {
  printf '[stages.%s.model]\ncontext = 32\nn_layer = 1\nn_head = 2\nd_model = 32\n' "$1"
  printf '[stages.%s.train]\nbatch_size = 8\nwarmup_steps = 0\n' "$1"
}
ingest_stage() {
  printf '[stages.ingest]\ninputs = ["/usr/share/games/fortunes/computers"]\nformat = "fortune"\nkeep_text = true\n'
}
