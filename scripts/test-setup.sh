#!/bin/sh
# Installs the Debian packages the tests need, once: `npm test` runs this first (the `pretest`
# script), so that the README's one test command passes on a fresh machine and CI runs every test.
# Each line of NEEDS is "<Debian package> <command that proves it is installed>"; add a line when
# a test starts driving another program. Nothing is done when every command is already present.
set -eu

NEEDS='
swtpm swtpm
tpm2-tools tpm2_activatecredential
openssl openssl
chromium chromium
libnss3-tools certutil
'

missing=
for pair in $(printf '%s' "$NEEDS" | tr ' ' ':'); do
  package=${pair%%:*}
  command=${pair#*:}
  command -v "$command" >/dev/null 2>&1 || missing="$missing $package"
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-setup: the tests need these packages (install them yourself):$missing" >&2
  exit 1
fi
sudo=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "test-setup: need root or sudo to install:$missing" >&2; exit 1; }
  sudo=sudo
fi
echo "test-setup: installing$missing" >&2
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
