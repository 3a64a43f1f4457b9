#!/usr/bin/env bash
# Make sure the embedded database server answers: FerretDB 1.24 (MongoDB wire protocol) with its
# SQLite backend, data under var/ferretdb/, loopback only, telemetry off.
#
#   scripts/ensure-ferretdb.sh          build it if missing, start it if not answering
#   scripts/ensure-ferretdb.sh build    only build it
#   scripts/ensure-ferretdb.sh stop     stop the server this script started
#
# Built once into the project-local, git-ignored .tools/bin with the Go toolchain from the
# v1.24.2 module. `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` alone builds a
# binary that panics at start: the module omits the generated build/version/version.txt (upstream
# writes it with `bin/task gen-version`), so we build the same module source with that file
# written, and with four small changes (below: `_id` lookups and `$in` that use the `_id` index,
# bulk updates that do not hang, and deletes by `_id` without reading the documents). Environment:
#   FERRETDB_ADDR      listen address (default 127.0.0.1:27018; 27017 is left to a real MongoDB)
#   FERRETDB_DIR       data and state directory (default var/ferretdb)
#   FERRETDB_HANDLER   sqlite (default) or postgresql, with FERRETDB_POSTGRESQL_URL
#   FERRETDB_SYNC      SQLite's `synchronous` (default normal; full syncs the disk every write)
#
# SQLite runs in WAL mode; with synchronous=normal a write is acknowledged once it is in the WAL,
# and the WAL is synced at checkpoints. A killed process (the server's or ours) loses nothing;
# an operating-system crash or power cut may lose the last moments, as MongoDB's own default does
# (it acknowledges before its journal is synced, every 100 ms). It made inserts 1.6 times as fast
# (1,172-1,380/s against 1,999-2,152/s measured side by side, docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
version=v1.24.2
bin="$root/.tools/bin/ferretdb"
# What this script builds: the version plus our changes (scripts/ferretdb). A binary built otherwise (an
# older script, a plain `go install`) is rebuilt.
build_id="$version+id-index+id-in+update-close+delete-ids"
stamp="$root/.tools/bin/ferretdb.build"
addr=${FERRETDB_ADDR:-127.0.0.1:27018}
host=${addr%:*}
port=${addr##*:}
dir=${FERRETDB_DIR:-$root/var/ferretdb}
handler=${FERRETDB_HANDLER:-sqlite}

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

# Whole output first: `… | grep -q` can close the pipe early, and pipefail turns that SIGPIPE
# into a failure.
built() {
  local out
  out=$("$bin" --version 2>/dev/null || true)
  [[ $out == *"version: $version"* ]] && [ "$(cat "$stamp" 2>/dev/null)" = "$build_id" ]
}

build() {
  if [ -x "$bin" ] && built; then
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "FerretDB is not built and Go is missing: install the Go toolchain (https://go.dev/doc/install" >&2
    echo "or Debian's golang-go) so that .tools/bin/ferretdb can be built, then run this again." >&2
    exit 1
  fi
  echo "Building FerretDB $version into .tools/bin (once)…"
  go mod download "github.com/FerretDB/FerretDB@$version"
  local src work
  src="$(go env GOMODCACHE)/cache/download/github.com/!ferret!d!b/!ferret!d!b/@v/$version.zip"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (cd "$work" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$src")
  local mod="$work/github.com/FerretDB/FerretDB@$version"
  echo "$version" > "$mod/build/version/version.txt"
  # Our changes to the source (scripts/ferretdb/patch.py checks each applies exactly once):
  # 1. FerretDB 1.24's SQLite backend creates the unique `_id` index on `_ferretdb_sjson->"_id"`
  #    but filters `_id` lookups, updates and deletes on `_ferretdb_sjson->'$._id'`: the same
  #    value, another expression, so SQLite never uses the index and every `_id` read walks the
  #    table (a missed find: 9.6 / 21.8 / 82 ms at 1k / 10k / 40k documents). Filtering on the
  #    index's own expression makes them index searches (0.39 / 0.35 / 0.42 ms).
  # 2. `{_id: {$in: [...]}}` uses that index too (upstream: a table walk), so a batch of
  #    documents is one read, as on MongoDB (scripts/ferretdb/id_in.go).
  # 3. An `update` command with 100 statements or more no longer hangs the server: upstream
  #    keeps every statement's read open to the end of the command, and the pool has 100.
  # 4. A delete by `{_id: {$in: [...]}}` alone deletes those ids at once, without reading and
  #    decoding each document first (scripts/ferretdb/delete_ids.go).
  # docs/architecture.md, "Storage", says what each is for.
  python3 "$root/scripts/ferretdb/patch.py" "$mod"
  mkdir -p "$root/.tools/bin"
  (cd "$mod" && GOBIN="$root/.tools/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 go install ./cmd/ferretdb)
  echo "$build_id" > "$stamp"
  built || { echo "the FerretDB build in .tools/bin does not report $version" >&2; exit 1; }
}

start() {
  # A server this script started from an older build (before a change to its patches) is
  # restarted on the new one; the data stays.
  if answers && [ -f "$dir/ferretdb.pid" ] && [ "$(cat "$dir/ferretdb.running" 2>/dev/null)" != "$build_id" ]; then
    echo "FerretDB on $addr runs an older build: restarting it."
    stop
  fi
  if answers; then
    echo "FerretDB is up on $addr."
    return 0
  fi
  if [ "$host" != "127.0.0.1" ] && [ "$host" != "localhost" ]; then
    echo "No database answers on $addr; start it there (or unset FERRETDB_ADDR)." >&2
    exit 1
  fi
  mkdir -p "$dir/data"
  local backend=("--handler=$handler")
  if [ "$handler" = "sqlite" ]; then
    backend+=("--sqlite-url=file:$dir/data/?_pragma=synchronous(${FERRETDB_SYNC:-normal})")
  else
    backend+=("--postgresql-url=${FERRETDB_POSTGRESQL_URL:?set FERRETDB_POSTGRESQL_URL for the postgresql handler}")
  fi
  # setsid: the server outlives this script and a Ctrl-C meant for `make run`'s services.
  setsid "$bin" "${backend[@]}" --state-dir="$dir" --listen-addr="$addr" \
    --telemetry=disable --debug-addr=- --log-level=warn \
    >>"$dir/ferretdb.log" 2>&1 < /dev/null &
  echo $! > "$dir/ferretdb.pid"
  echo "$build_id" > "$dir/ferretdb.running"
  for _ in $(seq 1 100); do
    if answers; then
      echo "FerretDB is up on $addr (data in ${dir#"$root"/})."
      return 0
    fi
    sleep 0.1
  done
  echo "FerretDB did not come up on $addr within 10 s; its log, $dir/ferretdb.log, ends:" >&2
  tail -n 20 "$dir/ferretdb.log" >&2
  exit 1
}

stop() {
  local pid
  pid=$(cat "$dir/ferretdb.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    # Until the process has gone, not only its port: it lets go of the SQLite files last, and
    # a server started before that fails with "database is locked".
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "FerretDB stopped."
  fi
  rm -f "$dir/ferretdb.pid"
}

case "${1:-start}" in
  build) build ;;
  start) build; start ;;
  stop) stop ;;
  *) echo "usage: $0 [build|start|stop]" >&2; exit 2 ;;
esac
