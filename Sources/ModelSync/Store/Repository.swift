import Foundation
import GRDB

/// Reads and writes records of one model. Get one from the store: `store.threads` (generated) or
/// `store.repository(for: Thread.self)`.
///
/// Every write is one transaction that also queues the change for the server. Lookups accept
/// temporary IDs that were since replaced, so a UI holding an old ID still finds its record.
public struct Repository<Model: SyncModel>: Sendable {
    /// The store this repository reads and writes.
    public let store: SyncStore

    private var table: String { Model.schema.tableName }

    // MARK: Writing

    /// Inserts or updates `record` and queues it for the server, in one transaction.
    ///
    /// - Returns: The record as stored (with replaced IDs rewritten to the server's).
    @discardableResult
    public func save(_ record: Model) async throws -> Model {
        try await store.write { tx in try tx.save(record) }
    }

    /// Saves all `records` in one transaction: all of them are stored and queued, or none.
    @discardableResult
    public func save(_ records: [Model]) async throws -> [Model] {
        try await store.write { tx in try tx.save(records) }
    }

    /// Deletes the record, applying the delete rules of the foreign keys that reference it.
    ///
    /// - Returns: `false` when there is no such record.
    @discardableResult
    public func delete(_ id: Model.ID) async throws -> Bool {
        try await store.write { tx in try tx.delete(Model.self, id: id) }
    }

    /// Replaces the temporary ID of a record by the server's ID everywhere, in one transaction; see
    /// ``SyncTransaction/replaceTemporaryID(_:with:of:)``.
    @discardableResult
    public func replaceTemporaryID(_ temporaryID: Model.ID, with serverID: Model.ID) async throws -> Bool {
        try await store.write { tx in try tx.replaceTemporaryID(temporaryID, with: serverID, of: Model.self) }
    }

    // MARK: Reading

    /// The record with this ID (or with the server ID that replaced this temporary ID).
    public func find(_ id: Model.ID) async throws -> Model? {
        try await store.read { db in try Model.find(db, id: id) }
    }

    /// Every record, in insertion order.
    public func all() async throws -> [Model] {
        try await store.read { db in try Model.fetchAllOrdered(db) }
    }

    /// How many records there are.
    public func count() async throws -> Int {
        try await store.read { db in try Model.fetchCount(db) }
    }

    /// The records a GRDB request selects: `store.messages.query(Message.filter(Message.Columns.role == "user"))`.
    public func query(_ request: QueryInterfaceRequest<Model>) async throws -> [Model] {
        try await store.read { db in try request.fetchAll(db) }
    }

    // MARK: Observing

    /// Every record, now and after every committed change to the table. A slow consumer skips
    /// intermediate states and gets the latest (for a UI, see ``live()``).
    public func observeAll() -> AsyncThrowingStream<[Model], any Error> {
        observationStream(
            ValueObservation.tracking { db in try Model.fetchAllOrdered(db) }.removeDuplicates(), in: store)
    }

    /// The records a request selects, now and after every committed change that affects them. A
    /// slow consumer skips intermediate states and gets the latest.
    public func observe(_ request: QueryInterfaceRequest<Model>) -> AsyncThrowingStream<[Model], any Error> {
        observationStream(ValueObservation.tracking { db in try request.fetchAll(db) }.removeDuplicates(), in: store)
    }

    /// One record, now and after every change; it follows the record when its temporary ID is
    /// replaced, and yields `nil` once it is deleted. A slow consumer skips intermediate states and
    /// gets the latest.
    public func observe(_ id: Model.ID) -> AsyncThrowingStream<Model?, any Error> {
        observationStream(ValueObservation.tracking { db in try Model.find(db, id: id) }.removeDuplicates(), in: store)
    }

    /// Changes to this model's records (created, updated, deleted, idChanged), each delivered once,
    /// after its transaction commits. The stream ends when the caller stops iterating.
    public func changes() -> AsyncStream<ModelChange<Model>> {
        let table = self.table
        let broadcaster = store.broadcaster
        return AsyncStream { continuation in
            let token = broadcaster.subscribe { event in
                guard event.table == table else { return }
                switch event {
                case .created(_, let record):
                    if let record = record as? Model { continuation.yield(.created(record)) }
                case .updated(_, let record):
                    if let record = record as? Model { continuation.yield(.updated(record)) }
                case .deleted(_, let id):
                    continuation.yield(.deleted(Model.ID(id)))
                case .idChanged(_, let old, let new):
                    continuation.yield(.idChanged(old: Model.ID(old), new: Model.ID(new)))
                }
            }
            continuation.onTermination = { _ in broadcaster.unsubscribe(token) }
        }
    }

    // MARK: Sync status

    /// Whether the record's changes have reached the server: synced, pending, or failed with the
    /// server's reason.
    public func syncStatus(of id: Model.ID) async throws -> SyncStatus {
        let table = self.table
        return try await store.read { db in
            try Outbox.syncStatus(
                db, table: table, recordID: IDMap.resolve(db, table: table, id: id.rawValue),
                foreignKeys: Model.schema.foreignKeys)
        }
    }

    /// Puts the record's failed changes back in the queue, to be sent by the next push (after the
    /// cause was fixed, such as a value the server refused).
    ///
    /// - Returns: How many changes were requeued.
    @discardableResult
    public func retry(_ id: Model.ID) async throws -> Int {
        let table = self.table
        return try await store.database.write { db in
            try OutboxStore.retryFailed(db, table: table, recordID: IDMap.resolve(db, table: table, id: id.rawValue))
        }
    }

    /// The record's sync status, now and after every change to the outbox. A slow consumer skips
    /// intermediate states and gets the latest (for a UI, see ``liveSyncStatus(of:)``).
    public func observeSyncStatus(of id: Model.ID) -> AsyncThrowingStream<SyncStatus, any Error> {
        let table = self.table
        return observationStream(
            ValueObservation.tracking { db in
                try Outbox.syncStatus(
                    db, table: table, recordID: IDMap.resolve(db, table: table, id: id.rawValue),
                    foreignKeys: Model.schema.foreignKeys)
            }.removeDuplicates(), in: store)
    }
}
