#!/usr/bin/env sh
# System packages the test suite needs besides Python: FFmpeg (a real streaming server for the live
# stream tests) and Chromium (the browser the web app's end-to-end tests drive). Installed from the
# distribution's packages when missing; nothing is downloaded by the tests themselves.
set -eu
missing=""
command -v ffmpeg >/dev/null 2>&1 || missing="$missing ffmpeg"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
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
