#!/usr/bin/env bash
# Unpacks a newer Mesa lavapipe (Vulkan on the CPU) for Dawn into .tools/mesa without touching the system driver:
# the distribution's backports suite, on the mirror this machine's own apt sources name, downloaded with apt-get into
# a private apt state (no root needed) and extracted with dpkg -x; .tools/mesa/icd.json names the private lavapipe by
# absolute path (src/gpu/backends.ts sets VK_DRIVER_FILES to it while Dawn enumerates adapters).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[dawn_mesa] $*" >&2; }
command -v apt-get >/dev/null && command -v dpkg >/dev/null || { say "needs apt-get and dpkg (Debian/Ubuntu)"; exit 1; }
. /etc/os-release
codename=${VERSION_CODENAME:-}
[ -n "$codename" ] || { say "no VERSION_CODENAME in /etc/os-release"; exit 1; }
# The mirror: the first URI of this machine's apt sources serving "$codename" (deb822 .sources files, then the
# one-line format). Never a hard-coded host.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -e "$f" ] || continue
  mirror=$(awk -v c="$codename" '
    /^[[:space:]]*$/ { if (u != "" && s ~ ("(^| )" c "( |$)")) { print u; exit } u = ""; s = ""; next }
    /^URIs:/ { u = $2 } /^Suites:/ { $1 = ""; s = $0 " " }
    END { if (u != "" && s ~ ("(^| )" c "( |$)")) print u }' "$f" | head -n 1)
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ]; then
  mirror=$(grep -hE "^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[a-z]+://[^ ]+[[:space:]]+$codename[[:space:]]" \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' |
    awk '{ print $1; exit }')
fi
[ -n "$mirror" ] || { say "no apt source for $codename found in /etc/apt"; exit 1; }
dir=$(cd .tools && pwd -P)/mesa
tmp=$(mktemp -d "$PWD/.tools/mesa.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs" "$tmp/root"
echo "deb $mirror $codename-backports main" >"$tmp/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
[ "$(id -u)" = 0 ] || apt_opts+=(-o "Dir::State::status=/var/lib/dpkg/status")
say "fetching Mesa's Vulkan drivers from $codename-backports ($mirror) for Dawn, into .tools/mesa"
apt-get "${apt_opts[@]}" -qq update
(cd "$tmp/debs" && apt-get "${apt_opts[@]}" -qq download "mesa-vulkan-drivers/$codename-backports" \
  "libdrm2/$codename-backports" "libdrm-amdgpu1/$codename-backports")
for d in "$tmp"/debs/*.deb; do dpkg -x "$d" "$tmp/root"; done
lvp=$(find "$tmp/root" -name libvulkan_lvp.so | head -n 1)
[ -n "$lvp" ] || { say "the backports package has no libvulkan_lvp.so"; exit 1; }
ver=$(dpkg-deb -f "$tmp"/debs/mesa-vulkan-drivers_*.deb Version)
rm -rf "$dir"
mv "$tmp/root" "$dir"
lvp=${lvp/#$tmp\/root/$dir}
sed -E "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lvp\"#" \
  "$dir/usr/share/vulkan/icd.d/lvp_icd.json" >"$dir/icd.json"
echo "$ver" >"$dir/VERSION"
say "Mesa $ver for Dawn in .tools/mesa (the system driver is unchanged)"
