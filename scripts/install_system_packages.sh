#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only when they are missing:
# a virtual X server and the X/GL libraries Qt needs for headless napari, and Chromium
# to render the HTML report in a test. Uses sudo when not root.
set -euo pipefail

packages=(
  xvfb xauth libgl1 libegl1 libxkbcommon-x11-0 libdbus-1-3 libfontconfig1
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: done"
