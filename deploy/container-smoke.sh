#!/usr/bin/env bash
# Builds the container image of deploy/Containerfile with podman from a
# binary already built (default target/release/pentascope) on a
# debootstrapped Debian 12 base (made once, kept as
# localhost/debian:bookworm-slim), runs it with access control required,
# and checks it: /health, the HEALTHCHECK, an admin key made inside the
# container, an upload, a slice, /metrics. Needs podman, runc, debootstrap
# (apt-get install podman runc debootstrap), curl and the fixture corpus.
#
#   deploy/container-smoke.sh [BINARY]
#
# podman here needs the runc runtime, host networking and no default
# ulimits (see docs/operations.md, "Deployment").
set -euo pipefail

cd "$(dirname "$0")/.."
BINARY="${1:-target/release/pentascope}"
FIXTURES="${PENTASCOPE_FIXTURES:-../shared/fixtures}"
PORT="${PENTASCOPE_SMOKE_PORT:-5077}"
NAME="pentascope-smoke-$$"
WORK="$(mktemp -d)"
export CONTAINERS_CONF="$WORK/containers.conf"
printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF"
PODMAN=(podman --runtime runc)
cleanup() {
    "${PODMAN[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
    "${PODMAN[@]}" volume rm -f "$NAME-data" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! "${PODMAN[@]}" image exists localhost/debian:bookworm-slim; then
    echo "== base image: debootstrap bookworm"
    debootstrap --variant=minbase bookworm "$WORK/root" http://deb.debian.org/debian >/dev/null
    tar -C "$WORK/root" -c . | "${PODMAN[@]}" import - localhost/debian:bookworm-slim >/dev/null
    rm -rf "$WORK/root"
fi

echo "== build"
# a context of the binary alone (the repository's target/ is gigabytes)
mkdir "$WORK/context"
cp "$BINARY" "$WORK/context/pentascope"
"${PODMAN[@]}" build --network host --format docker --quiet \
    --build-arg BASE=localhost/debian:bookworm-slim --build-arg BINARY=pentascope \
    -f deploy/Containerfile -t localhost/pentascope:smoke "$WORK/context"

echo "== run"
"${PODMAN[@]}" run -d --network host --name "$NAME" -v "$NAME-data:/data" \
    -e PORT="$PORT" localhost/pentascope:smoke >/dev/null
for _ in $(seq 60); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/health"
echo
test "$("${PODMAN[@]}" exec "$NAME" id -un)" = pentascope
"${PODMAN[@]}" healthcheck run "$NAME"
echo "healthcheck: healthy"

echo "== a session with an admin key made inside the container"
"${PODMAN[@]}" exec "$NAME" pentascope user create ada --admin >/dev/null
KEY="$("${PODMAN[@]}" exec "$NAME" pentascope token create --user ada --scope admin 2>/dev/null)"
AUTH=(-H "Authorization: Bearer $KEY")
test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/images")" = 401
IMAGE="$(curl -sf "${AUTH[@]}" -F "file=@$FIXTURES/tiff/ome_tczyx_u16.ome.tif" \
    "http://127.0.0.1:$PORT/upload" | sed -n 's/.*"image_id": *"\([^"]*\)".*/\1/p')"
test -n "$IMAGE"
curl -sf "${AUTH[@]}" -o "$WORK/plane.png" "http://127.0.0.1:$PORT/slice?image_id=$IMAGE&z=1&channel=2"
test "$(head -c 8 "$WORK/plane.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a
curl -sf "${AUTH[@]}" "http://127.0.0.1:$PORT/metrics" | grep -q '^http_server_request_duration_seconds_count'
echo "upload $IMAGE, slice (PNG), /metrics: ok"

echo "== SIGTERM stops it cleanly"
"${PODMAN[@]}" stop -t 20 "$NAME" >/dev/null
test "$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$NAME")" = 0
echo "container smoke test passed"
