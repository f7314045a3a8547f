#!/usr/bin/env bash
# Refresh the vendored NiiVue (BSD-2-Clause) used by `petcad serve`:
#   scripts/vendor_niivue.sh [VERSION]      (default: the registry's latest)
# Fetches the package with `npm pack @niivue/niivue` from the npm registry and copies its UMD
# build, its package.json version and its licence into src/petcad/web/static/vendor/niivue/.
# The npm tarball carries no LICENSE file; then the BSD-2-Clause text of the NiiVue repository
# (github.com/niivue/niivue, LICENSE, "Copyright (c) 2021, Niivue") is written instead.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/src/petcad/web/static/vendor/niivue"
spec="@niivue/niivue${1:+@$1}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$spec" >/dev/null && tar xzf niivue-niivue-*.tgz)
pkg="$tmp/package"
test -f "$pkg/dist/niivue.umd.js" || { echo "no dist/niivue.umd.js in $spec" >&2; exit 1; }
version="$(node -p "require('$pkg/package.json').version")"
license="$(node -p "require('$pkg/package.json').license")"
[ "$license" = "BSD-2-Clause" ] || { echo "unexpected licence $license of $spec: check before vendoring" >&2; exit 1; }
mkdir -p "$dest"
cp "$pkg/dist/niivue.umd.js" "$dest/niivue.umd.js.tmp" && mv "$dest/niivue.umd.js.tmp" "$dest/niivue.umd.js"
if [ -f "$pkg/LICENSE" ]; then
  cp "$pkg/LICENSE" "$dest/LICENSE"
else
  cat > "$dest/LICENSE" <<'LIC'
BSD 2-Clause License

Copyright (c) 2021, Niivue
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
LIC
fi
sha="$(sha256sum "$dest/niivue.umd.js" | cut -d' ' -f1)"
printf '@niivue/niivue %s\nfile dist/niivue.umd.js sha256 %s\nlicense %s\nsource npm pack %s\n' \
  "$version" "$sha" "$license" "$spec" > "$dest/VERSION"
echo "vendored @niivue/niivue $version into $dest"
