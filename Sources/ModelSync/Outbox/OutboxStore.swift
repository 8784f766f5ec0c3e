import Foundation
import GRDB

/// The SQL of the outbox: how saves and deletes are queued and coalesced, and how queued entries
/// follow an ID replacement.
///
/// Coalescing only ever touches an entry that was never sent (`state = 'pending' AND attempts = 0`,
/// at most one per record): once an entry may have reached the server, later changes queue behind it
/// instead of rewriting it. One unique index, on (tableName, recordID, unsentSlot), enforces it and
/// serves every lookup by record: `unsentSlot` is a computed column, 0 for the entry never sent and
/// NULL (distinct from every other NULL) for the others.
enum OutboxStore {
    private static let table = SchemaBuilder.outboxTable

    /// Queues the create or update of a saved record.
    ///
    /// - An unsent create absorbs the update: one create with the latest state.
    /// - An unsent update absorbs the update: one update with the latest state.
    /// - An unsent delete followed by a new insert (a client ID reused) becomes an update.
    ///
    /// An entry that was never sent stores no payload (`NULL`): what it sends is the record's row,
    /// read when the entry is first claimed (``Outbox/claimReadyEntries(limit:now:)``), which then
    /// stores it for every retry under the same key. Until then the row is the latest saved state, so
    /// a queued change costs an index entry and no copy of the record. Nor does it get an idempotency
    /// key: the first claim gives it one, in the same transaction that stores its payload, and every
    /// retry sends it under that key.
    ///
    /// `idempotencyKey` is for a change that was already sent once outside the outbox (a remote-first
    /// save whose answer never came): the entry carries that key and `payload`, what was sent with it
    /// (also when it absorbs an unsent entry, whose own key never reached the server), and counts as
    /// sent once (`attempts = 1`). Like any entry that may have reached the server it is never
    /// rewritten: a later save queues an update behind it instead of changing the body sent under that
    /// key (a server answers a known key with another body with 422).
    static func enqueueSave(
        _ db: Database, table recordTable: String, recordID: String, payload: String? = nil, created: Bool,
        idempotencyKey: String? = nil, queuedAt: Date = Date(), statement: Statement? = nil
    ) throws {
        precondition(idempotencyKey == nil || payload != nil, "a change sent once keeps what it sent")
        let statement = try statement ?? enqueueSaveStatement(db)
        let operation = created ? OutboxOperation.create : .update
        try statement.executePrepared(binding: [
            recordTable.databaseValue, recordID.databaseValue, operation.rawValue.databaseValue,
            payload.databaseValue, idempotencyKey.databaseValue,
            queuedAt.timeIntervalSinceReferenceDate.databaseValue, (idempotencyKey != nil).databaseValue,
        ])
        if idempotencyKey != nil {
            try db.execute(
                sql: """
                    UPDATE \(table) SET attempts = 1
                    WHERE tableName = ? AND recordID = ? AND state = 'pending' AND attempts = 0
                    """,
                arguments: [recordTable, recordID])
        }
    }

    /// The statement ``enqueueSave(_:table:recordID:payload:created:idempotencyKey:queuedAt:statement:)``
    /// runs, prepared on `db`: a transaction that saves many records passes it back in.
    static func enqueueSaveStatement(_ db: Database) throws -> Statement {
        let statement = try db.cachedStatement(sql: enqueueSaveSQL)
        statement.prepareForPositionalBinding()
        return statement
    }

    private static let enqueueSaveSQL = """
        INSERT INTO \(table) (tableName, recordID, operation, payload, idempotencyKey, state, attempts, createdAt)
        VALUES (?, ?, ?, ?, ?, 'pending', 0, ?)
        ON CONFLICT (tableName, recordID, unsentSlot)
        DO UPDATE SET
            payload = excluded.payload,
            operation = CASE operation WHEN 'create' THEN 'create' ELSE 'update' END,
            idempotencyKey = CASE WHEN ? THEN excluded.idempotencyKey ELSE idempotencyKey END
        """

    /// Queues the delete of a record, or cancels its queued changes when the server never saw it.
    static func enqueueDelete(_ db: Database, table recordTable: String, recordID: String) throws {
        let entries = try OutboxEntry.fetchAll(
            db, sql: "SELECT * FROM \(table) WHERE tableName = ? AND recordID = ? ORDER BY sequence",
            arguments: [recordTable, recordID])
        let serverNeverSawIt =
            entries.contains {
                $0.operation == .create && (($0.state == .pending && $0.attempts == 0) || $0.state == .failed)
            }
            || (entries.isEmpty && TemporaryID.isTemporary(recordID))
        // Entries that may have reached the server stay; everything else is superseded by the delete.
        try db.execute(
            sql: """
                DELETE FROM \(table)
                WHERE tableName = ? AND recordID = ? AND (state = 'failed' OR (state = 'pending' AND attempts = 0))
                """,
            arguments: [recordTable, recordID])
        if serverNeverSawIt {
            // Nothing reached the server: the record's remaining entries (if any) are moot too.
            try db.execute(
                sql: "DELETE FROM \(table) WHERE tableName = ? AND recordID = ?", arguments: [recordTable, recordID])
            return
        }
        try db.execute(
            sql: """
                INSERT INTO \(table) (tableName, recordID, operation, payload, idempotencyKey, state, attempts, createdAt)
                VALUES (?, ?, 'delete', NULL, NULL, 'pending', 0, ?)
                """,
            arguments: [recordTable, recordID, Date().timeIntervalSinceReferenceDate])
    }

    /// The payload an entry of this record sends: the row as stored now, in local form (`nil` when
    /// the store has no such row).
    ///
    /// - Throws: ``ModelSyncError/invalidValue(model:field:reason:)`` for a stored value JSON cannot
    ///   carry (written around the store's API).
    static func currentPayload(_ db: Database, store: SyncStore, table recordTable: String, recordID: String) throws
        -> String?
    {
        let model = try store.model(forTable: recordTable)
        let statement = try db.cachedStatement(sql: try store.statements(for: model).selectByID)
        guard let row = try Row.fetchOne(statement, arguments: [recordID]) else { return nil }
        let values: [(any DatabaseValueConvertible)?] = (0..<row.count).map { row[$0] as DatabaseValue }
        return try PayloadWriter.payload(values: values, schema: model.schema)
    }

    /// The entry with its payload: the stored one, or (an entry never sent) the record's row as stored
    /// now. `nil` payload for a delete, or for a record the store no longer has.
    static func withPayload(_ entry: OutboxEntry, _ db: Database, store: SyncStore) throws -> OutboxEntry {
        guard entry.payload == nil, entry.operation != .delete else { return entry }
        var entry = entry
        entry.payload = try currentPayload(db, store: store, table: entry.tableName, recordID: entry.recordID)
        return entry
    }

    /// Rewrites queued entries after an ID replacement: the record's own entries (record ID and the
    /// payload's `id`), and every stored payload whose foreign key held the temporary ID. Entries never
    /// sent store no payload (they read the row, whose foreign keys were rewritten with it), so only
    /// the few entries sent at least once are looked at, through the index on stored payloads.
    static func replaceID(
        _ db: Database, table recordTable: String, from oldID: String, to newID: String,
        referencedBy references: [ForeignKeyReference]
    ) throws {
        try db.execute(
            sql: """
                UPDATE \(table)
                SET recordID = :new, payload = CASE WHEN payload IS NULL THEN NULL ELSE json_set(payload, '$.id', :new) END
                WHERE tableName = :table AND recordID = :old
                """,
            arguments: ["new": newID, "old": oldID, "table": recordTable])
        for reference in references {
            let path = "$.\"\(reference.column)\""
            try db.execute(
                sql: """
                    UPDATE \(table) INDEXED BY \(table)_stored_payload
                    SET payload = json_set(payload, :path, :new)
                    WHERE tableName = :table AND payload IS NOT NULL AND json_extract(payload, :path) = :old
                    """,
                arguments: ["path": path, "new": newID, "old": oldID, "table": reference.table])
        }
    }

    /// The create entry with this idempotency key that was sent at least once (it may be in flight,
    /// waiting for a retry, or failed), if any.
    static func sentCreate(_ db: Database, table recordTable: String, idempotencyKey: String) throws -> OutboxEntry? {
        try OutboxEntry.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT * FROM \(table)
                    WHERE idempotencyKey = ? AND tableName = ? AND operation = 'create' AND attempts > 0
                    """),
            arguments: [idempotencyKey, recordTable])
    }

    /// Puts the failed entries of one record back in the queue, with the failed entries of its units
    /// (a unit is sent whole).
    static func retryFailed(_ db: Database, table recordTable: String, recordID: String) throws -> Int {
        try db.execute(
            sql: """
                UPDATE \(table) SET state = 'pending', nextAttemptAt = NULL, conflictRetries = 0
                WHERE state = 'failed' AND ((tableName = ? AND recordID = ?) OR unitID IN (
                    SELECT unitID FROM \(table) WHERE tableName = ? AND recordID = ? AND unitID IS NOT NULL))
                """,
            arguments: [recordTable, recordID, recordTable, recordID])
        return db.changesCount
    }

    static func hasEntries(_ db: Database, table recordTable: String, recordID: String) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE tableName = ? AND recordID = ?)"),
            arguments: [recordTable, recordID]) ?? false
    }

    /// `true` when any record of `recordTable` has an entry.
    static func hasEntries(_ db: Database, table recordTable: String) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE tableName = ?)"),
            arguments: [recordTable]) ?? false
    }

    static func removeEntries(_ db: Database, table recordTable: String, recordID: String) throws {
        try db.execute(
            sql: "DELETE FROM \(table) WHERE tableName = ? AND recordID = ?", arguments: [recordTable, recordID])
    }
}
