import Foundation
import GRDB

// The way out of a failed change: discard it, or re-create a record the server lost. (Retrying is
// ``Repository/retry(_:)``: it needs no server.)

extension SyncEngine {
    /// Drops the record's queued and failed changes and puts back the server's copy.
    ///
    /// - A record the server never had (its create was refused or never sent, or it still has a
    ///   temporary ID) is deleted locally, with what its delete rules reach, and nothing is queued.
    ///   (If a create whose answer was lost did reach the server, the next pull brings it back.)
    /// - Otherwise the server's copy is fetched and stored over the local one; when the server no
    ///   longer has the record, it is deleted locally.
    ///
    /// - Returns: `true` when the record still exists locally afterwards (as the server's copy).
    /// - Throws: ``ModelSyncError/changeBeingSent(table:id:)`` when a change of the record is in
    ///   flight; a ``RemoteError`` when the server's copy cannot be fetched (nothing is changed then).
    @discardableResult
    public func discardChanges<Model: SyncModel>(of model: Model.Type, id: Model.ID) async throws -> Bool {
        let schema = Model.schema
        let table = schema.tableName
        let (recordID, serverHasIt) = try await store.read { db -> (String, Bool) in
            let recordID = try IDMap.resolve(db, table: table, id: id.rawValue)
            let entries = try Self.entries(db, table: table, recordID: recordID)
            return (recordID, Self.serverMayHave(recordID: recordID, entries: entries))
        }
        let serverCopy = serverHasIt ? try await remote.fetch(id: recordID, of: schema) : nil
        return try await store.write { tx in
            let entries = try Self.entries(tx.database, table: table, recordID: recordID)
            if entries.contains(where: { $0.state == .inFlight }) {
                throw ModelSyncError.changeBeingSent(table: table, id: recordID)
            }
            try OutboxStore.removeEntries(tx.database, table: table, recordID: recordID)
            guard let serverCopy else {
                _ = try tx.applyRemoteDelete(id: recordID, model: Model.self)
                try RecordVersions.remove(tx.database, table: table, recordID: recordID)
                return false
            }
            _ = try tx.applyRemote(serverCopy, model: Model.self, policy: .acceptRemote)
            return true
        }
    }

    /// Sends the record to the server again as a new record, for a record the server lost (an
    /// update answered 404): its failed and queued changes become one create of its current state.
    /// A record of a server-ID model gets a new server ID, replaced everywhere as for any create;
    /// looking it up by its old ID still finds it.
    ///
    /// Records that reference it and that the server lost too must be re-created as well.
    ///
    /// - Throws: ``ModelSyncError/recordNotFound(table:id:)`` when there is no such record locally,
    ///   ``ModelSyncError/changeBeingSent(table:id:)`` when a change of it is in flight.
    public func recreate<Model: SyncModel>(_ model: Model.Type, id: Model.ID) async throws {
        let table = Model.schema.tableName
        try await store.write { tx in
            let recordID = try IDMap.resolve(tx.database, table: table, id: id.rawValue)
            guard try tx.recordExists(table: table, id: recordID) else {
                throw ModelSyncError.recordNotFound(table: table, id: recordID)
            }
            let entries = try Self.entries(tx.database, table: table, recordID: recordID)
            if entries.contains(where: { $0.state == .inFlight }) {
                throw ModelSyncError.changeBeingSent(table: table, id: recordID)
            }
            try OutboxStore.removeEntries(tx.database, table: table, recordID: recordID)
            try RecordVersions.remove(tx.database, table: table, recordID: recordID)
            try OutboxStore.enqueueSave(tx.database, table: table, recordID: recordID, created: true)
        }
    }

    private static func entries(_ db: Database, table: String, recordID: String) throws -> [OutboxEntry] {
        try OutboxEntry.fetchAll(
            db,
            sql: "SELECT * FROM \(SchemaBuilder.outboxTable) WHERE tableName = ? AND recordID = ? ORDER BY sequence",
            arguments: [table, recordID])
    }

    /// `false` when the server cannot have the record: its ID is temporary, or its create was never
    /// sent or was refused.
    private static func serverMayHave(recordID: String, entries: [OutboxEntry]) -> Bool {
        if TemporaryID.isTemporary(recordID) { return false }
        guard let create = entries.first(where: { $0.operation == .create }) else { return true }
        return create.attempts > 0 && create.state != .failed
    }
}
