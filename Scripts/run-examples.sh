#!/usr/bin/env bash
# Builds and runs both example packages and checks their transcripts.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT

echo "--- ChatSync (the README's demo), embedded server"
swift run --package-path Examples/ChatSync chat-sync | tee "$work/chat.txt"
grep -q "6 of 6 temporary IDs replaced, 0 left" "$work/chat.txt"
if sed -n '/^4. Final state/,/^5. One unit/p' "$work/chat.txt" | grep -q "tmp_"; then
    echo "a temporary ID is left in the final state"
    exit 1
fi

echo "--- ChatSync against a separate server process, keeping the database between two runs"
swift build --package-path Examples/ChatSync --product chat-sync >/dev/null
"$(swift build --package-path Examples/ChatSync --show-bin-path)/chat-sync" --serve > "$work/server.txt" &
server_pid=$!
for _ in $(seq 1 100); do [ -s "$work/server.txt" ] && break; sleep 0.1; done
url="$(head -1 "$work/server.txt")"
swift run --package-path Examples/ChatSync chat-sync --server "$url" --database "$work/kept.sqlite" > "$work/run1.txt"
swift run --package-path Examples/ChatSync chat-sync --server "$url" --database "$work/kept.sqlite" > "$work/run2.txt"
grep -q "6 of 6 temporary IDs replaced, 0 left" "$work/run2.txt"
test -s "$work/kept.sqlite"
threads=$(sed -n '/^4. Final state/,/^5. One unit/p' "$work/run2.txt" | grep -c '^  thread ')
# Each run makes two threads (its chat, and the chat of step 5's unit); the second run lists its own
# chat after the first run's two.
[ "$threads" -eq 3 ] || { echo "expected the kept database to hold 3 threads, found $threads"; exit 1; }

echo "--- ChatServer: its manifest loads (its source is built as this package's chat-server-example)"
swift package --package-path Examples/ChatServer describe > /dev/null

echo "--- ChatSync against the generated server on PostgreSQL: modelsync-server, then ChatServer's mounted routes"
for server in modelsync-server chat-server; do
    ./Scripts/demo-on-postgres.sh "$server" > "$work/postgres.txt" 2>&1 || { cat "$work/postgres.txt"; exit 1; }
    tail -1 "$work/postgres.txt"
done

echo "--- TodoOffline"
swift run --package-path Examples/TodoOffline todo-offline | tee "$work/todo.txt"
grep -q "failed: HTTP 422: title must be at most 40 characters" "$work/todo.txt"
echo "examples ok"
