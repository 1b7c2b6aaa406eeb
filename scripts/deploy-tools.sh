#!/usr/bin/env bash
# Installs the tools test/deploy judges the deployment files with, from Debian's
# packages, when they are missing: systemd (systemd-analyze, systemd-sysusers; it
# installs and works without systemd running) and strace (the system call audit of the
# units' SystemCallFilter). Needs root and apt; elsewhere it says what is missing and
# the tests skip (they fail under CI=true). Run by scripts/test.sh.
set -euo pipefail

missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v strace >/dev/null 2>&1 || missing+=(strace)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "deploy tools missing (${missing[*]}): install Debian's ${missing[*]}; test/deploy will skip (fail under CI=true)" >&2
  exit 0
fi
echo "== installing ${missing[*]} from Debian's packages (test/deploy)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "apt-get could not install ${missing[*]}: test/deploy will skip (fail under CI=true)" >&2
fi
