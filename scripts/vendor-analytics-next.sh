#!/usr/bin/env bash
# Refresh the copy of Segment's browser client (@segment/analytics-next, MIT) that Wayline serves
# at /analytics-next/bundles/ for the Data page's <script> snippet: its UMD build (index.js and
# the chunks it loads on demand), without source maps or pre-compressed copies.
#
#     scripts/vendor-analytics-next.sh 1.84.3
#
# Keep the version equal to tests/web/test_segment_browser_client.py's VERSION.
set -euo pipefail
version="${1:?usage: $0 VERSION}"
dest="$(cd "$(dirname "$0")/.." && pwd)/src/wayline/web/static/vendor/analytics-next"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm install --prefix "$work" --no-audit --no-fund --ignore-scripts --no-save "@segment/analytics-next@$version" >/dev/null
pkg="$work/node_modules/@segment/analytics-next"
rm -rf "$dest"
mkdir -p "$dest"
# standalone.js is the variant for Segment's own snippet (settings from its CDN): not used.
find "$pkg/dist/umd" -maxdepth 1 -name '*.js' ! -name standalone.js -exec cp {} "$dest/" \;
cp "$pkg/LICENSE.MD" "$dest/LICENSE.md"
echo "$version" > "$dest/VERSION"
echo "vendored @segment/analytics-next $version into $dest"
