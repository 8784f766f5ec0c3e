#!/usr/bin/env bash
# Runs every test of ModelSync: the package's unit, golden, runtime and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
swift test "$@"
