#!/usr/bin/env bash
# Installs the reference servers and load tools the benchmarks in bench/ compare against:
#   wrk (HTTP load), nginx-light (static HTTP reference), tftpd-hpa (TFTP reference),
#   atftp (TFTP client of the firmware bench), curl.
# Only packages that are missing are installed (Debian/Ubuntu, as root or with sudo).
# The packages' system services are never started: the benchmarks run nginx and in.tftpd
# themselves, unprivileged, in the foreground, on 127.0.0.1 high ports with config files in a
# temporary directory. policy-rc.d keeps the packages' postinst scripts from starting them.
set -euo pipefail

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v in.tftpd >/dev/null || [ -x /usr/sbin/in.tftpd ] || need+=(tftpd-hpa)
command -v atftp >/dev/null || need+=(atftp)
command -v curl >/dev/null || need+=(curl)

if [ ${#need[@]} -eq 0 ]; then
	echo "bench/setup.sh: wrk, nginx, in.tftpd, atftp and curl are installed"
	exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "run as root: apt-get install -y ${need[*]}" >&2; exit 1; }
	sudo="sudo"
fi

# Keep the packages from starting (and enabling) their daemons at install time.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

echo "bench/setup.sh: installing ${need[*]}"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"

# Some images start services without policy-rc.d (no systemd here, but be sure): stop them,
# so that nothing of ours listens on 80 or 69.
for svc in nginx tftpd-hpa; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
		$sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true
	fi
done
echo "bench/setup.sh: done"
