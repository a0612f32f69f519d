#!/usr/bin/env bash
# One entry point for a fresh machine: installs what is missing (Deno from the npm registry,
# Mesa's lavapipe Vulkan driver when no WebGPU adapter exists), then runs a `deno task`.
# Usage: bash tools/run.sh serve [flags]   |   bash tools/run.sh test   |   bash tools/run.sh <task> ...
set -euo pipefail
cd "$(dirname "$0")/.."
DENO_VERSION=2.9.6
DENO="$PWD/.tools/node_modules/.bin/deno"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

say() { echo "[run.sh] $*" >&2; }

if [ ! -x "$DENO" ] || ! "$DENO" --version 2>/dev/null | grep -q "deno $DENO_VERSION"; then
  command -v npm >/dev/null || { say "npm is needed to install Deno $DENO_VERSION (apt-get install -y nodejs npm)"; exit 1; }
  say "installing Deno $DENO_VERSION from the npm registry into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >&2
fi

# A WebGPU adapter? If not, install Mesa's Vulkan drivers (lavapipe runs WebGPU on the CPU). Also when an adapter
# exists but no Vulkan driver is installed and root can apt: wgpu then falls back to OpenGL (Mesa's llvmpipe through
# EGL, no shader-f16), which is slower and not what the project is tested on.
vk_icd() {
  for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do [ -e "$f" ] && return 0; done
  return 1
}
if "$DENO" run --quiet --unstable-webgpu --allow-all tools/probe_gpu.ts --gpu wgpu >/dev/null 2>&1; then
  if ! vk_icd && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "WebGPU runs on OpenGL here (no Vulkan driver): installing Mesa's Vulkan drivers (mesa-vulkan-drivers) through apt"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers) >&2 ||
      say "could not install mesa-vulkan-drivers; going on with the OpenGL adapter"
  fi
else
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "no WebGPU adapter: installing Mesa's Vulkan drivers (mesa-vulkan-drivers) through apt"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers) >&2
  elif command -v sudo >/dev/null; then
    say "no WebGPU adapter: installing mesa-vulkan-drivers with sudo apt-get"
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers) >&2
  else
    say "no WebGPU adapter and no way to install one: install a Vulkan driver (Debian/Ubuntu: apt-get install mesa-vulkan-drivers)"
    exit 1
  fi
fi

# Dawn (the second WebGPU backend, src/gpu/backends.ts): the pinned npm package `webgpu` (dawn.node, a Node-API addon)
# beside Deno in .tools/. Dawn's Vulkan backend needs Mesa >= 24 for lavapipe (22.3 lacks
# shaderUniform*ArrayDynamicIndexing); when the system's Mesa is older, a newer lavapipe is unpacked from the
# distribution's backports into .tools/mesa (apt-get download + dpkg -x, no system change) and used by Dawn only:
# wgpu keeps the system driver, on which its CPU matmul schedule measured faster (README, "Two backends").
DAWN_NPM=0.6.2
if [ -z "${COGVIEW2_NO_DAWN:-}" ]; then
  if ! grep -q "\"version\": \"$DAWN_NPM\"" .tools/node_modules/webgpu/package.json 2>/dev/null; then
    if command -v npm >/dev/null; then
      say "installing Dawn (npm webgpu@$DAWN_NPM) into .tools/"
      npm install --prefix .tools --no-audit --no-fund --loglevel=error "webgpu@$DAWN_NPM" >&2 ||
        say "could not install npm webgpu@$DAWN_NPM: only Deno's built-in WebGPU (wgpu) is available"
    else
      say "no npm: Dawn (npm webgpu@$DAWN_NPM) not installed; only Deno's built-in WebGPU (wgpu) is available"
    fi
  fi
  mesa_ver=$(dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^[0-9]+://' || true)
  mesa_major=${mesa_ver%%.*}
  if [ -n "$mesa_ver" ] && [ "${mesa_major:-0}" -lt 24 ] 2>/dev/null && [ ! -e .tools/mesa/icd.json ] &&
    [ -e .tools/node_modules/webgpu/package.json ]; then
    bash tools/dawn_mesa.sh >&2 ||
      say "Dawn needs Mesa >= 24 (this machine has $mesa_ver) and the backports copy could not be unpacked: Dawn will report no adapter; wgpu works"
  fi
fi

task="${1:-serve}"; shift || true

# The browser test drives Debian's Chromium through playwright-core (no browser download); install it for `test`.
if [ "$task" = test ] && [ ! -x /usr/bin/chromium ] && [ -z "${COGVIEW2_NO_BROWSER:-}" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium for the browser test (set COGVIEW2_NO_BROWSER=1 to skip)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 ||
      say "could not install chromium: the browser test will be skipped"
  else
    say "no /usr/bin/chromium (apt-get install chromium): the browser test will be skipped"
  fi
fi

exec "$DENO" task --quiet "$task" "$@"
