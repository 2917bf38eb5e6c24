#!/usr/bin/env bash
# Makes sure a nats-server binary is available: NATS_SERVER_BIN, PATH, or Debian's
# /usr/sbin/nats-server. On Debian/Ubuntu it installs the `nats-server` package when
# missing (as root, or with sudo); elsewhere it prints exactly what to do.
set -euo pipefail

if [ -n "${NATS_SERVER_BIN:-}" ]; then
  if [ -x "$NATS_SERVER_BIN" ]; then exit 0; fi
  echo "ensure-nats-server: NATS_SERVER_BIN=$NATS_SERVER_BIN is not executable" >&2
  exit 1
fi
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then exit 0; fi

if command -v apt-get >/dev/null 2>&1; then
  echo "ensure-nats-server: nats-server not found; installing the Debian package nats-server" >&2
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "ensure-nats-server: run as root: apt-get install -y nats-server" >&2
    exit 1
  fi
  if ! $SUDO apt-get install -y nats-server >/dev/null 2>&1; then
    $SUDO apt-get update >/dev/null 2>&1 || true
    $SUDO apt-get install -y nats-server >/dev/null
  fi
  # The package enables a system service on port 4222; the platform never uses it.
  if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then exit 0; fi
fi

cat >&2 <<'MSG'
ensure-nats-server: nats-server is required and could not be installed automatically.
Install it with one of:
  Debian/Ubuntu:  sudo apt-get install -y nats-server
  any Linux/macOS: download from https://github.com/nats-io/nats-server/releases and put it on PATH
Or point NATS_SERVER_BIN at the binary, or run against an existing server with --nats URL.
MSG
exit 1
