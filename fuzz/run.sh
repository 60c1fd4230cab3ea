#!/usr/bin/env bash
# Fuzzes pentascope-tiff's TIFF reader with cargo-fuzz (libFuzzer), one core.
#
#   fuzz/run.sh [SECONDS] [TARGET...]   fuzz each target for SECONDS (default 60)
#   fuzz/run.sh --replay [TARGET...]    run each target once over its seeds,
#                                       regressions and corpus, then stop
#
# Targets: reader (whole files), flavour (every flavour parser: metadata text
# or vendor structures, a seed for each in seeds/flavour/), codec (one chunk).
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. A crash or timeout is written to artifacts/TARGET/:
# copy it to regressions/TARGET/ (with a name saying what it found) and fix
# it; crates/pentascope-tiff/tests/hostile.rs replays regressions/ on stable.
set -euo pipefail
cd "$(dirname "$0")"

mode=fuzz
seconds=60
if [[ ${1:-} == --replay ]]; then
    mode=replay
    shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(reader flavour codec)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# the reader decodes chunks on a rayon pool: keep it to the one core
export RAYON_NUM_THREADS=1

fixtures=../../shared/fixtures/tiff
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "regressions/$target"
    inputs=("corpus/$target" "regressions/$target")
    [[ -d seeds/$target ]] && inputs+=("seeds/$target")
    [[ $target == reader && -d $fixtures ]] && inputs+=("$fixtures")
    if [[ $mode == replay ]]; then
        flags=(-runs=0)
    else
        flags=(-max_total_time="$seconds")
    fi
    echo "== $target ($mode)"
    start=$SECONDS
    # -timeout: an input slower than 10 s is a finding; -rss_limit_mb: so is 2 GB
    cargo fuzz run "$target" "${inputs[@]}" -- \
        "${flags[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
    echo "== $target ran $((SECONDS - start)) s"
done
