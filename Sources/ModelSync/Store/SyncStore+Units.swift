import Foundation
import GRDB

// Units: changes made in one transaction that the server applies all together or not at all.
extension SyncStore {
    /// Runs `body` in one transaction, as ``write(_:)`` does, and marks the changes it queues as
    /// one unit for the server: a server that supports batches (see Docs/Protocol.md) applies them
    /// in one transaction or not at all, and a retry after a lost answer changes nothing (the unit's
    /// ID is its `Idempotency-Key`).
    ///
    /// ```swift
    /// try await store.writeAsOneUnit { tx in
    ///     let thread = try tx.save(ChatThread(title: "Design review", createdAt: .now, tags: [], ownerId: me.id))
    ///     try tx.save(Message(role: .user, body: "Have a look", threadId: thread.id))
    ///     try tx.save(ThreadArtifact(relation: .referenced, threadId: thread.id, artifactId: artifact.id))
    /// }
    /// ```
    ///
    /// - Records created in the unit may reference each other with their temporary IDs: the server
    ///   fills in the IDs it creates (no temporary ID reaches it).
    /// - The unit is sent once every record it references outside itself exists on the server, and
    ///   once the earlier changes of its records are sent.
    /// - If the server refuses one change of the unit, nothing of the unit is applied and every
    ///   change of it fails with the reason; ``Repository/retry(_:)`` of any of its records queues
    ///   the whole unit again.
    /// - A change of a unit's record saved later, before the unit is sent, joins the unit (the
    ///   unsent change absorbs it); a later unit that changes an unsent record of an earlier unit
    ///   merges both units into one.
    /// - A server without batches gets the changes one by one, as for ``write(_:)``: each is still
    ///   applied once, but not all together.
    ///
    /// - Returns: What `body` returns.
    public func writeAsOneUnit<T: Sendable>(_ body: @escaping @Sendable (SyncTransaction) throws -> T) async throws
        -> T
    {
        try checkWritable()
        return try await database.write { db in
            try self.runTransaction(db) { tx in
                tx.unitRecords = []
                let result = try body(tx)
                try Self.markUnit(IDClock.randomUUID(), records: tx.unitRecords ?? [], in: db)
                tx.unitRecords = nil
                return result
            }
        }
    }

    /// Gives the unsent entries of `records` the unit `unitID`, merging in the units they belonged to.
    /// The entries are found through the outbox's index by record (`unsentSlot = 0`: never sent).
    static func markUnit(_ unitID: String, records: [(table: String, id: String)], in db: Database) throws {
        guard !records.isEmpty else { return }
        let outbox = SchemaBuilder.outboxTable
        let pairs = String(
            decoding: try JSONEncoder().encode(records.map { [$0.table, $0.id] }), as: UTF8.self)
        let unsent = try Row.fetchAll(
            db,
            sql: """
                SELECT DISTINCT entry.sequence, entry.unitID FROM json_each(?) AS pair
                JOIN \(outbox) AS entry ON entry.tableName = json_extract(pair.value, '$[0]')
                    AND entry.recordID = json_extract(pair.value, '$[1]') AND entry.unsentSlot = 0
                """,
            arguments: [pairs])
        let sequences: [Int64] = unsent.map { $0["sequence"] }
        let earlierUnits: [String] = unsent.compactMap { $0["unitID"] as String? }
        try db.execute(
            sql: """
                UPDATE \(outbox) SET unitID = ?
                WHERE sequence IN (SELECT value FROM json_each(?)) OR unitID IN (SELECT value FROM json_each(?))
                """,
            arguments: [
                unitID, String(decoding: try JSONEncoder().encode(sequences), as: UTF8.self),
                String(decoding: try JSONEncoder().encode(earlierUnits), as: UTF8.self),
            ])
    }
}
