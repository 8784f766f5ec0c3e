#!/usr/bin/env bash
# The README's demo against the generated server on PostgreSQL instead of the embedded reference
# server: starts a private PostgreSQL cluster (initdb + pg_ctl, as the postgres user when run as root,
# on a unix socket in a temporary folder, so no port can clash), serves the demo's spec, runs
# `chat-sync --server URL` against it twice on one kept database, and stops everything. Needs
# Debian's `postgresql` package (initdb, pg_ctl) and nothing else.
#
#     Scripts/demo-on-postgres.sh                  # the server is `modelsync-server --spec …`
#     Scripts/demo-on-postgres.sh chat-server      # the server is Examples/ChatServer (mounted routes)
set -euo pipefail
cd "$(dirname "$0")/.."
server_kind="${1:-modelsync-server}"
case "$server_kind" in
    modelsync-server) product=modelsync-server; spec_arguments=(--spec Examples/ChatSync/Sources/ChatSyncModels/ChatSync.modelsync.yaml) ;;
    # The example package's source, built as a target of this package (see Package.swift).
    chat-server) product=chat-server-example; spec_arguments=() ;;
    *) echo "usage: $0 [modelsync-server | chat-server]" >&2; exit 2 ;;
esac

bin="$(command -v initdb >/dev/null 2>&1 && dirname "$(readlink -f "$(command -v initdb)")" || ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "PostgreSQL's server programs (initdb, pg_ctl) were not found: install them with 'apt-get install postgresql'" >&2
    exit 1
fi
# From /: the postgres user may not be allowed into the current folder (a clone in a private folder).
as_postgres() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

work="$(mktemp -d)"
chmod 755 "$work"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -d "$work/data" ] && as_postgres "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/data" "$work/socket" "$work/log"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/data" "$work/socket" "$work/log"

echo "--- a private PostgreSQL cluster in $work"
as_postgres "$bin/initdb" -D "$work/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
as_postgres "$bin/pg_ctl" -D "$work/data" -l "$work/log/postgres.log" -w \
    -o "-k $work/socket -c listen_addresses='' -c fsync=off" start >/dev/null
as_postgres "$bin/createdb" -h "$work/socket" -U postgres chat

echo "--- $server_kind with the demo's spec (development tenant 'demo')"
swift build --product "$product" >/dev/null
"$(swift build --show-bin-path)/$product" "${spec_arguments[@]}" \
    --database "postgres://postgres@localhost/chat?host=$work/socket" \
    --development-tenant demo --host 127.0.0.1 --port 0 > "$work/server.txt" 2> "$work/server.err" &
server_pid=$!
for _ in $(seq 1 300); do grep -q "^listening on " "$work/server.txt" 2>/dev/null && break; sleep 0.1; done
if ! grep -q "^listening on " "$work/server.txt"; then
    echo "$server_kind did not start:" >&2
    cat "$work/server.err" >&2
    exit 1
fi
url="$(sed -n 's/^listening on //p' "$work/server.txt" | head -1)"

echo "--- chat-sync --server $url (twice, one kept database)"
swift run --package-path Examples/ChatSync chat-sync --server "$url" --database "$work/kept.sqlite" | tee "$work/run1.txt"
swift run --package-path Examples/ChatSync chat-sync --server "$url" --database "$work/kept.sqlite" > "$work/run2.txt"
grep -q "6 of 6 temporary IDs replaced, 0 left" "$work/run1.txt"
grep -q "6 of 6 temporary IDs replaced, 0 left" "$work/run2.txt"
# Each run makes two threads (its chat, and the chat of step 5's unit, sent as one batch); the second
# run lists its own chat after the first run's two.
threads=$(sed -n '/^4. Final state/,/^5. One unit/p' "$work/run2.txt" | grep -c '^  thread ')
[ "$threads" -eq 3 ] || { echo "expected the kept database to hold 3 threads, found $threads" >&2; exit 1; }
echo "demo on PostgreSQL ($server_kind) ok"
