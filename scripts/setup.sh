#!/usr/bin/env bash
# Installs what the project's build uses beyond the Rust toolchain, on Debian/Ubuntu.
#
# - nasm: lets mozjpeg-sys build libjpeg-turbo's SIMD decoders (about 2x faster JPEG decoding;
#   without it the build still succeeds and gives the same pixels, only slower).
# - chromium: the figure test (crates/dealer-free-sim/tests/figures_render.rs) renders the
#   figures' index.html headless and checks every figure is drawn; without a browser that test
#   fails unless DEALER_FREE_SIS_SKIP_BROWSER=1 is set.
#
# Safe to run repeatedly; does nothing when everything is present. Needs root (or sudo) only
# when something is missing.
set -euo pipefail

missing=()
command -v nasm >/dev/null 2>&1 || missing+=(nasm)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
  || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: please install: ${missing[*]} (no apt-get here)" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "setup: not root and no sudo; please install: ${missing[*]}" >&2
    exit 0
  fi
fi
echo "setup: installing ${missing[*]}" >&2
$sudo apt-get update -qq >/dev/null || true
if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; then
  echo "setup: could not install ${missing[*]}; continuing without (slower JPEG decoding;" \
    "the figure test's browser check needs chromium)" >&2
fi
