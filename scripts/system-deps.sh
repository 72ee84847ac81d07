#!/usr/bin/env sh
# System packages the test suite needs besides Python: FFmpeg (a real streaming server for the live
# stream tests), Chromium (the browser the web app's end-to-end tests drive) and, on x86-64, QEMU's
# user-mode emulator (the int8 network is run on emulated older processors: AVX2 without AVX-512,
# AVX, SSE4.2). Installed from the distribution's packages when missing; nothing is downloaded by
# the tests themselves.
set -eu
missing=""
command -v ffmpeg >/dev/null 2>&1 || missing="$missing ffmpeg"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ "$(uname -m)" = "x86_64" ]; then
    command -v qemu-x86_64 >/dev/null 2>&1 || missing="$missing qemu-user"
fi
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "faceveil tests need:$missing (install them with your package manager)" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
