#!/usr/bin/env bash
# Install everything guacbridge needs on Debian 12, idempotently, as root.
#
#   deploy/install.sh          system packages, the venv in .venv, the package and its page
#   deploy/install.sh --test   the same plus what the test suite needs (Chromium, pytest, ...)
#
# guacd is not in bookworm: the bullseye suite of the same archive is added with pin priority
# 100, so that only guacd and its plugins come from it.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
want_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) want_tests=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

log() { printf '== %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "run this as root (it installs Debian packages)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# The archive URI of bookworm, read from the machine's own apt sources.
debian_archive() {
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$uri" ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' \
          /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  [ -n "$uri" ] || { echo "no bookworm entry in the apt sources" >&2; exit 1; }
  printf '%s' "$uri"
}

add_bullseye() {
  local list=/etc/apt/sources.list.d/guacbridge-bullseye.sources
  local pin=/etc/apt/preferences.d/guacbridge-bullseye
  if [ ! -f "$list" ]; then
    log "adding the bullseye suite (pinned to 100) for guacd"
    cat > "$list" <<SRC
Types: deb
URIs: $(debian_archive)
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  if [ ! -f "$pin" ]; then
    cat > "$pin" <<PIN
Package: *
Pin: release n=bullseye
Pin-Priority: 100
PIN
  fi
}

missing() {
  local pkg out=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || out+=("$pkg")
  done
  printf '%s\n' "${out[@]}"
}

packages=(
  python3 python3-venv python3-dev gcc libxml2-dev
  guacd libguac-client-vnc0 libguac-client-ssh0 libguac-client-telnet0 libguac-client-rdp0
  tigervnc-standalone-server tigervnc-tools xterm twm x11-utils xfonts-base xfonts-75dpi
)
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
[ "$want_tests" = 1 ] && packages+=(chromium xclip x11-apps mariadb-server rabbitmq-server
                                     openssh-server inetutils-telnetd socat xrdp xorgxrdp
                                     nginx libnss3-tools make
                                     openipmi ipmitool)   # ipmi_sim: the tests' BMC

add_bullseye
mapfile -t todo < <(missing "${packages[@]}")
if [ "${#todo[@]}" -gt 0 ] && [ -n "${todo[0]}" ]; then
  log "apt: ${todo[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${todo[@]}" >/dev/null
fi

cd "$here"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
log "installing guacbridge into $venv"
if [ "$want_tests" = 1 ]; then
  "$venv/bin/python" -m pip install -q -e ".[test]"
else
  "$venv/bin/python" -m pip install -q -e .
fi
log "installing the console page's JavaScript (npm)"
(cd "$here/html" && npm ci --no-audit --no-fund --loglevel=error)
log "done"
