#!/usr/bin/env bash
# Makes the release tarball pentascope-VERSION-x86_64-linux.tar.gz (and its
# .sha256) in OUTDIR (default dist/): one directory holding the binary,
# README.md, the LICENSE files if any, docs/ and deploy/pentascope.service.
# VERSION is what the binary says (`pentascope --version`).
#
#   deploy/release.sh [BINARY] [OUTDIR]
#
# Without BINARY it builds one first (`cargo build --release --locked -p
# pentascope`: thin LTO, long on a small machine). The tarball is the same
# bytes for the same inputs: sorted names, owner 0, files dated from the
# last commit (or SOURCE_DATE_EPOCH).
set -euo pipefail

cd "$(dirname "$0")/.."
BINARY="${1:-}"
OUT="${2:-dist}"
if [ -z "$BINARY" ]; then
    cargo build --release --locked -p pentascope
    BINARY="${CARGO_TARGET_DIR:-target}/release/pentascope"
fi
test -x "$BINARY" || { echo "release.sh: $BINARY is not an executable" >&2; exit 1; }
# the name says x86_64 Linux: an ELF file whose machine is x86-64 (0x3e)
if [ "$(head -c 4 "$BINARY" | od -An -c | tr -d ' ')" != '177ELF' ] ||
    [ "$(od -An -tx1 -j18 -N2 "$BINARY" | tr -d ' \n')" != 3e00 ]; then
    echo "release.sh: $BINARY is not an x86-64 ELF executable" >&2
    exit 1
fi
VERSION="$("$BINARY" --version | awk '$1 == "pentascope" { print $2 }')"
test -n "$VERSION" || { echo "release.sh: $BINARY --version names no version" >&2; exit 1; }

NAME="pentascope-$VERSION-x86_64-linux"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/$NAME/deploy"
cp "$BINARY" "$STAGE/$NAME/pentascope"
chmod 755 "$STAGE/$NAME/pentascope"
cp README.md "$STAGE/$NAME/"
for license in LICENSE*; do
    [ -f "$license" ] && cp "$license" "$STAGE/$NAME/"
done
cp -r docs "$STAGE/$NAME/docs"
cp deploy/pentascope.service "$STAGE/$NAME/deploy/"

EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
mkdir -p "$OUT"
TARBALL="$OUT/$NAME.tar.gz"
tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
    -c "$NAME" | gzip -n >"$TARBALL.part"
mv "$TARBALL.part" "$TARBALL"
(cd "$OUT" && sha256sum "$NAME.tar.gz" >"$NAME.tar.gz.sha256")
echo "$TARBALL"
