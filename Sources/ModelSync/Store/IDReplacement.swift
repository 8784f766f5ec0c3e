import Foundation
import GRDB

// Replacing a temporary ID by the server's: the row (renamed, or merged into the server's copy a
// pull stored first), every foreign key that references it, queued outbox entries, versions and the
// durable ID map, in one transaction.
extension SyncTransaction {
    // MARK: Replacing temporary IDs

    /// Replaces the temporary ID of a record of `table` by the server's ID, in one step of this
    /// transaction: the row, every foreign key that references it (all tables), every queued outbox
    /// entry (the record's own and those whose payload references it), and the durable old-to-new
    /// map. `idChanged` is delivered once, after the commit.
    ///
    /// Replacing again with the same server ID does nothing (so a retry after a restart is safe).
    ///
    /// - Returns: `true` when the ID was replaced now, `false` when it had been already.
    /// - Throws: ``ModelSyncError/serverIDHeldByAnotherRecord(table:temporaryID:serverID:)`` when another local record already has
    ///   `serverID`: two different records are never merged.
    @discardableResult
    public func replaceTemporaryID<Model: SyncModel>(
        _ temporaryID: Model.ID, with serverID: Model.ID, of model: Model.Type = Model.self
    ) throws -> Bool {
        try store.checkRegistered(Model.self)
        return try replaceTemporaryID(
            inTable: Model.schema.tableName, from: temporaryID.rawValue, to: serverID.rawValue, evidence: nil)
    }

    /// Why a local row that already holds a server ID is the server's copy of a create of ours.
    enum ServerCopyEvidence {
        /// The server's copy carries the create's idempotency key.
        case sameCreationKey
        /// What the create sent (its outbox payload), to compare with the stored row.
        case sentPayload(String)
    }

    /// Replaces a temporary ID with the server's ID (see ``replaceTemporaryID(_:with:of:)``).
    ///
    /// When a local row already holds `serverID`, it is merged into the record only on evidence that
    /// it is the server's copy of this very create (a pull stored it before the create's answer
    /// arrived): the server echoed the create's key, or what the create sent equals the stored
    /// values of that row.
    /// Otherwise the two are different records (another record pulled earlier, a server whose IDs
    /// were reset) and ``ModelSyncError/serverIDHeldByAnotherRecord(table:temporaryID:serverID:)``
    /// is thrown; both records stay as they are.
    func replaceTemporaryID(
        inTable table: String, from temporaryID: String, to serverID: String, evidence: ServerCopyEvidence?
    ) throws -> Bool {
        let model = try store.model(forTable: table)
        guard temporaryID != serverID else { return false }
        if let existing = try IDMap.replacement(database, table: table, id: temporaryID) {
            if existing == serverID { return false }
            throw ModelSyncError.conflictingIDReplacement(
                table: table, temporaryID: temporaryID, existingID: existing, newID: serverID)
        }
        // Foreign keys are checked at commit, once every reference points at the new ID.
        try database.execute(sql: "PRAGMA defer_foreign_keys = ON")
        if try recordExists(table: table, id: serverID) {
            try mergeIntoServerCopy(model, temporaryID: temporaryID, serverID: serverID, evidence: evidence)
        } else {
            try database.execute(
                sql: "UPDATE \(table.quotedDatabaseIdentifier) SET id = ? WHERE id = ?",
                arguments: [serverID, temporaryID])
            try pointReferences(of: model, from: temporaryID, to: serverID)
        }
        try OutboxStore.replaceID(
            database, table: table, from: temporaryID, to: serverID, referencedBy: model.schema.referencedBy)
        try RecordVersions.rename(database, table: table, from: temporaryID, to: serverID)
        try IDMap.record(database, table: table, from: temporaryID, to: serverID)
        tablesWithoutReplacedIDs.remove(table)
        forgetSavePlan()
        events.append(.idChanged(table: table, old: temporaryID, new: serverID))
        return true
    }

    /// A pull stored the server's copy of a create before the create's answer arrived: the local
    /// record with the temporary ID and that copy become one record under the server ID, on evidence
    /// only (see ``replaceTemporaryID(inTable:from:to:evidence:)``).
    ///
    /// The row keeps the state of the most recent local save of either copy, and of two never-sent
    /// entries (one per copy) only the most recent stays: the last change sent is then the state kept
    /// locally.
    private func mergeIntoServerCopy(
        _ model: any SyncModel.Type, temporaryID: String, serverID: String, evidence: ServerCopyEvidence?
    ) throws {
        let table = model.schema.tableName
        let quotedTable = table.quotedDatabaseIdentifier
        if try isReplacementTarget(table: table, id: serverID) {
            // It replaced the temporary ID of another record of this store: never the same record.
            throw ModelSyncError.serverIDHeldByAnotherRecord(table: table, temporaryID: temporaryID, serverID: serverID)
        }
        let isServerCopy: Bool
        switch evidence {
        case .sameCreationKey?: isServerCopy = true
        case .sentPayload(let payload)?:
            isServerCopy = try self.isServerCopy(of: payload, model: model, serverID: serverID)
        case nil: isServerCopy = false
        }
        guard isServerCopy else {
            throw ModelSyncError.serverIDHeldByAnotherRecord(table: table, temporaryID: temporaryID, serverID: serverID)
        }
        let outbox = SchemaBuilder.outboxTable
        let last = { (id: String) in
            try Int64.fetchOne(
                self.database, sql: "SELECT MAX(sequence) FROM \(outbox) WHERE tableName = ? AND recordID = ?",
                arguments: [table, id]) ?? 0
        }
        let localStateWins = try recordExists(table: table, id: temporaryID) && last(temporaryID) >= last(serverID)
        try database.execute(
            sql: """
                DELETE FROM \(outbox) WHERE sequence = (
                    SELECT MIN(sequence) FROM \(outbox)
                    WHERE tableName = :table AND recordID IN (:old, :new) AND state = 'pending' AND attempts = 0
                    HAVING COUNT(*) = 2)
                """,
            arguments: ["table": table, "old": temporaryID, "new": serverID])
        if localStateWins, !model.schema.fields.isEmpty {
            let columns = model.schema.fields.map(\.name.quotedDatabaseIdentifier).joined(separator: ", ")
            try database.execute(
                sql: """
                    UPDATE \(quotedTable) SET (\(columns)) = (SELECT \(columns) FROM \(quotedTable) WHERE id = ?)
                    WHERE id = ?
                    """,
                arguments: [temporaryID, serverID])
        }
        try pointReferences(of: model, from: temporaryID, to: serverID)
        // Nothing references the temporary row any more: deleting it triggers no delete rule.
        try database.execute(sql: "DELETE FROM \(quotedTable) WHERE id = ?", arguments: [temporaryID])
    }

    /// Every foreign key that references the record, in every table, moves to the new ID.
    private func pointReferences(of model: any SyncModel.Type, from temporaryID: String, to serverID: String) throws {
        for reference in model.schema.referencedBy {
            let column = reference.column.quotedDatabaseIdentifier
            try database.execute(
                sql: "UPDATE \(reference.table.quotedDatabaseIdentifier) SET \(column) = ? WHERE \(column) = ?",
                arguments: [serverID, temporaryID])
        }
    }

    /// `true` when the row holding `serverID` stores what `sentPayload` (a create's outbox payload)
    /// sent, the ID aside: the pulled copy of that create. Dates count as equal to the millisecond,
    /// the precision some servers keep.
    private func isServerCopy(of sentPayload: String, model: any SyncModel.Type, serverID: String) throws -> Bool {
        func compare<Model: SyncModel>(_: Model.Type) throws -> Bool {
            guard let stored = try Model.fetchOne(database, key: Model.ID(serverID)),
                let sentFields = try? JSONValue.parse(Data(sentPayload.utf8)).objectValue,
                let sent = try? Model(fields: sentFields)
            else { return false }
            return try Self.sameStoredValues(stored, sent.withID(stored.id), dateTolerance: 0.001)
        }
        return try compare(model)
    }

    /// `true` when `id` replaced the temporary ID of another local record.
    private func isReplacementTarget(table: String, id: String) throws -> Bool {
        try Bool.fetchOne(
            database,
            sql: "SELECT EXISTS (SELECT 1 FROM \(SchemaBuilder.idMapTable) WHERE tableName = ? AND newID = ?)",
            arguments: [table, id]) ?? false
    }
}

/// The durable map of replaced temporary IDs.
enum IDMap {
    static func replacement(_ db: Database, table: String, id: String) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT newID FROM \(SchemaBuilder.idMapTable) WHERE tableName = ? AND oldID = ?"),
            arguments: [table, id])
    }

    /// `id`, or the server ID that replaced it.
    static func resolve(_ db: Database, table: String, id: String) throws -> String {
        guard TemporaryID.isTemporary(id) else { return id }
        return try replacement(db, table: table, id: id) ?? id
    }

    static func hasReplacements(_ db: Database, table: String) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM \(SchemaBuilder.idMapTable) WHERE tableName = ?)"),
            arguments: [table]) ?? false
    }

    static func record(_ db: Database, table: String, from oldID: String, to newID: String) throws {
        try db.execute(
            sql: "INSERT INTO \(SchemaBuilder.idMapTable) (tableName, oldID, newID, replacedAt) VALUES (?, ?, ?, ?)",
            arguments: [table, oldID, newID, Date().timeIntervalSinceReferenceDate])
    }
}
