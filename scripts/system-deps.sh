#!/usr/bin/env bash
# Install the Debian packages mcuforge needs, only those missing. Run as root, or it says what to install.
set -euo pipefail

packages=()
command -v arm-none-eabi-gcc >/dev/null 2>&1 || packages+=(gcc-arm-none-eabi)
if ! command -v arm-none-eabi-gcc >/dev/null 2>&1 || [ ! -f "$(arm-none-eabi-gcc -print-file-name=librdimon.a)" ]; then
    packages+=(libnewlib-arm-none-eabi)
fi
command -v qemu-system-arm >/dev/null 2>&1 || packages+=(qemu-system-arm)
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || packages+=(dataset-fashion-mnist)
# offline speech synthesis for dataset.kind speech_synth (the keyword-spotting pipelines)
command -v espeak-ng >/dev/null 2>&1 || packages+=(espeak-ng)
# headless Chromium opens the review report in the tests (tests/test_review.py; skipped without it)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
for extra in "$@"; do
    dpkg -s "$extra" >/dev/null 2>&1 || packages+=("$extra")
done

if [ ${#packages[@]} -eq 0 ]; then
    echo "system packages: all present (arm-none-eabi-gcc, newlib, qemu-system-arm, dataset-fashion-mnist, espeak-ng, chromium)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "mcuforge needs these Debian packages, and installing them needs root:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages[*]}" >&2
    exit 1
fi
echo "system packages: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "system packages: installed"
