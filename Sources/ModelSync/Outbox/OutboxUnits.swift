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
                let entries = try OutboxEntry.fetchAll(
                    db, sql: "SELECT * FROM \(table) WHERE unitID = ? ORDER BY sequence", arguments: [unit])
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
