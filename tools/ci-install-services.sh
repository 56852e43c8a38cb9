#!/usr/bin/env bash
# Installs what latchkey's throwaway test servers need, on Debian/Ubuntu (CI or a dev box):
#   - redis-server, redis-tools (redis-cli), redis-sentinel and memcached from apt, when missing;
#   - postgresql from apt (for initdb and postgres), when there is no initdb;
#   - when there is no mongod: FerretDB, built from tools/ferretdb with Go (PATH or /usr/local/go/bin).
# Idempotent: installs only what is missing, runs `apt-get update` only when needed, and
# build-ferretdb.sh does nothing when the binary is up to date. Prints what it did.
# Run it (bash tools/ci-install-services.sh) or source it; as root, or with sudo available.
# Note: Debian's redis-server package also starts a system redis on 6379 where systemd runs;
# the test servers never use that port.

latchkey_install_services() (
  set -euo pipefail
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  say() { echo "ci-install-services: $*"; }

  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      as_root=(sudo)
    fi
  fi

  # binary -> Debian package
  declare -A package_of=(
    [redis-server]=redis-server
    [redis-cli]=redis-tools
    [redis-sentinel]=redis-sentinel
    [memcached]=memcached
  )
  missing=()
  for bin in redis-server redis-cli redis-sentinel memcached; do
    if command -v "$bin" >/dev/null 2>&1; then
      say "$bin: present ($(command -v "$bin"))"
    else
      missing+=("${package_of[$bin]}")
    fi
  done

  if ((${#missing[@]} > 0)); then
    if ! command -v apt-get >/dev/null 2>&1; then
      say "missing ${missing[*]} and there is no apt-get: install them by hand" >&2
      exit 1
    fi
    if [[ $(id -u) -ne 0 && ${#as_root[@]} -eq 0 ]]; then
      say "missing ${missing[*]}: run as root (or install sudo)" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when some package has no install candidate.
    need_update=0
    for pkg in "${missing[@]}"; do
      candidate="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
      if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
        need_update=1
      fi
    done
    if ((need_update)); then
      say "apt-get update"
      "${as_root[@]}" apt-get update -qq
    fi
    say "apt-get install ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    say "apt packages: nothing to install"
  fi

  # PostgreSQL server binaries (initdb, postgres): Debian keeps them under /usr/lib/postgresql/<major>/bin.
  if command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    say "initdb: present"
  else
    say "apt-get install postgresql"
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
  fi

  if command -v mongod >/dev/null 2>&1; then
    say "mongod: present ($(command -v mongod)); FerretDB not needed"
  else
    say "mongod: absent; building FerretDB"
    bash "$here/test-servers/build-ferretdb.sh"
  fi
)

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  latchkey_install_services
  exit $?
else
  latchkey_install_services
fi
