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
public final class SyncStore: Sendable {
    /// The GRDB connection, for reads and queries that ModelSync does not wrap. Write through the
    /// store's own APIs so that changes reach the outbox.
    public let database: any DatabaseWriter
    let models: [any SyncModel.Type]
    let modelsByTable: [String: any SyncModel.Type]
    let statementsByTable: [String: ModelStatements]
    let broadcaster = ChangeBroadcaster()
    let logger: Logger

    /// Opens (or creates) a store for `models`, creating or extending their tables.
    ///
    /// - Parameters:
    ///   - location: A database file, or an in-memory database.
    ///   - models: Every model of the app, parents first: pass the generated `GeneratedModels.all`.
    ///   - logger: Where the store logs (at debug level, without record payloads).
    public init(
        _ location: StoreLocation,
        models: [any SyncModel.Type],
        logger: Logger = Logger(label: "ModelSync.SyncStore")
    ) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.label = "ModelSync"
        switch location {
        case .file(let url):
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            database = try DatabasePool(path: url.path, configuration: configuration)
        case .inMemory:
            database = try DatabaseQueue(configuration: configuration)
        }
        self.models = models
        var byTable: [String: any SyncModel.Type] = [:]
        for model in models { byTable[model.schema.tableName] = model }
        modelsByTable = byTable
        statementsByTable = byTable.mapValues { ModelStatements(schema: $0.schema) }
        self.logger = logger
        try SchemaBuilder.migrate(database, models: models)
        let requeued = try database.write { db in try OutboxStore.requeueInFlight(db) }
        if requeued > 0 {
            logger.info("requeued outbox entries interrupted by the previous run", metadata: ["count": "\(requeued)"])
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
    public func write<T: Sendable>(_ body: @escaping @Sendable (SyncTransaction) throws -> T) async throws -> T {
        try await database.write { db in
            try self.runTransaction(db, body)
        }
    }

    /// Reads in a consistent snapshot.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await database.read(body)
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
        guard let statements = statementsByTable[model.schema.tableName] else {
            throw ModelSyncError.unknownModel(model.schema.name)
        }
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

    init(schema: ModelSchema) {
        let table = schema.tableName.quotedDatabaseIdentifier
        let columns = ["id"] + schema.fields.map(\.name)
        let quotedColumns = columns.map(\.quotedDatabaseIdentifier).joined(separator: ", ")
        let placeholders = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        insertIgnoringExistingID =
            "INSERT INTO \(table) (\(quotedColumns)) VALUES (\(placeholders)) ON CONFLICT(\"id\") DO NOTHING"
        let assignments = schema.fields.map { "\($0.name.quotedDatabaseIdentifier) = ?" }.joined(separator: ", ")
        updateByID =
            schema.fields.isEmpty
            ? "UPDATE \(table) SET \"id\" = \"id\" WHERE \"id\" = ?"
            : "UPDATE \(table) SET \(assignments) WHERE \"id\" = ?"
    }
}
