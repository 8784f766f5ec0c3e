import EvolutionV1Models
import EvolutionV2Models
import Foundation
import GRDB
@_spi(OutboxInternals) import ModelSync

/// `migrate100k`: version 2 of the notes app opens a version 1 database of 100,000 authors and
/// migrates it (the author's `name` is renamed `displayName`, a required `bio` with a default is
/// added), against a hand-written GRDB migration of the same database doing the same (rename the
/// column, add the column, rewrite the stored payloads with SQLite's JSON functions), in one
/// transaction. Ours also opens the store (and migrates the version 1 tables that are empty: notes,
/// gadgets, sketches).
///
/// The version 1 database has what an upgrading app has in its queue: 10,000 authors whose create was
/// sent at least once (claimed, the request failed): each stores the payload it sent, which both sides
/// rewrite to the new shape; and 10,000 authors whose create was never sent: each stores no payload
/// (it sends the row when first claimed), so neither side rewrites anything for it, and the migrated
/// row is what it will send.
func runMigrationBenchmark() async throws {
    guard shouldRun("migrate100k") else { return }
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("modelsync-migrate-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let template = folder.appendingPathComponent("template.sqlite")
    let (rows, queued) = quick ? (20_000, 2_000) : (100_000, 10_000)
    let storedPayloads = try await makeVersionOneDatabase(at: template, rows: rows, sent: queued, neverSent: queued)
    precondition(storedPayloads == queued, "\(storedPayloads) stored payloads, expected \(queued)")
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

/// A version 1 database: `rows` authors; the first `sent` saved through the store and claimed once
/// (as by a push whose requests failed), so their creates store the payload they sent; the next
/// `neverSent` saved through the store and never claimed; the others inserted as synced records.
///
/// - Returns: How many queued entries store a payload (what both sides rewrite).
private func makeVersionOneDatabase(at url: URL, rows: Int, sent: Int, neverSent: Int) async throws -> Int {
    let store = try SyncStore(.file(url), models: EvolutionV1Models.GeneratedModels.all)
    let authors = store.repository(for: EvolutionV1Models.Author.self)
    _ = try await authors.save((0..<sent).map { EvolutionV1Models.Author(name: "Author \($0)") })
    let claimed = try await store.outbox.claimReadyEntries(limit: sent)
    precondition(claimed.count == sent, "claimed \(claimed.count) of \(sent)")
    try await store.outbox.releaseClaims(claimed)
    _ = try await authors.save((sent..<(sent + neverSent)).map { EvolutionV1Models.Author(name: "Author \($0)") })
    try await store.writeBypassingSync { db in
        let insert = try db.cachedStatement(sql: "INSERT INTO author (id, name) VALUES (?, ?)")
        for index in (sent + neverSent)..<rows {
            try insert.execute(arguments: [EvolutionV1Models.Author.newID().rawValue, "Author \(index)"])
        }
    }
    return try await store.read { db in
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM modelsync_outbox WHERE payload IS NOT NULL") ?? 0
    }
}
