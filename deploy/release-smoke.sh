#!/usr/bin/env bash
# Checks that the release tarball's binary runs on a clean Debian 12 with no
# extra packages: makes the tarball with deploy/release.sh from BINARY
# (default target/release/pentascope), unpacks it in a debootstrapped
# minbase root (the base image of deploy/container-smoke.sh,
# localhost/debian:bookworm-slim, when podman has it; else a fresh
# debootstrap), and in a chroot runs `pentascope --version` and `pentascope
# serve` on an ephemeral port, which must answer /health and exit 0 on
# SIGTERM.
# Needs root (chroot, mount), curl, and podman or debootstrap.
#
#   deploy/release-smoke.sh [BINARY]
set -euo pipefail

cd "$(dirname "$0")/.."
BINARY="${1:-target/release/pentascope}"
WORK="$(mktemp -d)"
ROOT="$WORK/root"
SERVER=""
cleanup() {
    set +e
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null
        wait "$SERVER" 2>/dev/null
    fi
    # never remove the root while the host's /proc or /dev is mounted in it
    for mounted in "$ROOT/proc" "$ROOT/dev"; do
        if mountpoint -q "$mounted" && ! umount "$mounted"; then
            echo "cannot unmount $mounted: $WORK left in place" >&2
            return
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== tarball"
TARBALL="$(deploy/release.sh "$BINARY" "$WORK/dist")"
NAME="$(basename "$TARBALL" .tar.gz)"
VERSION="${NAME#pentascope-}"
VERSION="${VERSION%-x86_64-linux}"
(cd "$WORK/dist" && sha256sum -c --quiet "$NAME.tar.gz.sha256")
tar -tzf "$TARBALL" | sort >"$WORK/contents"
for entry in pentascope README.md docs/operations.md deploy/pentascope.service; do
    grep -qx "$NAME/$entry" "$WORK/contents" || { echo "$entry is not in $TARBALL" >&2; exit 1; }
done
echo "$TARBALL: $(wc -l <"$WORK/contents") entries, $(du -h "$TARBALL" | cut -f1)"

echo "== a clean Debian 12 root"
mkdir "$ROOT"
PODMAN=(podman --runtime runc)
if command -v podman >/dev/null 2>&1 && "${PODMAN[@]}" image exists localhost/debian:bookworm-slim; then
    export CONTAINERS_CONF="$WORK/containers.conf"
    printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF"
    BASE="$("${PODMAN[@]}" create localhost/debian:bookworm-slim true)"
    "${PODMAN[@]}" export "$BASE" | tar -C "$ROOT" -x
    "${PODMAN[@]}" rm "$BASE" >/dev/null
    echo "from the image localhost/debian:bookworm-slim"
else
    debootstrap --variant=minbase bookworm "$ROOT" http://deb.debian.org/debian >/dev/null
    echo "debootstrapped"
fi
echo "$(chroot "$ROOT" dpkg-query -W | wc -l) packages; $(chroot "$ROOT" ldd --version | head -n 1)"
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
mkdir -p "$ROOT/opt"
tar -C "$ROOT/opt" -xzf "$TARBALL"
BIN="/opt/$NAME/pentascope"
chroot "$ROOT" ldd "$BIN"

echo "== pentascope --version"
SAID="$(chroot "$ROOT" "$BIN" --version)"
echo "$SAID"
test "$SAID" = "pentascope $VERSION"

echo "== pentascope serve on an ephemeral port"
chroot "$ROOT" "$BIN" serve --data-dir /var/lib/pentascope --port 0 \
    >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVER=$!
URL=""
for _ in $(seq 100); do
    URL="$(sed -n 's|^pentascope listening on \(http://[^ ]*\)$|\1|p' "$WORK/serve.out")"
    [ -n "$URL" ] && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/serve.log"; echo "serve exited" >&2; exit 1; }
    sleep 0.2
done
test -n "$URL" || { cat "$WORK/serve.log"; echo "serve never said where it listens" >&2; exit 1; }
HEALTH="$(curl -sf "$URL/health")"
echo "$URL/health: $HEALTH"
if ! grep -q '"status": *"ok"' <<<"$HEALTH" || ! grep -q "\"version\": *\"$VERSION\"" <<<"$HEALTH"; then
    cat "$WORK/serve.log"
    echo "/health did not answer ok with version $VERSION" >&2
    exit 1
fi
kill -TERM "$SERVER"
STATUS=0
wait "$SERVER" || STATUS=$?
SERVER=""
test "$STATUS" = 0 || { cat "$WORK/serve.log"; echo "serve exited with $STATUS on SIGTERM" >&2; exit 1; }
echo "release smoke test passed"
