#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a while and summarises the result.
#
#   scripts/fuzz.sh [-j N] [SECONDS]
#
# SECONDS is the time per target (default 60). Targets run one after another, or N at once
# with `-j N` (or FUZZ_JOBS=N). Each target's libFuzzer output goes to fuzz/logs/<target>.log;
# new corpus entries to fuzz/corpus/<target>, crash inputs to fuzz/artifacts/<target>/, all
# kept out of git. Seeds are read from fuzz/seeds/<target>. Exits non-zero if any target
# crashed (or failed to run), listing the crash inputs in hex.
set -euo pipefail

usage() {
    echo "usage: $0 [-j N] [SECONDS]" >&2
    exit 2
}

jobs_at_once="${FUZZ_JOBS:-1}"
while getopts "j:h" opt; do
    case "$opt" in
        j) jobs_at_once="$OPTARG" ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -le 1 ]] || usage
# Not `SECONDS`: bash keeps its own variable of that name.
seconds_per_target="${1:-60}"
[[ "$seconds_per_target" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$jobs_at_once" =~ ^[1-9][0-9]*$ ]] || usage

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing the nightly toolchain" >&2
    rustup toolchain install nightly --profile minimal
fi

mapfile -t targets < <(cargo +nightly fuzz list)
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz.sh: no fuzz targets" >&2; exit 1; }
mkdir -p fuzz/logs

# Build every target once up front, so parallel runs do not queue on the build lock.
echo "fuzz.sh: building ${targets[*]}" >&2
cargo +nightly fuzz build >fuzz/logs/build.log 2>&1 || {
    cat fuzz/logs/build.log >&2
    exit 1
}

# Runs one target; never fails itself, the exit code goes to fuzz/logs/<target>.rc.
run_target() {
    local target="$1" rc=0
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
    cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds_per_target" -max_len=1024 \
        >"fuzz/logs/$target.log" 2>&1 || rc=$?
    echo "$rc" >"fuzz/logs/$target.rc"
}

pids=()
trap 'trap - INT TERM; [[ ${#pids[@]} -eq 0 ]] || kill "${pids[@]}" 2>/dev/null; exit 130' INT TERM

echo "fuzz.sh: ${#targets[@]} targets, ${seconds_per_target} s each, $jobs_at_once at a time" >&2
for target in "${targets[@]}"; do
    rm -f "fuzz/logs/$target.rc"
    if [[ "$jobs_at_once" -eq 1 ]]; then
        echo "fuzz.sh: running $target" >&2
        run_target "$target"
    else
        while [[ $(jobs -rp | wc -l) -ge "$jobs_at_once" ]]; do
            wait -n || true
        done
        echo "fuzz.sh: starting $target" >&2
        run_target "$target" &
        pids+=("$!")
    fi
done
[[ ${#pids[@]} -eq 0 ]] || wait "${pids[@]}" || true
trap - INT TERM

failed=0
crashes=()
for target in "${targets[@]}"; do
    log="fuzz/logs/$target.log"
    rc="$(cat "fuzz/logs/$target.rc" 2>/dev/null || echo "?")"
    # libFuzzer's last words on a clean run: "Done 1234567 runs in 61 second(s)".
    done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)"
    if [[ "$rc" == 0 && -n "$done_line" ]]; then
        read -r _ runs _ _ secs _ <<<"$done_line"
        printf '%-8s %12s runs in %4s s   ok\n' "$target" "$runs" "$secs"
        continue
    fi
    failed=1
    # Without a "Done" line the exec count is in the last status line ("#1234  NEW ...").
    last="$(grep -oE '^#[0-9]+' "$log" | tail -n 1 || true)"
    mapfile -t artifacts < <(grep -oE 'Test unit written to [^ ]+' "$log" | awk '{print $5}' || true)
    if [[ ${#artifacts[@]} -gt 0 ]]; then
        printf '%-8s %12s runs           CRASHED (exit %s), see %s\n' \
            "$target" "${last#\#}" "$rc" "$log"
        crashes+=("${artifacts[@]}")
    else
        printf '%-8s %12s runs           FAILED (exit %s, no crash input), see %s\n' \
            "$target" "${last#\#}" "$rc" "$log"
    fi
done

if [[ ${#crashes[@]} -gt 0 ]]; then
    echo
    echo "crash inputs (reproduce: cargo +nightly fuzz run <target> <file>):"
    for artifact in "${crashes[@]}"; do
        echo "  $artifact"
        if [[ -f "$artifact" ]]; then
            echo "    hex: $(od -An -v -tx1 "$artifact" | tr -d ' \n')"
        fi
    done
fi
exit "$failed"
