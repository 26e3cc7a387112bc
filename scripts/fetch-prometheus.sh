#!/usr/bin/env bash
# Fetch Prometheus 3.x, promtool and Alertmanager from Debian's unstable suite into .cache/prometheus.
# Debian stable ships Prometheus 2.42, which lacks Prometheus 3's semantics the tests compare against,
# so the newer .deb files are downloaded with a private apt configuration (the system's own sources
# stay untouched) and unpacked with `dpkg -x`. The mirror is the one this machine's apt already uses.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/prometheus
mkdir -p "$dest"
if [ -x "$dest/root/usr/bin/prometheus" ] && [ -x "$dest/root/usr/bin/promtool" ] && [ -x "$dest/root/usr/bin/prometheus-alertmanager" ]; then
  exit 0
fi

mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1 || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "fetch-prometheus: no Debian mirror configured in apt's sources" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/etc"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror unstable main" > "$work/etc/sources.list"
apt_opts=(
  -o "Dir::Etc::sourcelist=$work/etc/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache::archives=$work/archives"
  -o "APT::Get::List-Cleanup=0"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -qq update
(cd "$work" && apt-get "${apt_opts[@]}" -qq download prometheus promtool prometheus-alertmanager)
rm -rf "$dest/root"
mkdir -p "$dest/root"
: > "$dest/versions.txt"
for deb in "$work"/*.deb; do
  dpkg -x "$deb" "$dest/root"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' >> "$dest/versions.txt"
done
"$dest/root/usr/bin/prometheus" --version | head -n 1 >> "$dest/versions.txt"
cat "$dest/versions.txt"
