#!/usr/bin/env bash
# The JSON routes (metadata, an image, statistics, a page of 100 images,
# health) under wrk, 32 connections, 10 s each, and 30 uploads of a small
# OME-TIFF with curl, for two binaries side by side, alternating:
#
#   bench/json_routes.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
#
# Each server gets its own empty data directory and 120 images of three
# fixtures (../shared/fixtures/tiff). Prints one line per route and binary:
# label, route, requests per second (or seconds for the uploads).
set -euo pipefail
cd "$(dirname "$0")/.."
FIXTURES=${FIXTURES:-../shared/fixtures/tiff}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }

run() {
    local bin=$1 port=$2 label=$3 dir pid
    dir=$(mktemp -d)
    PENTASCOPE_MAX_CONNECTIONS=256 "$bin" serve --data-dir "$dir" --port "$port" >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do curl -sf "localhost:$port/health" >/dev/null && break; sleep 0.2; done
    for _ in $(seq 40); do
        for f in ome_tczyx_u16.ome.tif imagej_tzcyx_u16.tif ome_rgb_tyxs_u8.ome.tif; do
            curl -sf -F "file=@$FIXTURES/$f" "localhost:$port/upload" >/dev/null
        done
    done
    for path in "/metadata?image_id=image_1" "/images/image_1" "/statistics?image_id=image_1" \
        "/images?limit=100" "/health"; do
        echo "$label $path $(wrk -t2 -c32 -d10s "http://127.0.0.1:$port$path" |
            awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "errors:", $0}')"
    done
    local start end
    start=$(date +%s.%N)
    for _ in $(seq 30); do
        curl -sf -F "file=@$FIXTURES/ome_tczyx_u16.ome.tif" "localhost:$port/upload" >/dev/null
    done
    end=$(date +%s.%N)
    echo "$label upload-30x-seconds $(echo "$end - $start" | bc)"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

for _ in $(seq "${3:-2}"); do
    run "$1" 5101 before
    run "$2" 5102 after
done
