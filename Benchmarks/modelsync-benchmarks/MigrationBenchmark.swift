import EvolutionV1Models
import EvolutionV2Models
import Foundation
import GRDB
import ModelSync

/// `migrate100k`: version 2 of the notes app opens a version 1 database of 100,000 authors, 10,000
/// of them with a queued create, and migrates it (the author's `name` is renamed `displayName`, a
/// required `bio` with a default is added, the queued payloads are rewritten), against a hand-written
/// GRDB migration of the same database doing the same (rename the column, add the column, rewrite
/// the payloads with SQLite's JSON functions), in one transaction. Ours also opens the store (and
/// migrates the version 1 tables that are empty: notes, gadgets, sketches).
func runMigrationBenchmark() async throws {
    guard shouldRun("migrate100k") else { return }
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("modelsync-migrate-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let template = folder.appendingPathComponent("template.sqlite")
    let (rows, queued) = quick ? (20_000, 2_000) : (100_000, 10_000)
    try await makeVersionOneDatabase(at: template, rows: rows, queued: queued)
    var run = 0
    func freshCopy() throws -> URL {
        run += 1
        let copy = folder.appendingPathComponent("run-\(run).sqlite")
        try FileManager.default.copyItem(at: template, to: copy)
        return copy
    }
    try await compare(
        "migrate100k", setUp: { try freshCopy() },
        ours: { url in
            let store = try SyncStore(
                .file(url), models: EvolutionV2Models.GeneratedModels.all,
                removedModels: EvolutionV2Models.GeneratedModels.removedModels)
            let count = try await store.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM author WHERE bio = ''")
            }
            precondition(count == rows)
        },
        baseline: { url in
            let pool = try DatabasePool(path: url.path)
            try await pool.write { db in
                try db.execute(
                    sql: """
                        ALTER TABLE author RENAME COLUMN name TO displayName;
                        ALTER TABLE author ADD COLUMN bio TEXT NOT NULL DEFAULT '';
                        UPDATE modelsync_outbox
                            SET payload = json_set(json_remove(json_set(payload, '$.displayName', payload -> '$.name'),
                                '$.name'), '$.bio', '')
                            WHERE tableName = 'author' AND payload IS NOT NULL;
                        """)
            }
            let count = try await pool.read { db in
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM author WHERE bio = ''")
            }
            precondition(count == rows)
        })
}

/// A version 1 database: `rows` authors, the first `queued` saved through the store (a queued create
/// each), the others inserted as synced records.
private func makeVersionOneDatabase(at url: URL, rows: Int, queued: Int) async throws {
    let store = try SyncStore(.file(url), models: EvolutionV1Models.GeneratedModels.all)
    let authors = store.repository(for: EvolutionV1Models.Author.self)
    _ = try await authors.save((0..<queued).map { EvolutionV1Models.Author(name: "Author \($0)") })
    try await store.writeBypassingSync { db in
        let insert = try db.cachedStatement(sql: "INSERT INTO author (id, name) VALUES (?, ?)")
        for index in queued..<rows {
            try insert.execute(arguments: [EvolutionV1Models.Author.newID().rawValue, "Author \(index)"])
        }
    }
}
