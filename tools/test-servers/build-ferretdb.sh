#!/usr/bin/env bash
# Builds tools/.bin/ferretdb: FerretDB 1.24.1 (MongoDB wire protocol over SQLite), embedded
# by the small Go module in tools/ferretdb (see its main.go for why not cmd/ferretdb).
#
# Idempotent: does nothing when the binary is newer than tools/ferretdb/*.go, go.mod and
# go.sum (pass --force to rebuild; --quiet to print nothing then). Concurrent runs wait for
# each other (flock).
# Needs Go >= 1.24 on PATH or in /usr/local/go/bin; downloads modules through the Go
# module proxy on a cold module cache. Cold build ~2 min; warm ~3 s.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$(dirname "$here")"
src="$tools/ferretdb"
bin="$tools/.bin/ferretdb"
force=0
quiet=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --quiet) quiet=1 ;;
    *) echo "usage: $0 [--force] [--quiet]" >&2; exit 2 ;;
  esac
done

up_to_date() {
  [[ -x "$bin" ]] || return 1
  [[ -z "$(find "$src" -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$bin")" ]]
}

if [[ $force == 0 ]] && up_to_date; then
  ((quiet)) || echo "build-ferretdb: $bin is up to date"
  exit 0
fi

export PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  echo "build-ferretdb: Go not found (looked on PATH and in /usr/local/go/bin)" >&2
  exit 1
fi

mkdir -p "$tools/.bin"
exec 9>"$tools/.bin/.ferretdb.lock"
flock 9
# Another run may have built it while we waited.
if [[ $force == 0 ]] && up_to_date; then
  ((quiet)) || echo "build-ferretdb: $bin is up to date"
  exit 0
fi

echo "build-ferretdb: building $bin with $(go version | cut -d' ' -f3) …"
start=$SECONDS
cd "$src"
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -buildvcs=false -trimpath -o "$bin.tmp" .
mv -f "$bin.tmp" "$bin"
echo "build-ferretdb: built $bin in $((SECONDS - start)) s"
