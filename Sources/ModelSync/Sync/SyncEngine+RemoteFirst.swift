import Foundation
import GRDB
import Logging

// Saving through the server first (remote-first), falling back to the outbox.
extension SyncEngine {
    // MARK: Saving through the server

    /// How ``SyncEngine/save(_:policy:)`` reaches the server.
    public enum SavePolicy: Sendable, Hashable {
        /// Store locally and queue the change (what repositories do); it is pushed later.
        case localFirst
        /// Send to the server first and store the server's record with its permanent ID. When the
        /// server cannot be reached (a transient failure), fall back to `localFirst` when
        /// `fallBackToLocal` is `true`, or throw.
        case remoteFirst(fallBackToLocal: Bool)
    }

    /// Saves a record with the given policy and returns it as stored: with `remoteFirst`, a new
    /// record of a server-ID model comes back with its permanent ID and no temporary ID ever exists.
    ///
    /// A record with queued changes is always saved local-first, so that its changes stay in order.
    @discardableResult
    public func save<Model: SyncModel>(_ record: Model, policy: SavePolicy) async throws -> Model {
        guard case .remoteFirst(let fallBackToLocal) = policy else {
            return try await store.repository(for: Model.self).save(record)
        }
        let schema = Model.schema
        let table = schema.tableName
        let pending = try await store.read { db in
            try OutboxStore.hasEntries(db, table: table, recordID: record.id.rawValue)
        }
        if pending { return try await store.repository(for: Model.self).save(record) }
        let exists = try await store.repository(for: Model.self).find(record.id) != nil
        let fields = try PayloadWriter.fields(values: record.databaseValues(), schema: schema)
        // The create's key goes with it into the outbox if the answer never comes: the server may
        // have stored the record, and a later push must be recognised as the same create.
        let idempotencyKey = IDClock.randomUUID()
        do {
            var stored = fields
            if exists {
                let based = try await RecordVersions.basing(
                    fields, table: table, recordID: record.id.rawValue, in: store)
                let answer = try await remote.update(based, of: schema, idempotencyKey: idempotencyKey)
                if let version = answer?[RecordMetadata.version] { stored[RecordMetadata.version] = version }
            } else {
                let created = try await remote.create(fields, of: schema, idempotencyKey: idempotencyKey)
                if schema.idGeneration == .server, let serverID = created["id"] { stored["id"] = serverID }
                if let version = created[RecordMetadata.version] { stored[RecordMetadata.version] = version }
            }
            let policy = configuration.conflictPolicy
            let serverRecord = stored
            return try await store.write { tx in
                _ = try tx.applyRemote(serverRecord, model: Model.self, policy: policy)
                guard let id = serverRecord["id"]?.idString, let saved: Model = try tx.find(Model.ID(id)) else {
                    throw RemoteError.invalidResponse("the server's \(schema.name) could not be stored")
                }
                return saved
            }
        } catch let error as RemoteError where error.isTransient && fallBackToLocal {
            logger.info("server unreachable, saving locally", metadata: ["table": "\(table)", "reason": "\(error)"])
            return try await store.write { tx in try tx.save(record, idempotencyKey: idempotencyKey) }
        }
    }
}
