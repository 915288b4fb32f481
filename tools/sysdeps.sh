#!/usr/bin/env bash
# Install pgTAP and pg_prove from Debian's packages when they are missing.
# The server is the one tools/pgserver.sh runs (PG_BINDIR, when set). pgTAP is plain SQL, so a
# server Debian ships no pgTAP package for (a PG_BINDIR bundle, say) gets the files of the one it does.
set -euo pipefail
here=$(dirname "$0")
bindir=$(bash "$here/pgserver.sh" bindir)
major=$(bash "$here/pgserver.sh" major)
sharedir=$("$bindir/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$major")
# Debian's postgresql-N-pgtap for a Debian server; for any other, the one this Debian release ships (15).
pgtap_major=$major
[ "$sharedir" = "/usr/share/postgresql/$major" ] || pgtap_major=15
from=/usr/share/postgresql/$pgtap_major/extension
need=()
command -v pg_prove >/dev/null 2>&1 || need+=(libtap-parser-sourcehandler-pgtap-perl)
if [ ! -f "$sharedir/extension/pgtap.control" ] && [ ! -f "$from/pgtap.control" ]; then
  need+=("postgresql-$pgtap_major-pgtap")
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "sysdeps: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -f "$sharedir/extension/pgtap.control" ]; then
  echo "sysdeps: copying pgTAP's SQL from $from into $sharedir/extension"
  cp "$from"/pgtap.control "$from"/pgtap--*.sql "$sharedir/extension/"
fi
