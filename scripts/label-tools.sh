#!/usr/bin/env bash
# Makes sure the bar code decoders the label scan-back tests use are
# installed: zbarimg (zbar-tools: Code 128, GS1-128, QR), pdftoppm
# (poppler-utils: PDF pages to PNG) and dmtxread (dmtx-utils: Data
# Matrix). Installs missing ones with apt-get. Idempotent; used by .ci/run
# and safe to run by hand.
set -euo pipefail

apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "label-tools.sh: need root to install $*" >&2; exit 1; fi
  # Try with the package lists there are; refresh them only if that fails.
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

# tool:package pairs.
missing=()
for pair in zbarimg:zbar-tools pdftoppm:poppler-utils dmtxread:dmtx-utils; do
  tool=${pair%%:*} pkg=${pair#*:}
  if ! command -v "$tool" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "label-tools.sh: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
for tool in zbarimg pdftoppm dmtxread; do
  command -v "$tool" >/dev/null 2>&1 || { echo "label-tools.sh: $tool is still missing" >&2; exit 1; }
done
echo "label-tools.sh: zbarimg, pdftoppm and dmtxread are installed"
