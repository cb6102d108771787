#!/usr/bin/env bash
# Contract fuzzing of the alert API with Schemathesis (a tool no one here wrote), as CI runs it
# (.ci/run, before `npm test`): the API starts on a fresh embedded ClickHouse with seeded alerts
# (fuzz/serve.ts), and Schemathesis runs every phase (examples, coverage, fuzzing, stateful: the
# OpenAPI links list -> acknowledge -> history -> resolve) with `--checks all`, once per role and
# once without a key. Any failure fails the script. /stream/alerts (SSE, never ends) is excluded:
# test/stream.int.test.ts checks it.
#
#   services/api/fuzz/run.sh                      # all four runs
#   FUZZ_ROLES="admin" FUZZ_MAX_EXAMPLES=50 services/api/fuzz/run.sh
#
# Bounded: FUZZ_MAX_EXAMPLES per operation and phase (default 15), each run killed after
# FUZZ_RUN_TIMEOUT seconds (default 240; a run takes ~30-60 s on 2 busy cores). The roles that may
# triage (analyst, admin) get one more stateful-only run with FUZZ_STATEFUL_EXAMPLES (default 60):
# with 15, few generated alert lists are non-empty, so few link chains (list -> ack -> history ->
# resolve) reach real alerts; with 60 they do dozens of times (~15 s). Schemathesis is
# installed from PyPI into .cache/venv-schemathesis (ignored), pinned below.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
venv="$root/.cache/venv-schemathesis"
port=${FUZZ_PORT:-18080}
roles=${FUZZ_ROLES:-"none viewer analyst admin"}
max_examples=${FUZZ_MAX_EXAMPLES:-15}
stateful_examples=${FUZZ_STATEFUL_EXAMPLES:-60}
run_timeout=${FUZZ_RUN_TIMEOUT:-240}
work="$root/.cache/fuzz"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Fuzzing keys: they exist only in this throw-away API process.
declare -A keys=(
  [viewer]=fuzz-viewer-0123456789abcdef
  [analyst]=fuzz-analyst-0123456789abcdef
  [admin]=fuzz-admin-0123456789abcdef00
)
export API_KEYS="${keys[viewer]}:viewer:fuzz-viewer,${keys[analyst]}:analyst:fuzz-analyst,${keys[admin]}:admin:fuzz-admin"

rm -rf "$work" && mkdir -p "$work"
node --import tsx services/api/fuzz/serve.ts --port "$port" >"$work/serve.out" 2>"$work/serve.err" &
server=$!
stop_server() { kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; }
trap stop_server EXIT

for _ in $(seq 1 240); do
  if [ -s "$work/serve.out" ]; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "the API did not start:"; cat "$work/serve.err"; exit 1; fi
  sleep 0.5
done
[ -s "$work/serve.out" ] || { echo "the API did not start within 120 s"; cat "$work/serve.err"; exit 1; }
url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$work/serve.out")
ops_url=$(sed -n 's/.*"opsUrl":"\([^"]*\)".*/\1/p' "$work/serve.out")
echo "== API for fuzzing: $(cat "$work/serve.out")"

failed=()
st() {
  # cwd = .cache/fuzz: Hypothesis keeps its example database (.hypothesis/) there.
  (cd "$work" && timeout --kill-after=10 "$run_timeout" "$venv/bin/schemathesis" --config-file "$root/services/api/fuzz/schemathesis.toml" run "$url/openapi.json" \
    --checks all --exclude-path /stream/alerts --request-timeout 10 --no-color "$@")
}
for role in $roles; do
  auth=()
  if [ "$role" != none ]; then auth=(-H "x-api-key: ${keys[$role]}"); fi
  echo "== schemathesis $SCHEMATHESIS_VERSION, role: $role (all phases, $max_examples examples)"
  st --max-examples "$max_examples" --report junit --report-junit-path "$work/junit-$role.xml" "${auth[@]}" || failed+=("$role")
  if [ "$role" = analyst ] || [ "$role" = admin ]; then
    echo "== schemathesis $SCHEMATHESIS_VERSION, role: $role (stateful phase, $stateful_examples examples)"
    st --phases stateful --max-examples "$stateful_examples" --report junit --report-junit-path "$work/junit-$role-stateful.xml" "${auth[@]}" || failed+=("$role/stateful")
  fi
done

# What the API answered, from its own metrics (ops port): shows the triage operations reached real alerts.
echo "== API answers during fuzzing (method route status: count)"
curl -sf "$ops_url/metrics" | sed -n 's/^tillwatch_api_request_duration_seconds_count{[^}]*method="\([A-Z]*\)",route="\([^"]*\)",status_code="\([0-9]*\)"} \([0-9]*\)$/  \1 \2 \3: \4/p' | sort || true

if ! kill -0 "$server" 2>/dev/null; then echo "the API process died during fuzzing:"; cat "$work/serve.err"; exit 1; fi
if [ "${#failed[@]}" -gt 0 ]; then
  echo "== schemathesis found failures for: ${failed[*]} (reports: $work/junit-*.xml)"
  exit 1
fi
echo "== schemathesis: no failures for roles: $roles"
