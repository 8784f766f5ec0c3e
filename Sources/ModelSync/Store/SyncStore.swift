import Foundation
import GRDB
import Logging

/// Where a ``SyncStore`` keeps its SQLite database.
public enum StoreLocation: Sendable, Hashable {
    /// A database file (created if missing), opened in WAL mode so reads do not wait for writes.
    case file(URL)
    /// A private in-memory database, gone when the store is released. Still SQLite.
    case inMemory
}

/// The local store of an app: records in SQLite, the outbox of changes waiting for the server, and
/// the map of replaced temporary IDs.
///
/// ```swift
/// let store = try SyncStore(.file(url), models: GeneratedModels.all)
/// let thread = try await store.threads.save(Thread(title: "Trip", createdAt: .now, tags: [], ownerId: me.id))
/// ```
///
/// Every write (a repository call or ``write(_:)``) is one SQLite transaction: the rows and their
/// outbox entries commit together or not at all. Change events are delivered after the commit.
///
/// Several stores may share one database file, in one process or in several (an app and its
/// extension): writers wait for each other up to ``Configuration/busyTimeout``, and an outbox entry
/// claimed by one store's engine is never sent by another while its claim holds (see
/// `Outbox.claimReadyEntries(limit:now:)`). A write into a file that was deleted or moved while
/// the store was open throws ``ModelSyncError/databaseFileMoved(path:)`` instead of committing into
/// the void; a file the process may not write opens read-only (``isReadOnly``).
public final class SyncStore: Sendable {
    /// How a store opens and shares its database file.
    public struct Configuration: Sendable, Hashable {
        /// How long, in seconds, a write waits for another connection (another store, another
        /// process) to finish its write before it fails with `database is locked`. Applies to every
        /// connection of the store, and to opening it (creating and migrating the schema).
        public var busyTimeout: TimeInterval
        /// How long, in seconds, an engine's claim on an outbox entry protects it from other stores
        /// on the same file. A claim is taken back earlier when its owner is gone (its store was
        /// released, or its process ended); the lease only matters when the owner cannot be checked
        /// (a process ID reused by another process) or when the owner lost track of its claim.
        /// It must exceed the longest time one request may take (see `RESTRemote`'s timeouts):
        /// a claim taken back while its request is still running may be sent twice at once.
        public var claimLease: TimeInterval
        /// Opens the database read-only: reads work, every write throws
        /// ``ModelSyncError/readOnlyStore(path:reason:)``. A file-backed store also opens read-only
        /// on its own when the process may not write the file or its folder.
        public var readOnly: Bool

        /// - Parameters:
        ///   - busyTimeout: Seconds a write waits for another writer (default 5).
        ///   - claimLease: Seconds an outbox claim holds at most (default 600).
        ///   - readOnly: Opens the database read-only (default `false`).
        public init(busyTimeout: TimeInterval = 5, claimLease: TimeInterval = 600, readOnly: Bool = false) {
            self.busyTimeout = busyTimeout
            self.claimLease = claimLease
            self.readOnly = readOnly
        }
    }

    /// The GRDB connection. Internal: app code reads through ``reader`` or ``read(_:)`` and writes
    /// through repositories and ``write(_:)``, which queue every change for the server.
    let database: any DatabaseWriter

    /// The database, read-only, for queries and observations ModelSync does not wrap:
    /// `try await ValueObservation.tracking { db in try Message.fetchCount(db) }.values(in: store.reader)`.
    public var reader: any DatabaseReader { database }
    /// The configuration the store was opened with.
    public let configuration: Configuration
    /// `true` when the store was opened read-only (``Configuration/readOnly``, or a file the process
    /// may not write): reads work, writes throw ``ModelSyncError/readOnlyStore(path:reason:)``.
    public var isReadOnly: Bool { readOnlyReason != nil }
    /// Why the store is read-only, or `nil`.
    let readOnlyReason: String?
    /// The database file, or `nil` in memory.
    let path: String?
    /// Who this store's outbox claims belong to (see `OutboxClaims.swift`).
    let claimOwner: ClaimOwner
    let models: [any SyncModel.Type]
    let modelsByTable: [String: any SyncModel.Type]
    let statementsByTable: [String: ModelStatements]
    let broadcaster = ChangeBroadcaster()
    let logger: Logger

    /// Opens (or creates) a store for `models`, creating or extending their tables.
    ///
    /// Opening waits (up to ``Configuration/busyTimeout``) while another store or process writes
    /// the file. Outbox entries left in flight by a store or process that is gone are put back in
    /// the queue; entries another live store is sending stay its own.
    ///
    /// - Parameters:
    ///   - location: A database file, or an in-memory database.
    ///   - models: Every model of the app, parents first: pass the generated `GeneratedModels.all`.
    ///   - removedModels: The tables of models an earlier version had and this one removes, besides
    ///     those the models' schemas already carry (``ModelSchema/removedModels``: generated models
    ///     carry their spec's `removed:` list, so apps need not pass `GeneratedModels.removedModels`;
    ///     passing it again is harmless). A database built by an earlier version of the spec is
    ///     migrated when it opens (see "Evolving your models" in the spec format).
    ///   - configuration: Busy timeout, claim lease, read-only (the defaults suit most apps).
    ///   - logger: Where the store logs (at debug level, without record payloads).
    public init(
        _ location: StoreLocation,
        models: [any SyncModel.Type],
        removedModels: [String] = [],
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "ModelSync.SyncStore")
    ) throws {
        self.configuration = configuration
        var grdb = GRDB.Configuration()
        grdb.foreignKeysEnabled = true
        grdb.label = "ModelSync"
        grdb.busyMode = .timeout(max(0, configuration.busyTimeout))
        switch location {
        case .file(let url):
            let path = url.path
            self.path = path
            let readOnlyReason = try StoreFile.readOnlyReason(at: url, requested: configuration.readOnly)
            self.readOnlyReason = readOnlyReason
            if readOnlyReason == nil {
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            }
            grdb.readonly = readOnlyReason != nil
            grdb.prepareDatabase { db in
                // Writes into a file deleted or moved under the store fail at their commit.
                if !db.configuration.readonly {
                    db.add(transactionObserver: StoreFile.MovedFileGuard(db, path: path), extent: .databaseLifetime)
                }
            }
            database = try StoreFile.open(path: path, configuration: grdb, busyTimeout: configuration.busyTimeout)
        case .inMemory:
            if configuration.readOnly {
                throw ModelSyncError.readOnlyStore(
                    path: ":memory:", reason: "an in-memory database starts empty, and read-only it would stay empty")
            }
            path = nil
            readOnlyReason = nil
            database = try DatabaseQueue(configuration: grdb)
        }
        self.models = models
        var byTable: [String: any SyncModel.Type] = [:]
        for model in models { byTable[model.schema.tableName] = model }
        modelsByTable = byTable
        statementsByTable = byTable.mapValues { ModelStatements(schema: $0.schema) }
        self.logger = logger
        claimOwner = ClaimOwner()
        if let readOnlyReason {
            try database.read { db in
                try SchemaBuilder.checkReadable(
                    db, models: models, path: path ?? ":memory:", readOnlyReason: readOnlyReason)
                if try SchemaMigration.needsMigration(db, models: models, removedModels: removedModels) {
                    throw ModelSyncError.readOnlyStore(
                        path: path ?? ":memory:",
                        reason: "\(readOnlyReason), and the database was built by an earlier version of the spec, "
                            + "which opening migrates; open it once where this process may write it, to upgrade it")
                }
            }
            return
        }
        // Schema, migrations and orphaned claims in one IMMEDIATE transaction: a second store or
        // process opening the same file at the same moment waits for it, then finds it done. Foreign
        // keys are off during it (a schema migration rebuilds tables others reference) and checked
        // before its commit.
        let requeued = try database.writeWithoutTransaction { db in
            try SchemaMigration.withForeignKeysOff(db) { db in
                try SchemaBuilder.migrate(db, models: models, removedModels: removedModels)
                return try OutboxStore.requeueStaleClaims(db)
            }
        }
        if requeued > 0 {
            logger.info(
                "requeued outbox entries whose sender is gone (a previous run, a released store, an ended process)",
                metadata: ["count": "\(requeued)"])
        }
    }

    /// The repository of `Model` records.
    public func repository<Model: SyncModel>(for model: Model.Type) -> Repository<Model> {
        Repository(store: self)
    }

    /// The outbox: changes waiting to be sent to the server.
    public var outbox: Outbox { Outbox(store: self) }

    /// Runs `body` in one transaction: every save and delete in it, and their outbox entries,
    /// commit together; change events are delivered after the commit, and none if it throws.
    ///
    /// Throws ``ModelSyncError/readOnlyStore(path:reason:)`` on a read-only store, and
    /// ``ModelSyncError/databaseFileMoved(path:)`` (nothing committed) when the database file was
    /// deleted or moved since the store opened it.
    public func write<T: Sendable>(_ body: @escaping @Sendable (SyncTransaction) throws -> T) async throws -> T {
        try checkWritable()
        return try await database.write { db in
            try self.runTransaction(db, body)
        }
    }

    /// Runs `body` with write access to the database, bypassing sync: nothing it changes is queued
    /// for the server, no change event is delivered, and the outbox, the ID map and the claims are
    /// not kept consistent with it. For tables of the app's own that are not synced, and repairs;
    /// synced records are saved and deleted through repositories and ``write(_:)``.
    public func writeBypassingSync<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try checkWritable()
        return try await database.write(body)
    }

    /// Reads in a consistent snapshot.
    ///
    /// Throws ``ModelSyncError/databaseFileMoved(path:)`` when the database file was deleted or
    /// moved since the store opened it (what it would read may no longer be what is on disk).
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        guard let path else { return try await database.read(body) }
        do {
            return try await database.read { db in
                try StoreFile.checkNotMoved(db, path: path)
                return try body(db)
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CANTOPEN {
            // A new reader connection cannot open a file that is gone.
            if !FileManager.default.fileExists(atPath: path) { throw ModelSyncError.databaseFileMoved(path: path) }
            throw error
        }
    }

    /// Throws ``ModelSyncError/readOnlyStore(path:reason:)`` when the store cannot write.
    func checkWritable() throws {
        if let readOnlyReason {
            throw ModelSyncError.readOnlyStore(path: path ?? ":memory:", reason: readOnlyReason)
        }
    }

    func runTransaction<T>(_ db: Database, _ body: (SyncTransaction) throws -> T) throws -> T {
        let transaction = SyncTransaction(db: db, store: self)
        let result = try body(transaction)
        let events = transaction.events
        if !events.isEmpty {
            let broadcaster = self.broadcaster
            db.afterNextTransaction(onCommit: { _ in broadcaster.publish(events) })
        }
        return result
    }

    func model(forTable table: String) throws -> any SyncModel.Type {
        guard let model = modelsByTable[table] else { throw ModelSyncError.unknownModel(table) }
        return model
    }

    func statements(for model: any SyncModel.Type) throws -> ModelStatements {
        let schema = model.schema
        return try statements(forTable: schema.tableName, model: schema.name)
    }

    /// The statements of the model stored in `table` (`model` names it in the error).
    func statements(forTable table: String, model: String) throws -> ModelStatements {
        guard let statements = statementsByTable[table] else { throw ModelSyncError.unknownModel(model) }
        return statements
    }

    func checkRegistered(_ model: any SyncModel.Type) throws {
        guard modelsByTable[model.schema.tableName] != nil else {
            throw ModelSyncError.unknownModel(model.schema.name)
        }
    }
}

/// The SQL a store runs for each model, built once from its schema.
struct ModelStatements: Sendable {
    /// Inserts a row (columns in ``SyncModel/databaseValues()`` order) unless its ID exists.
    let insertIgnoringExistingID: String
    /// Updates every field of a row; arguments are the fields then the ID.
    let updateByID: String
    /// Selects the row with the given ID, columns in schema order (for `init(orderedRow:)`).
    let selectByID: String

    init(schema: ModelSchema) {
        let table = schema.tableName.quotedDatabaseIdentifier
        let columns = ["id"] + schema.fields.map(\.name)
        let quotedColumns = columns.map(\.quotedDatabaseIdentifier).joined(separator: ", ")
        let placeholders = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        insertIgnoringExistingID =
            "INSERT INTO \(table) (\(quotedColumns)) VALUES (\(placeholders)) ON CONFLICT(\"id\") DO NOTHING"
        let assignments = schema.fields.map { "\($0.name.quotedDatabaseIdentifier) = ?" }.joined(separator: ", ")
        selectByID = "SELECT \(quotedColumns) FROM \(table) WHERE \"id\" = ?"
        updateByID =
            schema.fields.isEmpty
            ? "UPDATE \(table) SET \"id\" = \"id\" WHERE \"id\" = ?"
            : "UPDATE \(table) SET \(assignments) WHERE \"id\" = ?"
    }
}
