#!/usr/bin/env bash
# Checks that a build with nothing changed does not run the ModelSync build plugin again.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests >/dev/null
if swift build --build-tests 2>&1 | grep "Generating ModelSync"; then
    echo "a no-op rebuild ran the generator again"
    exit 1
fi
echo "no-op rebuild: the generator did not run"
