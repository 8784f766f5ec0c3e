#!/usr/bin/env bash
# Regenerates the golden files on purpose: the reference output of the chat spec, the expected
# diagnostics of the corpus fixtures, and the published JSON Schema. Review the diff before
# committing: the reference files are the contract the generator is held to.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --scratch-path .build-gen --product modelsync
tool=.build-gen/debug/modelsync

"$tool" generate Tests/Reference/Chat.modelsync.yaml --output Tests/Reference/Chat --module-name ChatModels
"$tool" generate --server Tests/Reference/Chat.modelsync.yaml --output Tests/Reference/ChatServer
"$tool" json-schema > Schemas/modelsync.schema.json

# Each corpus fixture ends with its expected diagnostics as `# expect:` comments: rewrite them.
cd Tests/ModelSyncGeneratorTests/Fixtures/Diagnostics
for spec in *.modelsync.yaml; do
    expected="${spec%.modelsync.yaml}.expected"
    output=$("../../../../$tool" validate "$spec" 2>&1 >/dev/null | sed "s|^$spec:||" || true)
    if [ -f "$expected" ]; then
        printf '%s\n' "$output" > "$expected"
        continue
    fi
    body=$(sed '/^# expect: /d' "$spec" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}')
    { printf '%s\n\n' "$body"; printf '%s\n' "$output" | sed 's/^/# expect: /'; } > "$spec"
done
echo "Goldens refreshed; review with: git diff"
