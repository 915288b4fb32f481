#!/usr/bin/env bash
# Install pgTAP and pg_prove from Debian's packages when they are missing.
set -euo pipefail
bindir=$(bash "$(dirname "$0")/pgserver.sh" bindir)
major=$("$bindir/postgres" --version | sed -E 's/.* ([0-9]+)\..*/\1/')
need=()
command -v pg_prove >/dev/null 2>&1 || need+=(libtap-parser-sourcehandler-pgtap-perl)
ls /usr/share/postgresql/"$major"/extension/pgtap.control >/dev/null 2>&1 || need+=("postgresql-$major-pgtap")
[ ${#need[@]} -eq 0 ] && exit 0
echo "sysdeps: installing ${need[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
