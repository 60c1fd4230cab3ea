#!/usr/bin/env bash
# Side-by-side benchmark: pentascope (release server over HTTP) vs the Python
# reference (tifffile + numpy + scikit-learn + Pillow), same files, one table.
#
#   bench/run.sh [--quick] [--shape T,Z,C,Y,X] [--big] [--compressed] [-- extra bench.py options]
#
#   (default)     two 10x20x3x1024x1024 uint16 ImageJ hyperstacks, ~1.2 GB
#                 each: first the headline data, smooth structure (a sum of
#                 sinusoids per channel) plus Gaussian noise sigma 300, as
#                 microscopes write (make_data.py --kind structured); then
#                 the earlier runs' noise-dominated file (sigma 1500)
#   --quick       small shapes instead (smoke test, about a minute)
#   --shape T,Z,C,Y,X  the structured file's shape instead (both modes)
#   --big         also the 20x34x3x1024x1024 OME BigTIFF, ~4.3 GB
#   --compressed  also a zstd-compressed copy of the default shape
#   --no-build    use target/release/pentascope as it is (no cargo build)
#   --segment     also the segmentation rows (bench/segment.py): Otsu + label +
#                 regionprops on a 1024x1024 plane and a 20x1024x1024 volume,
#                 pentascope vs scikit-image (with --quick: 256x256, 4x256x256)
#   --segment-only  only the segmentation rows
#
# After the main table, bench/split.py runs one PCA and one statistics
# recompute of the first file on one single-thread worker, then split over
# two (needs Redis, as CI starts it).
#
# Builds target/release/pentascope, creates .venv if needed, generates the
# inputs under bench/out/ (reused when present with the same parameters) and
# runs bench/bench.py. PENTASCOPE_* variables are passed to the server;
# BENCH_PYTHON=/path/to/python uses that environment instead of .venv.
# See BENCHMARKS.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/bench/run.sh"
cd "$ROOT"
COMMAND="bench/run.sh${*:+ $*}"

QUICK=0 BIG=0 COMPRESSED=0 BUILD=1 SEGMENT=0 MAIN=1 SHAPE=""
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --shape)
            shift
            if ! [[ "${1:-}" =~ ^[1-9][0-9]*(,[1-9][0-9]*){4}$ ]]; then
                echo "--shape takes T,Z,C,Y,X (five positive integers), got '${1:-}'" >&2; exit 2
            fi
            SHAPE="$1" ;;
        --big) BIG=1 ;;
        --compressed) COMPRESSED=1 ;;
        --no-build) BUILD=0 ;;
        --segment) SEGMENT=1 ;;
        --segment-only) SEGMENT=1 MAIN=0 ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"; exit 0 ;;
        *) echo "unknown option: $1 (see bench/run.sh --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "[run.sh] $*" >&2; }

# the binary: target/release/pentascope, or under $CARGO_TARGET_DIR when set
BIN="${CARGO_TARGET_DIR:-target}/release/pentascope"
if [ "$BUILD" = 1 ]; then
    say "building: cargo build --release -p pentascope"
    cargo build --release -p pentascope >&2
elif ! [ -x "$BIN" ]; then
    echo "$BIN is missing (drop --no-build)" >&2; exit 1
fi

VENV="$ROOT/.venv"
PY="$VENV/bin/python"
if [ -n "${BENCH_PYTHON:-}" ]; then
    PY="$BENCH_PYTHON"   # a ready Python environment, used as it is
elif ! [ -x "$PY" ] || ! "$PY" -c 'import tifffile, numpy, sklearn, imagecodecs, zarr, PIL' 2>/dev/null; then
    say "creating/refreshing the Python venv in .venv"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q tifffile numpy scikit-learn imagecodecs zarr pillow >&2
fi
if [ "$SEGMENT" = 1 ] && [ -z "${BENCH_PYTHON:-}" ] && ! "$PY" -c 'import skimage, scipy' 2>/dev/null; then
    say "installing scikit-image into .venv"
    "$VENV/bin/pip" install -q scikit-image scipy >&2
fi

if ! command -v curl >/dev/null; then
    say "installing curl"; apt-get update -qq >&2 && apt-get install -y -qq curl >&2
fi
if [ "$MAIN" = 1 ] && ! command -v wrk >/dev/null; then
    say "installing wrk"
    { apt-get update -qq && apt-get install -y -qq wrk; } >&2 \
        || say "could not install wrk: the load test will be reported as missing"
fi

mkdir -p bench/out

# ensure_data NAME make_data-args...: bench/out/NAME made by make_data.py with
# these arguments; reused when its .params sidecar matches. A file without a
# sidecar (made by hand) is adopted when its shape, dtype, container and
# compression match the request (noise files only).
ensure_data() {
    local name="$1"; shift
    local out="bench/out/$name" params="make_data.py $*"
    if [ -f "$out" ] && [ -f "$out.params" ] && [ "$(cat "$out.params")" = "$params" ]; then
        say "reusing $out ($params)"
        return
    fi
    if [ -f "$out" ] && ! [ -f "$out.params" ] && "$PY" - "$out" "$@" <<'EOF'
import sys, tifffile
path, args = sys.argv[1], sys.argv[2:]
if "--kind" in args and args[args.index("--kind") + 1] != "noise":
    sys.exit(1)  # what a file holds cannot be told from its tags
shape = [int(x) for x in args[args.index("--shape") + 1:args.index("--shape") + 6]]
big = "--bigtiff" in args
comp = args[args.index("--compression") + 1] if "--compression" in args else None
with tifffile.TiffFile(path) as tf:
    s = tf.series[0]
    ok = (list(s.shape) == shape and str(s.dtype) == "uint16" and tf.is_bigtiff == big
          and (tf.is_ome if big else tf.is_imagej)
          and tf.pages[0].compression.name.lower() == (comp or "none")
          and len(tf.pages) == shape[0] * shape[1] * shape[2])
sys.exit(0 if ok else 1)
EOF
    then
        say "adopting existing $out (matches $params)"
        echo "$params" > "$out.params"
        return
    fi
    say "generating $out ($params)"
    rm -f "$out" "$out.params"
    "$PY" bench/make_data.py "$out.tmp" "$@"
    mv "$out.tmp" "$out"
    echo "$params" > "$out.params"
}

DATA=()
ARGS=()
if [ "$MAIN" = 0 ]; then
    :
elif [ "$QUICK" = 1 ]; then
    STRUCTURED_SHAPE="${SHAPE:-2,5,3,512,512}"
    ensure_data "quick_structured_${STRUCTURED_SHAPE//,/x}_u16.tif" \
        --shape ${STRUCTURED_SHAPE//,/ } --kind structured --noise 300
    DATA+=(--data "quick-structured=bench/out/quick_structured_${STRUCTURED_SHAPE//,/x}_u16.tif")
    ensure_data quick_u16.tif --shape 2 5 3 512 512
    DATA+=(--data "quick-noise=bench/out/quick_u16.tif")
    if [ "$BIG" = 1 ]; then
        ensure_data quick_big_u16.ome.tif --shape 2 6 3 512 512 --bigtiff
        DATA+=(--data "quick-bigtiff=bench/out/quick_big_u16.ome.tif")
    fi
    if [ "$COMPRESSED" = 1 ]; then
        ensure_data quick_u16_zstd.tif --shape 2 5 3 512 512 --compression zstd
        DATA+=(--data "quick-zstd=bench/out/quick_u16_zstd.tif")
    fi
    ARGS+=(--quick --wrk-duration 5)
else
    STRUCTURED_SHAPE="${SHAPE:-10,20,3,1024,1024}"
    ensure_data "structured_${STRUCTURED_SHAPE//,/x}_u16.tif" \
        --shape ${STRUCTURED_SHAPE//,/ } --kind structured --noise 300
    DATA+=(--data "structured=bench/out/structured_${STRUCTURED_SHAPE//,/x}_u16.tif")
    ensure_data hyperstack_u16.tif --shape 10 20 3 1024 1024
    DATA+=(--data "1.2GB-noise=bench/out/hyperstack_u16.tif")
    if [ "$BIG" = 1 ]; then
        ensure_data bigtiff_u16.ome.tif --shape 20 34 3 1024 1024 --bigtiff
        DATA+=(--data "4.3GB-bigtiff=bench/out/bigtiff_u16.ome.tif")
    fi
    if [ "$COMPRESSED" = 1 ]; then
        ensure_data hyperstack_u16_zstd.tif --shape 10 20 3 1024 1024 --compression zstd
        DATA+=(--data "1.2GB-zstd=bench/out/hyperstack_u16_zstd.tif")
    fi
fi

SEGMENT_ARGS=()
[ "$QUICK" = 1 ] && SEGMENT_ARGS+=(--quick)
if [ "$MAIN" = 1 ]; then
    say "running bench/bench.py"
    "$PY" bench/bench.py --binary "$BIN" "${DATA[@]}" "${ARGS[@]}" \
        --command "$COMMAND" ${EXTRA[@]+"${EXTRA[@]}"}
fi
if [ "$MAIN" = 1 ]; then
    # the first data set, on one and on two single-thread workers
    SPLIT_DATA="${DATA[1]#*=}"
    say "running bench/split.py on $SPLIT_DATA"
    "$PY" bench/split.py --binary "$BIN" --data "$SPLIT_DATA"
fi
if [ "$SEGMENT" = 1 ]; then
    say "running bench/segment.py"
    "$PY" bench/segment.py --binary "$BIN" ${SEGMENT_ARGS[@]+"${SEGMENT_ARGS[@]}"}
fi
