import Foundation
import GRDB

// Claims of units: the entries of a unit (`SyncStore.writeAsOneUnit`) are claimed together, for one
// all-or-nothing batch.
extension Outbox {
    /// Claims every entry of the oldest unit that can be sent now, in order, or returns an empty
    /// array when none can. A unit is ready when all its entries are pending and past their backoff,
    /// no earlier entry of one of its records is still queued outside it, and every record its
    /// entries reference exists on the server or is created by the unit itself.
    func claimReadyUnit(now: Date = Date()) async throws -> [OutboxEntry] {
        let store = self.store
        try store.checkWritable()
        let owner = store.claimOwner
        let lease = store.configuration.claimLease
        let table = SchemaBuilder.outboxTable
        return try await store.database.write { db in
            let clock = Date()
            try OutboxStore.requeueStaleClaims(db, now: clock)
            let units = try String.fetchAll(
                db,
                sql: """
                    SELECT unitID FROM \(table) WHERE unitID IS NOT NULL
                    GROUP BY unitID
                    HAVING SUM(state <> 'pending') = 0 AND MAX(COALESCE(nextAttemptAt, 0)) <= ?
                    ORDER BY MIN(sequence)
                    """,
                arguments: [now.timeIntervalSinceReferenceDate])
            for unit in units {
                let stored = try OutboxEntry.fetchAll(
                    db, sql: "SELECT * FROM \(table) WHERE unitID = ? ORDER BY sequence", arguments: [unit])
                // Entries never sent send their rows as stored now, kept from this claim on.
                var entries: [OutboxEntry] = []
                for entry in stored {
                    guard let entry = try Self.readyToSend(entry, store: store, db: db) else { break }
                    entries.append(entry)
                }
                guard entries.count == stored.count else {
                    // One change cannot be sent: the unit is sent whole or not at all.
                    try Self.failUnit(unit, because: stored[entries.count], db: db)
                    continue
                }
                guard try Self.isReady(unit: unit, entries, store: store, db: db) else { continue }
                let claim = OutboxClaim(
                    owner: owner.token, processID: owner.processID,
                    expiresAt: clock.timeIntervalSinceReferenceDate + max(0, lease))
                try db.execute(
                    sql: """
                        UPDATE \(table)
                        SET state = 'inFlight', attempts = attempts + 1, claimOwner = ?, claimProcess = ?,
                            claimExpiresAt = ?
                        WHERE unitID = ?
                        """,
                    arguments: [claim.owner, claim.processID, claim.expiresAt, unit])
                // Entries never sent keep, from this claim on, their payload and a key drawn now.
                let keepPayloadAndKey = try db.cachedStatement(
                    sql: "UPDATE \(table) SET payload = COALESCE(payload, ?), idempotencyKey = ? WHERE sequence = ?")
                for index in entries.indices {
                    let drawsKey = entries[index].idempotencyKey == nil
                    if drawsKey { entries[index].idempotencyKey = IDClock.randomUUID() }
                    if drawsKey || stored[index].payload == nil {
                        try keepPayloadAndKey.execute(arguments: [
                            entries[index].payload, entries[index].idempotencyKey, entries[index].sequence,
                        ])
                    }
                    if let hook = OutboxClaimHooks.didClaimEntry.withLock({ $0 }) { hook(index + 1) }
                }
                return entries.map { entry in
                    var entry = entry
                    entry.state = .inFlight
                    entry.attempts += 1
                    entry.claim = claim
                    return entry
                }
            }
            return []
        }
    }

    /// Fails every entry of a unit, one of whose entries (`culprit`, already failed with its reason
    /// by ``readyToSend(_:store:db:)``) cannot be sent.
    private static func failUnit(_ unit: String, because culprit: OutboxEntry, db: Database) throws {
        try db.execute(
            sql: """
                UPDATE \(SchemaBuilder.outboxTable) SET state = 'failed', lastError = ?
                WHERE unitID = ? AND sequence <> ?
                """,
            arguments: [
                "not sent: \(culprit.tableName) '\(culprit.recordID)' of its unit cannot be sent", unit,
                culprit.sequence,
            ])
    }

    private static func isReady(unit: String, _ entries: [OutboxEntry], store: SyncStore, db: Database) throws
        -> Bool
    {
        let earlierOutside = try db.cachedStatement(
            sql: """
                SELECT EXISTS (SELECT 1 FROM \(SchemaBuilder.outboxTable)
                WHERE tableName = ? AND recordID = ? AND sequence < ? AND unitID IS NOT ?)
                """)
        var unitCreates: Set<String> = []
        for entry in entries {
            if try Bool.fetchOne(earlierOutside, arguments: [entry.tableName, entry.recordID, entry.sequence, unit])
                ?? false
            {
                return false
            }
            if entry.operation == .delete {
                if try waitsForChildren(entry, store: store, db: db) { return false }
            } else if try waitsForParent(entry, store: store, db: db, unitCreates: unitCreates) {
                return false
            }
            if entry.operation == .create { unitCreates.insert(entry.tableName + "\u{0}" + entry.recordID) }
        }
        return true
    }
}
