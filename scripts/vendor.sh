#!/bin/sh
# Re-vendor htmx and htmx-ext-sse from the npm registry into static/ and record checksums.
#
# Usage: scripts/vendor.sh [HTMX_VERSION [SSE_VERSION]]
#   versions or npm ranges (e.g. 2.0.x), resolved to one exact version each;
#   defaults: the versions pinned below. Needs npm and node (registry access) and sha256sum.
#   Writes static/htmx.min.js, static/htmx-ext-sse.min.js, their licenses and
#   static/VENDORED.md; tests/test_vendored.py checks the files against it.
set -eu

HTMX_SPEC="${1:-2.0.11}"
SSE_SPEC="${2:-2.2.4}"

root="$(cd "$(dirname "$0")/.." && pwd)"
static="$root/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT INT TERM

# fetch NAME SPEC DIR: npm pack (which checks the registry's sha512) and unpack into DIR.
fetch() {
    mkdir "$work/$3"
    (cd "$work/$3" && npm pack --silent "$1@$2" >/dev/null && tar -xzf ./*.tgz)
    (cd "$work/$3/package" && node -p "require('./package.json').version")
}

HTMX_VERSION="$(fetch htmx.org "$HTMX_SPEC" htmx)"
SSE_VERSION="$(fetch htmx-ext-sse "$SSE_SPEC" sse)"
case "$HTMX_VERSION" in 2.0.*) ;; *) echo "htmx must be 2.0.x, got $HTMX_VERSION" >&2; exit 2 ;; esac
case "$SSE_VERSION" in 2.2.*) ;; *) echo "htmx-ext-sse must be 2.2.x, got $SSE_VERSION" >&2; exit 2 ;; esac

cd "$work"
cp htmx/package/dist/htmx.min.js "$static/htmx.min.js"
cp htmx/package/LICENSE "$static/htmx.LICENSE.txt"
cp sse/package/dist/sse.min.js "$static/htmx-ext-sse.min.js"
cp sse/package/LICENSE "$static/htmx-ext-sse.LICENSE.txt"

integrity() { npm view "$1" dist.integrity; }
sum() { sha256sum "$static/$1" | cut -d' ' -f1; }

cat > "$static/VENDORED.md" <<MD
# Vendored assets

Taken from the npm registry by \`scripts/vendor.sh\` (\`make vendor\`); do not edit by hand.
\`tests/test_vendored.py\` checks every file in the table against its sha256.

| file | package | from | sha256 |
|---|---|---|---|
| htmx.min.js | htmx.org@$HTMX_VERSION | package/dist/htmx.min.js | $(sum htmx.min.js) |
| htmx.LICENSE.txt | htmx.org@$HTMX_VERSION | package/LICENSE | $(sum htmx.LICENSE.txt) |
| htmx-ext-sse.min.js | htmx-ext-sse@$SSE_VERSION | package/dist/sse.min.js | $(sum htmx-ext-sse.min.js) |
| htmx-ext-sse.LICENSE.txt | htmx-ext-sse@$SSE_VERSION | package/LICENSE | $(sum htmx-ext-sse.LICENSE.txt) |

Registry integrity of the tarballs:

- htmx.org@$HTMX_VERSION: \`$(integrity "htmx.org@$HTMX_VERSION")\`
- htmx-ext-sse@$SSE_VERSION: \`$(integrity "htmx-ext-sse@$SSE_VERSION")\`
MD
echo "vendored htmx.org@$HTMX_VERSION and htmx-ext-sse@$SSE_VERSION into $static"
