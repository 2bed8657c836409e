# Helpers for the CLI test scripts.
set -uo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_rc CODE cmd... : runs cmd, captures stdout/stderr in $OUT/$ERR, checks the exit code.
expect_rc() {
  local want=$1; shift
  OUT=$("$@" 2>/tmp/cli_err.$$); local rc=$?
  ERR=$(cat /tmp/cli_err.$$); rm -f /tmp/cli_err.$$
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want; stderr: $ERR"
}
contains() { case "$1" in *"$2"*) ;; *) fail "expected to find '$2' in: $1" ;; esac; }
