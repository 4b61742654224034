#!/usr/bin/env bash
# Mutation testing of the modules that hold the ledger's guarantees (not part of CI).
#
#   scripts/mutation.sh                # every group, report in mutation-report/
#   scripts/mutation.sh domain chain   # only these groups
#
# Each group mutates a few modules with mutmut and runs only the tests that guard them,
# SQLite only. mutmut works on a copy: the source tree is copied to $MUTATION_WORKDIR/<group>
# and mutated in its mutants/ folder there, never in place. The bus group needs the NATS
# server of scripts/services.sh (127.0.0.1:4222).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKDIR="${MUTATION_WORKDIR:-${TMPDIR:-/tmp}/ledger-mutation}"
REPORT_DIR="${MUTATION_REPORT_DIR:-$ROOT/mutation-report}"
MUTMUT_VERSION="3.8.1"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
# Two cores are the norm here; one mutmut child per core.
CHILDREN="${MUTATION_CHILDREN:-2}"

if ! "$PYTHON" -c "import mutmut, sys; sys.exit(mutmut.__version__ != '$MUTMUT_VERSION')" 2>/dev/null; then
    "$PYTHON" -m pip install --quiet "mutmut==$MUTMUT_VERSION"
fi
MUTMUT="$(dirname "$PYTHON")/mutmut"

# group -> modules to mutate, tests that guard them, mutant-name filter ("" = all mutants),
# tests left out (always: PostgreSQL), tests kept all the same.
declare -A MODULES TESTS ONLY DESELECT KEEP
MODULES[domain]="src/ledger/domain/endpoint.py src/ledger/domain/model.py"
TESTS[domain]="tests/unit/test_domain_rules.py tests/store/test_endpoints.py tests/store/test_rules_property.py tests/store/test_model_versions.py"
DESELECT[domain]="separate_processes or eight_writers"
MODULES[core]="src/ledger/application.py src/ledger/command_ids.py"
TESTS[core]="tests/store/test_command_execution.py tests/store/test_command_ids.py tests/store/test_model_versions.py tests/store/test_sqlite_writers.py"
DESELECT[core]="separate_processes"
# Command execution, retries and the replay of command ids; not the read helpers.
ONLY[core]="ledger.application.xǁLedgerApplicationǁexecute__mutmut_* ledger.application.xǁLedgerApplicationǁ_replay__mutmut_* ledger.application.xǁLedgerApplicationǁsave__mutmut_* ledger.application.xǁLedgerApplicationǁ_record_settled__mutmut_* ledger.application.xǁLedgerApplicationǁchange__mutmut_* ledger.command_ids.x_committed__mutmut_* ledger.command_ids.x_committed_now__mutmut_* ledger.command_ids.x_versions_changed__mutmut_* ledger.command_ids.x_version_before_replay__mutmut_* ledger.command_ids.x_check_replayed__mutmut_*"
MODULES[chain]="src/ledger/chain.py src/ledger/merkle.py"
TESTS[chain]="tests/unit/test_chain_units.py tests/store/test_verify.py tests/store/test_checkpoints.py"
MODULES[bus]="src/ledger/bus/handled.py src/ledger/bus/stream_trust.py"
TESTS[bus]="tests/bus/test_handled_units.py tests/bus/test_stream_trust_units.py tests/bus/test_bus.py tests/bus/test_poison.py tests/bus/test_relay_trust.py"
# The slowest NATS tests: the others reach the same code in a fraction of the time.
DESELECT[bus]="ten_thousand or killed_repeatedly or others_publish or dies_before_acking or second_relay or nats_is_down or cli_and_serve_refuse or restored_database"
# Its PostgreSQL branches (batch insert, synchronous_commit) run on PostgreSQL only.
KEEP[bus]="postgres and (handled_units or durably)"
# The relay: only where it resumes (and checks that the stream continues this log).
MODULES[relay]="src/ledger/bus/relay.py"
TESTS[relay]="tests/bus/test_relay_trust.py tests/bus/test_bus.py"
DESELECT[relay]="ten_thousand or killed_repeatedly or others_publish"
ONLY[relay]="ledger.bus.relay.xǁRelayǁ_remember__mutmut_* ledger.bus.relay.xǁRelayǁ_check_unchanged__mutmut_* ledger.bus.relay.xǁRelayǁ_stamp__mutmut_* ledger.bus.relay.xǁRelayǁ_starting_position__mutmut_* ledger.bus.relay.xǁRelayǁ_check__mutmut_* ledger.bus.relay.xǁRelayǁ_resynchronise__mutmut_*"
GROUPS_ALL=(domain core chain bus relay)

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=("${GROUPS_ALL[@]}")
mkdir -p "$WORKDIR" "$REPORT_DIR"

toml_list() { printf '"%s", ' "$@" | sed 's/, $//'; }

for group in "${groups[@]}"; do
    [ -n "${MODULES[$group]:-}" ] || { echo "unknown group: $group" >&2; exit 2; }
    dir="$WORKDIR/$group"
    echo "== $group: ${MODULES[$group]}"
    rm -rf "$dir" && mkdir -p "$dir"
    cp -r "$ROOT/src" "$ROOT/tests" "$ROOT/scripts" "$dir/"
    # The copy's pyproject carries the group's own mutmut settings.
    grep -v '^\[tool.mutmut\]' "$ROOT/pyproject.toml" > "$dir/pyproject.toml"
    deselect="postgres"
    [ -n "${DESELECT[$group]:-}" ] && deselect="postgres or ${DESELECT[$group]}"
    selection="not ($deselect)"
    [ -n "${KEEP[$group]:-}" ] && selection="$selection or (${KEEP[$group]})"
    # shellcheck disable=SC2086
    cat >> "$dir/pyproject.toml" <<TOML

[tool.mutmut]
source_paths = ["src"]
also_copy = ["scripts"]  # the offline proof verifier the checkpoint tests run
only_mutate = [$(toml_list ${MODULES[$group]})]
pytest_add_cli_args = ["-p", "no:randomly", "-p", "no:cacheprovider", "-q"]
pytest_add_cli_args_test_selection = [$(toml_list ${TESTS[$group]}), "-k", "$selection"]
# Not guarantees, so not mutated: log lines, the wording on raise lines, and how long a
# retry sleeps (functional tests assert no durations).
do_not_mutate_patterns = ['log\\.(debug|info|warning|error|exception)\\(', 'raise \\w+\\(f?"', 'time\\.sleep\\(']
timeout_multiplier = 5.0
timeout_constant = 10.0
TOML
    # Subprocesses started by the tests import the mutated copy too. The folder must exist
    # before Python starts: a missing sys.path entry is cached as "nothing here".
    mkdir -p "$dir/mutants/src"
    # shellcheck disable=SC2086
    (cd "$dir" && PYTHONPATH="$dir/mutants/src" nice -n 19 "$MUTMUT" run \
        --max-children "$CHILDREN" ${ONLY[$group]:-} > "$REPORT_DIR/$group.log" 2>&1) \
        || echo "mutmut exited $? for $group (see $REPORT_DIR/$group.log)"
    "$PYTHON" "$ROOT/scripts/mutation_report.py" "$dir" "$group" "${ONLY[$group]:-}" \
        > "$REPORT_DIR/$group.md"
done
"$PYTHON" "$ROOT/scripts/mutation_report.py" --summary "$REPORT_DIR" > "$REPORT_DIR/README.md"
cat "$REPORT_DIR/README.md"
