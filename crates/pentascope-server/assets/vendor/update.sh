#!/usr/bin/env bash
# Rebuilds the vendored browser libraries from this folder's lockfile:
# tus-js-client's browser bundle -> ../tus.min.js (served as
# /assets/tus.min.js and compiled into the binary, so the upload page works
# without network). Run after changing a version in package.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
# without its source map comment: the map is not served
sed '/sourceMappingURL=/d' node_modules/tus-js-client/dist/tus.min.js > ../tus.min.js
echo "vendored tus-js-client $(node -p 'require("./node_modules/tus-js-client/package.json").version') -> ../tus.min.js"
