#!/usr/bin/env bash
# The whole job in a minute, offline: start the sandbox, award panel points from a CSV, see
# bad input caught before anything is sent, create a Splio reward (and see Splio refuse it a
# second time), see a reward that breaks Splio's rules refused, and read the sandbox's ledger.
#
#   make demo                                  # builds the CLI, then runs this script
#   REWARDKIT=path/to/rewardkit examples/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REWARDKIT=${REWARDKIT:-target/debug/rewardkit}
if [[ ! -x $REWARDKIT ]]; then
    echo "demo: $REWARDKIT not found; build it first with 'make build' (or run 'make demo')" >&2
    exit 1
fi

if [[ -t 1 ]]; then
    B=$'\e[1m' D=$'\e[2m' C=$'\e[36m' R=$'\e[0m'
else
    B='' D='' C='' R=''
fi
step=0
heading() {
    step=$((step + 1))
    printf '\n%s== %d. %s%s\n' "$B" "$step" "$1" "$R"
    [[ $# -lt 2 ]] || printf '%s%s%s\n' "$D" "$2" "$R"
}
# Shows the command as a user would type it, then runs it; returns its exit code.
run() {
    printf '%s$ rewardkit %s%s\n' "$C" "$*" "$R"
    "$REWARDKIT" "$@"
}
# Runs a command that is expected to fail, and says so.
run_failing() {
    local rc=0
    run "$@" || rc=$?
    printf '%s(exit code %d, as expected)%s\n' "$D" "$rc" "$R"
}
pretty_json() {
    if command -v jq >/dev/null 2>&1; then jq .; else python3 -m json.tool; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rewardkit-demo.XXXXXX")
sandbox_pid=
cleanup() {
    if [[ -n $sandbox_pid ]]; then
        kill "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

heading "Start the sandbox" \
    "It serves the QuestionPro and Splio APIs on 127.0.0.1 and keeps a ledger of what it awarded."
printf '%s$ rewardkit sandbox --json &%s\n' "$C" "$R"
"$REWARDKIT" sandbox --json >"$tmp/sandbox.json" 2>"$tmp/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 1 100); do
    grep -q '}' "$tmp/sandbox.json" 2>/dev/null && break
    if ! kill -0 "$sandbox_pid" 2>/dev/null; then
        echo "demo: the sandbox did not start:" >&2
        cat "$tmp/sandbox.log" >&2
        exit 1
    fi
    sleep 0.1
done
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/sandbox.json" "$1"; }
URL=$(field url)
QUESTIONPRO_API_KEY=$(field questionpro_api_key)
SPLIO_API_KEY=$(field splio_api_key)
export QUESTIONPRO_API_KEY SPLIO_API_KEY
cat "$tmp/sandbox.json"
echo "Sandbox at $URL; its keys are exported as QUESTIONPRO_API_KEY and SPLIO_API_KEY."

heading "Award points from a CSV file" \
    "Ten rows; member 123456789012 is not in the panel, so QuestionPro skips that row."
printf '%s' "$D"
cat examples/points.csv
printf '%s' "$R"
run questionpro award-points examples/points.csv --base-url "$URL"

heading "Bad input is caught before the network, all of it at once" \
    "Every bad line is listed with its field errors, and nothing is sent."
run_failing questionpro award-points examples/bad_points.csv --base-url "$URL"

heading "Create a Splio Loyalty reward" \
    "The client authenticates, gets a token and creates the reward."
run splio create-reward examples/reward.json --base-url "$URL"

heading "The same reward again: Splio's own answer" \
    "Only the server knows external ids are taken; its error comes back typed, with status and field errors."
run_failing splio create-reward examples/reward.json --base-url "$URL"

heading "A reward that breaks Splio's rules" \
    "Validated against Splio's documented rules; every field error comes back at once."
run_failing splio create-reward examples/bad_reward.json --base-url "$URL"

heading "What the sandbox's ledger holds" \
    "Points per panel member, every credited row, and the total."
printf '%s$ curl -s %s/_sandbox/ledger%s\n' "$C" "$URL" "$R"
curl -s "$URL/_sandbox/ledger" | pretty_json

printf '\n%sDone.%s Next: %smake test%s, then README.md for the Rust API, the CLI and the sandbox.\n' \
    "$B" "$R" "$C" "$R"
