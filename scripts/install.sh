#!/usr/bin/env bash
# Installs a released lmsinfra binary for this machine, after checking its SHA-256 against the
# checksum published beside it. The GitHub Action (action.yml) runs it; so can anyone.
#
#   LMSINFRA_VERSION       the release tag, e.g. v0.2.0 (required; anything not shaped like a
#                          tag, such as a branch name, has no release)
#   LMSINFRA_RELEASE_BASE  where releases are: a URL (default
#                          https://github.com/$LMSINFRA_REPOSITORY/releases/download) or a local
#                          directory laid out the same way, TAG/ASSET
#   LMSINFRA_REPOSITORY    owner/name for the default base
#   LMSINFRA_INSTALL_DIR   where the binary goes (default $HOME/.local/bin); appended to
#                          $GITHUB_PATH when that is set
#
# The asset is lmsinfra-TAG-TARGET.tar.gz with lmsinfra-TAG-TARGET.tar.gz.sha256 beside it
# (`shasum -a 256` output), as .github/workflows/release.yml publishes them.
#
# Exit 0: installed. Exit 3: no release for this version or platform (build from source
# instead). Exit 1: anything else, a checksum that does not match above all: that binary is
# never installed.
set -euo pipefail

fail() { echo "lmsinfra install: $*" >&2; exit 1; }
none() { echo "lmsinfra install: $*" >&2; exit 3; }

version="${LMSINFRA_VERSION:-}"
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([.+-][0-9A-Za-z.+-]*)?$ ]] \
  || none "'${version}' is not a release tag (vMAJOR.MINOR.PATCH)"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=x86_64-unknown-linux-gnu ;;
  Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-gnu ;;
  Darwin-x86_64) target=x86_64-apple-darwin ;;
  Darwin-arm64 | Darwin-aarch64) target=aarch64-apple-darwin ;;
  *) none "no release is built for $(uname -s) $(uname -m)" ;;
esac

base="${LMSINFRA_RELEASE_BASE:-https://github.com/${LMSINFRA_REPOSITORY:?set LMSINFRA_REPOSITORY or LMSINFRA_RELEASE_BASE}/releases/download}"
asset="lmsinfra-$version-$target.tar.gz"
install_dir="${LMSINFRA_INSTALL_DIR:-$HOME/.local/bin}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Fetch $1 (a name in the release) into $work; exit 3 when the release does not have it.
fetch() {
  if [ -d "$base" ]; then
    [ -f "$base/$version/$1" ] || none "$base/$version has no $1"
    cp "$base/$version/$1" "$work/$1"
  else
    local status
    status="$(curl --silent --show-error --location --retry 3 --output "$work/$1" \
      --write-out '%{http_code}' "$base/$version/$1")" || fail "could not download $base/$version/$1"
    [ "$status" != 404 ] || none "$base/$version has no $1"
    [ "$status" = 200 ] || fail "$base/$version/$1 answered HTTP $status"
  fi
}

fetch "$asset"
fetch "$asset.sha256"

expected="$(awk 'NR == 1 { print $1 }' "$work/$asset.sha256")"
if command -v sha256sum > /dev/null; then
  actual="$(sha256sum "$work/$asset" | awk '{ print $1 }')"
else
  actual="$(shasum -a 256 "$work/$asset" | awk '{ print $1 }')"
fi
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || fail "$asset.sha256 holds no SHA-256"
[ "$actual" = "$expected" ] \
  || fail "the checksum of $asset is $actual, but the release says $expected: not installed"

tar -xzf "$work/$asset" -C "$work" lmsinfra
mkdir -p "$install_dir"
install -m 755 "$work/lmsinfra" "$install_dir/lmsinfra"
if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$install_dir" >> "$GITHUB_PATH"
fi
echo "lmsinfra install: $asset (sha256 $actual) in $install_dir"
