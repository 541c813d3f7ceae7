#!/usr/bin/env bash
# Start the reference SDDC Manager tasks service (the mock), run the conformance suite against it,
# and exit with the suite's exit code (0 conformant, 1 not, 2 usage, 3 no verdict, 4 suite bug).
# Both docs/ci/github-actions.yml and docs/ci/gitlab-ci.yml call this script, so the CI recipes
# and a local run (`bash docs/ci/run-against-mock.sh`) cannot drift apart.
#
# Settings (environment):
#   REPORT_DIR      where the reports go                  [reports/ci]
#   MOCK_PORT       port of the mock; 0 picks a free one  [8080]
#   STATE_FILE      the mock's state file (URL, user, password, task ids; mode 0600) [state.json]
#   MOCK_DEFECTS    space-separated defects to switch on in the mock (see `sddc-conformance defects`)
#   SDDC_RUN_ARGS   extra arguments for `sddc-conformance run`, e.g. "--profile schema --strict"
#   MOCK_LOG        the mock's output                   [mock.log]
#   PYTHON          interpreter used to read the state file [python3]
# state.json and mock.log are git-ignored (.gitignore), so a run inside a checkout leaves nothing untracked.
set -euo pipefail

REPORT_DIR="${REPORT_DIR:-reports/ci}"
MOCK_PORT="${MOCK_PORT:-8080}"
STATE_FILE="${STATE_FILE:-state.json}"
PYTHON="${PYTHON:-python3}"
MOCK_LOG="${MOCK_LOG:-mock.log}"
read -r -a run_args <<< "${SDDC_RUN_ARGS:-}"
defect_args=()
for defect in ${MOCK_DEFECTS:-}; do defect_args+=(--defect "$defect"); done

rm -f "$STATE_FILE"
mkdir -p "$REPORT_DIR"
sddc-conformance serve --host 127.0.0.1 --port "$MOCK_PORT" --state-file "$STATE_FILE" \
    ${defect_args[@]+"${defect_args[@]}"} > "$MOCK_LOG" 2>&1 &
mock_pid=$!
# Stop the mock whatever happens next (SIGTERM makes it shut down gracefully).
trap 'kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true' EXIT

state() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$STATE_FILE" "$1"; }

# The state file is written once the mock listens; wait until it is complete JSON.
for _ in $(seq 1 150); do
    if [ -s "$STATE_FILE" ] && state base_url > /dev/null 2>&1; then break; fi
    if ! kill -0 "$mock_pid" 2>/dev/null; then
        echo "the mock exited before it was ready:" >&2; cat "$MOCK_LOG" >&2; exit 3
    fi
    sleep 0.1
done
if ! state base_url > /dev/null 2>&1; then
    echo "the mock did not write $STATE_FILE within 15 s" >&2; cat "$MOCK_LOG" >&2; exit 3
fi

base_url="$(state base_url)"
username="$(state username)"
# The password goes through the environment, never the command line (nor the log).
SDDC_PASSWORD="$(state password)"
export SDDC_PASSWORD
if [ "${GITHUB_ACTIONS:-}" = "true" ]; then echo "::add-mask::$SDDC_PASSWORD"; fi

set +e
sddc-conformance run --base-url "$base_url" --username "$username" --tasks-file "$STATE_FILE" \
    --report-dir "$REPORT_DIR" ${run_args[@]+"${run_args[@]}"}
code=$?
set -e

# GitHub shows this on the run's summary page; elsewhere the variable is unset and nothing happens.
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$REPORT_DIR/summary.md" ]; then
    cat "$REPORT_DIR/summary.md" >> "$GITHUB_STEP_SUMMARY"
fi
exit "$code"
