# --help lists every verb; every verb's --help shows usage and an example; usage errors exit 2;
# config errors exit 1 and name file:line. The libtorch verbs come from a plugin loaded on demand:
# the binary itself does not link libtorch, and a broken plugin is a clear error.
source "$(dirname "$0")/lib.sh"
expect_rc 0 "$CONFLUX" --help
contains "$OUT" "verbs:"
contains "$OUT" "exit codes: 0 ok"
verbs=$(printf '%s\n' "$OUT" | sed -n 's/^  \([a-z-]*\( [a-z-]*\)\?\)  .*/\1/p' | sed 's/ *$//')
[ -n "$verbs" ] || fail "no verbs listed"
while IFS= read -r v; do
  # shellcheck disable=SC2086
  expect_rc 0 "$CONFLUX" $v --help
  contains "$OUT" "usage: conflux $v"
  contains "$OUT" "Example:"
done <<<"$verbs"
expect_rc 0 "$CONFLUX" --version
contains "$OUT" "conflux 0."
expect_rc 2 "$CONFLUX" frobnicate
contains "$ERR" "unknown verb 'frobnicate'"
expect_rc 2 "$CONFLUX" bench allreduce --no-such-flag
contains "$ERR" "usage error"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '[parallel]\ntp = 1\n[comm]\ntimeout_s = "soon"\n' >"$tmp/bad.toml"
expect_rc 1 "$CONFLUX" config show "$tmp/bad.toml" --kind grid
contains "$ERR" "$tmp/bad.toml:4: key 'comm.timeout_s' must be a number, got a string"
printf '[parallel]\ntp = 2\n' >"$tmp/ok.toml"
expect_rc 0 "$CONFLUX" config show "$tmp/ok.toml" --kind grid --set comm.timeout_s=30
contains "$OUT" "tp = 2"
contains "$OUT" "timeout_s = 30.0"
contains "$OUT" "shm_chunk_bytes = 131072"
# The plugin: train, generate, evaluate and doctor are listed (loaded for --help), the binary
# does not need libtorch, and a plugin that cannot be loaded is named with the loader's reason.
for v in train generate evaluate doctor; do
  printf '%s\n' "$verbs" | grep -qx "$v" || fail "verb '$v' (plugin) is not listed"
done
if ldd "$CONFLUX" | grep -q libtorch; then fail "the conflux binary links libtorch"; fi
mkdir "$tmp/plugins"
echo "not a shared object" >"$tmp/plugins/libconflux_torch_verbs.so"
CONFLUX_PLUGIN_DIR="$tmp/plugins" expect_rc 1 "$CONFLUX" train "$tmp/ok.toml"
contains "$ERR" "cannot load the verb plugin $tmp/plugins/libconflux_torch_verbs.so"
CONFLUX_PLUGIN_DIR="$tmp/plugins" expect_rc 0 "$CONFLUX" privacy laplace --epsilon 1 --sensitivity 2 --json
contains "$OUT" '"scale": 2'
echo "cli_basics: ok"
