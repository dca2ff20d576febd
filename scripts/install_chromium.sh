#!/usr/bin/env bash
# Install Debian's chromium (used by the HtmlSink browser test and to render docs/img screenshots).
# Idempotent: does nothing when /usr/bin/chromium exists. Never fails: when chromium cannot be
# installed (not root, no apt-get, no network), it prints a note and exits 0, and the browser
# tests skip with a clear reason.
set -uo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi

note() {
  echo "NOTE: could not install chromium ($1); the headless-browser tests will be skipped." >&2
  echo "      Install it yourself with: sudo apt-get install -y chromium" >&2
  exit 0
}

command -v apt-get >/dev/null 2>&1 || note "apt-get not found"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    note "not root and no passwordless sudo"
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || note "apt-get update failed"
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null \
  || note "apt-get install chromium failed"

if [ -x "$CHROMIUM" ]; then
  echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
  note "$CHROMIUM is still missing after apt-get install"
fi
exit 0
