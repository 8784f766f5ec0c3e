import Foundation
import GRDB
import GRDBSQLite

/// A write transaction of a ``SyncStore``: saves, deletes and ID replacements made through it
/// commit together with their outbox entries. Obtain one with ``SyncStore/write(_:)``.
///
/// ```swift
/// try await store.write { tx in
///     let thread = try tx.save(Thread(createdAt: .now, tags: [], ownerId: me.id))
///     try tx.save(Message(role: .user, body: "Hi", threadId: thread.id))
/// }
/// ```
public final class SyncTransaction {
    /// The GRDB connection of this transaction (internal: changes made with it bypass the outbox).
    let database: Database

    /// The GRDB connection of this transaction, for reads the transaction's API does not offer and
    /// for tables of the app's own. Changes to synced tables made with it bypass sync: they are not
    /// queued for the server and no change event is delivered.
    public var databaseBypassingSync: Database { database }
    let store: SyncStore
    var events: [StoreEvent] = []
    private let recordEvents: Bool
    /// Tables known to have no replaced IDs yet, so lookups in the ID map can be skipped.
    var tablesWithoutReplacedIDs: Set<String> = []
    /// In a ``SyncStore/writeAsOneUnit(_:)``, the records whose changes were queued (table, ID).
    var unitRecords: [(table: String, id: String)]?

    init(db: Database, store: SyncStore) {
        self.database = db
        self.store = store
        self.recordEvents = store.broadcaster.hasSubscribers
    }

    // MARK: Reading

    /// The record with this ID, following replaced temporary IDs to the server's ID.
    public func find<Model: SyncModel>(_ id: Model.ID) throws -> Model? {
        try Model.find(database, id: id)
    }

    // MARK: Saving

    /// Inserts or updates `record` and queues the matching outbox entry (coalesced with any unsent
    /// entry of the same record). IDs that were replaced (in the record or its foreign keys) are
    /// rewritten to the server's IDs first, so a stale copy held by the UI saves correctly.
    ///
    /// - Returns: The record as stored.
    @discardableResult
    public func save<Model: SyncModel>(_ record: Model) throws -> Model {
        try save(record, idempotencyKey: nil)
    }

    /// Saves `record`; a non-nil `idempotencyKey` becomes the key of its outbox entry (see
    /// `OutboxStore.enqueueSave`).
    func save<Model: SyncModel>(_ record: Model, idempotencyKey: String?) throws -> Model {
        // The schema is read once: each read of `Model.schema` copies it.
        let schema = Model.schema
        let table = schema.tableName
        let plan = try savePlan(table: table, schema: schema)
        if Self.isUnaddressable(record.id.rawValue) {
            throw ModelSyncError.invalidValue(
                model: schema.name, field: "id",
                reason: "an ID must be non-empty text without NUL characters (SQLite would cut it at the NUL, "
                    + "and the server could not address it); use the generated default ID")
        }
        let record = try plan.mayHoldReplacedIDs ? resolvingReplacedIDs(record, schema: schema) : record
        // Converted once, for the statements and for the check below.
        let values = try record.databaseValues().map { $0?.databaseValue ?? .null }
        // Insert, or update when a row with this ID exists (an INSERT that did nothing).
        try plan.insert.executePrepared(binding: values)
        let created = sqlite3_changes(database.sqliteConnection) > 0
        if !created {
            // The row as the server last had it becomes the base of this change (conflict resolvers
            // get it), unless an earlier pending change already keeps one.
            try RecordVersions.keepBase(database, table: table, recordID: record.id.rawValue) {
                guard let stored = try Model.fetchOne(database, key: record.id) else { return "{}" }
                return try PayloadWriter.payload(values: stored.databaseValues(), schema: schema)
            }
            let update = try database.cachedStatement(sql: plan.statements.updateByID)
            try update.execute(binding: Array(values.dropFirst()) + [values[0]])
        }
        // The entry stores no payload (the row is read when it is first sent), unless it was sent once
        // already; the values are still checked now, so a save JSON cannot carry is refused.
        let payload: String?
        if idempotencyKey != nil {
            payload = try PayloadWriter.payload(values: values, schema: schema)
        } else {
            try PayloadWriter.validate(values: values, schema: schema)
            payload = nil
        }
        try OutboxStore.enqueueSave(
            database, table: table, recordID: record.id.rawValue, payload: payload, created: created,
            idempotencyKey: idempotencyKey, queuedAt: queuedAt, statement: enqueueSaveStatement())
        unitRecords?.append((table, record.id.rawValue))
        if recordEvents {
            events.append(
                created ? .created(table: table, record: record) : .updated(table: table, record: record))
        }
        return record
    }

    /// The prepared statement that queues saves, kept for the transaction (looking it up in GRDB's
    /// cache hashes its text on every save).
    private var enqueueSave: Statement?

    /// When this transaction queues its changes (`createdAt` of their outbox entries): read once, as
    /// the changes of one transaction are queued together.
    private lazy var queuedAt = Date()

    /// What saving records of one model needs, kept for the model saved last: a transaction that
    /// saves many records of one model looks its statements up once instead of once per record.
    private final class SavePlan {
        let table: String
        let statements: ModelStatements
        let insert: Statement
        /// See ``mayHoldReplacedIDs(_:)``; `false` stays valid until an ID of the transaction is
        /// replaced (which drops the plan).
        var mayHoldReplacedIDs: Bool

        init(table: String, statements: ModelStatements, insert: Statement, mayHoldReplacedIDs: Bool) {
            self.table = table
            self.statements = statements
            self.insert = insert
            self.mayHoldReplacedIDs = mayHoldReplacedIDs
        }
    }

    private var lastSavePlan: SavePlan?

    private func savePlan(table: String, schema: ModelSchema) throws -> SavePlan {
        if let plan = lastSavePlan, plan.table == table {
            if plan.mayHoldReplacedIDs { plan.mayHoldReplacedIDs = mayHoldReplacedIDs(schema) }
            return plan
        }
        let statements = try store.statements(forTable: table, model: schema.name)
        let insert = try database.cachedStatement(sql: statements.insertIgnoringExistingID)
        insert.prepareForPositionalBinding()
        let plan = SavePlan(
            table: table, statements: statements, insert: insert, mayHoldReplacedIDs: mayHoldReplacedIDs(schema))
        lastSavePlan = plan
        return plan
    }

    /// Forgets the save plan: an ID was replaced, so tables may hold replaced IDs again.
    func forgetSavePlan() { lastSavePlan = nil }

    /// `true` for an ID a record cannot have: empty, or with a NUL character (SQLite would cut it
    /// there, and the server could not address it).
    private static func isUnaddressable(_ id: String) -> Bool {
        id.isEmpty || id.containsNUL
    }

    private func enqueueSaveStatement() throws -> Statement {
        if let enqueueSave { return enqueueSave }
        let statement = try OutboxStore.enqueueSaveStatement(database)
        enqueueSave = statement
        return statement
    }

    /// Saves every record, in order, in this transaction.
    @discardableResult
    public func save<Model: SyncModel>(_ records: [Model]) throws -> [Model] {
        var saved: [Model] = []
        saved.reserveCapacity(records.count)
        for record in records { saved.append(try save(record)) }
        return saved
    }

    // MARK: Deleting

    /// Deletes the record with this ID, applying the delete rules of every foreign key that
    /// references it (cascade, nullify, restrict), and queues the deletes the server needs.
    ///
    /// - Returns: `false` when no record has this ID.
    /// - Throws: ``ModelSyncError/deleteRestricted(model:id:referencingTable:column:count:)`` when a
    ///   `restrict` foreign key still references the record; nothing is deleted then.
    @discardableResult
    public func delete<Model: SyncModel>(_ type: Model.Type, id: Model.ID) throws -> Bool {
        try store.checkRegistered(Model.self)
        let resolvedID = try IDMap.resolve(database, table: Model.schema.tableName, id: id.rawValue)
        return try deleteRecord(schema: Model.schema, id: resolvedID, queueForServer: true)
    }

    /// Deletes a record and applies delete rules. With `queueForServer` false (a delete that came
    /// from the server) nothing is queued, the record's queued entries are dropped, and `restrict`
    /// acts as `cascade`.
    func deleteRecord(schema: ModelSchema, id: String, queueForServer: Bool) throws -> Bool {
        let table = schema.tableName.quotedDatabaseIdentifier
        guard try recordExists(table: schema.tableName, id: id) else { return false }

        for reference in schema.referencedBy where reference.onDelete == .restrict && queueForServer {
            let count = try countReferences(reference, to: id)
            if count > 0 {
                throw ModelSyncError.deleteRestricted(
                    model: schema.name, id: id, referencingTable: reference.table, column: reference.column,
                    count: count)
            }
        }
        for reference in schema.referencedBy {
            let childModel = try store.model(forTable: reference.table)
            switch reference.onDelete {
            case .restrict where queueForServer:
                continue
            case .cascade, .restrict:
                // Newest first: replies and other later records go before what they point at.
                for childID in try referencingIDs(reference, to: id).reversed() where childID != id {
                    _ = try deleteRecord(schema: childModel.schema, id: childID, queueForServer: queueForServer)
                }
            case .nullify:
                let childIDs = try referencingIDs(reference, to: id).filter { $0 != id }
                guard !childIDs.isEmpty else { continue }
                try database.execute(
                    sql: """
                        UPDATE \(reference.table.quotedDatabaseIdentifier)
                        SET \(reference.column.quotedDatabaseIdentifier) = NULL
                        WHERE \(reference.column.quotedDatabaseIdentifier) = ?
                        """,
                    arguments: [id])
                for childID in childIDs where queueForServer {
                    try requeueUpdate(of: childModel, id: childID)
                }
            }
        }
        if queueForServer {
            try OutboxStore.enqueueDelete(database, table: schema.tableName, recordID: id)
            unitRecords?.append((schema.tableName, id))
        } else {
            try OutboxStore.removeEntries(database, table: schema.tableName, recordID: id)
        }
        try database.execute(sql: "DELETE FROM \(table) WHERE id = ?", arguments: [id])
        if recordEvents { events.append(.deleted(table: schema.tableName, id: id)) }
        return true
    }

    /// Queues an update carrying the current row of a record changed by a delete rule.
    private func requeueUpdate(of model: any SyncModel.Type, id: String) throws {
        func requeue<Model: SyncModel>(_: Model.Type) throws {
            guard let record = try Model.fetchOne(database, key: Model.ID(id)) else { return }
            try OutboxStore.enqueueSave(database, table: Model.schema.tableName, recordID: id, created: false)
            unitRecords?.append((Model.schema.tableName, id))
            if recordEvents { events.append(.updated(table: Model.schema.tableName, record: record)) }
        }
        try requeue(model)
    }

    private func countReferences(_ reference: ForeignKeyReference, to id: String) throws -> Int {
        try Int.fetchOne(
            database,
            sql: """
                SELECT COUNT(*) FROM \(reference.table.quotedDatabaseIdentifier)
                WHERE \(reference.column.quotedDatabaseIdentifier) = ?
                """,
            arguments: [id]) ?? 0
    }

    private func referencingIDs(_ reference: ForeignKeyReference, to id: String) throws -> [String] {
        try String.fetchAll(
            database,
            sql: """
                SELECT id FROM \(reference.table.quotedDatabaseIdentifier)
                WHERE \(reference.column.quotedDatabaseIdentifier) = ?
                ORDER BY rowid
                """,
            arguments: [id])
    }

    // MARK: Helpers

    func appendEvent(_ event: StoreEvent) {
        if recordEvents { events.append(event) }
    }

    func recordExists(table: String, id: String) throws -> Bool {
        let statement = try database.cachedStatement(
            sql: "SELECT EXISTS (SELECT 1 FROM \(table.quotedDatabaseIdentifier) WHERE id = ?)")
        return try Bool.fetchOne(statement, arguments: [id]) ?? false
    }

    /// The server ID that replaced `id`, when `id` is a temporary ID that was replaced.
    private func replacement(table: String, id: String) throws -> String? {
        guard TemporaryID.isTemporary(id), !tablesWithoutReplacedIDs.contains(table) else { return nil }
        if try !IDMap.hasReplacements(database, table: table) {
            tablesWithoutReplacedIDs.insert(table)
            return nil
        }
        return try IDMap.replacement(database, table: table, id: id)
    }

    /// `false` when this transaction already found that neither the model's table nor any table its
    /// foreign keys point at has a replaced ID (the usual case): a save then skips the lookups.
    private func mayHoldReplacedIDs(_ schema: ModelSchema) -> Bool {
        !tablesWithoutReplacedIDs.contains(schema.tableName)
            || schema.foreignKeys.contains { !tablesWithoutReplacedIDs.contains($0.table) }
    }

    private func resolvingReplacedIDs<Model: SyncModel>(_ record: Model, schema: ModelSchema) throws -> Model {
        var record = record
        if let newID = try replacement(table: schema.tableName, id: record.id.rawValue) {
            record = record.withID(Model.ID(newID))
        }
        var lookupError: (any Error)?
        let foreignKeys = schema.foreignKeys
        record = record.replacingReferences { column, id in
            guard TemporaryID.isTemporary(id), lookupError == nil,
                let foreignKey = foreignKeys.first(where: { $0.column == column })
            else { return nil }
            do {
                return try replacement(table: foreignKey.table, id: id)
            } catch {
                lookupError = error
                return nil
            }
        }
        if let lookupError { throw lookupError }
        return record
    }
}
