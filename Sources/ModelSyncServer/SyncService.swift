import Foundation
import Logging
@_exported import ModelSyncServerSchema
import PostgresNIO

/// The sync protocol (Docs/Protocol.md) on PostgreSQL for one ``ServerSchema``: creates with
/// idempotency keys stored in the database, updates with per-record versions, deletes with
/// tombstones, cursor listings that never skip a change committed late, audit history, and
/// tenancy on every statement. It keeps no state of its own: any number of processes can serve
/// the same database.
///
/// Mount it on a Hummingbird router with ``addRoutes(to:)``.
public final class SyncService: Sendable {
    /// The models served.
    public let schema: ServerSchema
    /// Their SQL (built from `schema` unless given, as generated code does).
    public let sql: ServerSQL
    /// The database; the caller runs it (`client.run()`).
    public let database: PostgresClient
    /// Who sends each request.
    public let authenticator: any SyncAuthenticator
    let logger: Logger
    /// The LISTEN connection of the live change streams (SyncService+Live.swift).
    let liveHub: LiveChangeHub
    private let modelsByTable: [String: ServerModel]

    /// A service for `schema` on `database`. Call ``migrate()`` once before serving.
    public init(
        schema: ServerSchema, sql: ServerSQL? = nil, database: PostgresClient, authenticator: any SyncAuthenticator,
        logger: Logger = Logger(label: "modelsync-server")
    ) {
        self.schema = schema
        self.sql = sql ?? ServerSQL(schema)
        self.database = database
        self.authenticator = authenticator
        self.logger = logger
        liveHub = LiveChangeHub(database: database, logger: logger)
        modelsByTable = Dictionary(schema.models.map { ($0.table, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// An answer: status and JSON body.
    public struct Answer: Sendable, Equatable {
        public var status: Int
        public var body: String
    }

    // MARK: Schema

    /// Creates the schema in an empty database, or migrates a database built with an earlier
    /// version of the spec to this one (see ``ServerMigration``), in one transaction. The database
    /// keeps the schema it was built with (`modelsync_schema`). Several processes may start at once:
    /// an advisory lock serialises them, and the first one migrates.
    ///
    /// - Throws: ``ServerMigrationError`` when the spec does not explain a change from the stored
    ///   schema (nothing is changed); ``SyncServerError`` when the database was built by a newer
    ///   version of the spec, or a statement of the migration fails.
    public func migrate() async throws {
        let ddl = sql.schema.joined(separator: ";\n")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let shape = String(decoding: try encoder.encode(schema.shape), as: UTF8.self)
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7150209011)", logger: self.logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS modelsync_schema (singleton boolean PRIMARY KEY DEFAULT true, ddl_hash text NOT NULL)",
                logger: self.logger)
            try await connection.query(
                "ALTER TABLE modelsync_schema ADD COLUMN IF NOT EXISTS \"schema\" text", logger: self.logger)
            var stored: (hash: String, schema: String?)?
            for try await row in try await connection.query(
                "SELECT ddl_hash, \"schema\" FROM modelsync_schema", logger: self.logger
            )
            .decode((String, String?).self) {
                stored = row
            }
            let current = Self.hash(ddl)
            guard let stored else {
                for statement in self.sql.schema {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO modelsync_schema (ddl_hash, \"schema\") VALUES (\(current), \(shape))",
                    logger: self.logger)
                return
            }
            guard let storedText = stored.schema else {
                // A database of a server that kept only the hash of its DDL.
                guard stored.hash == current else {
                    throw SyncServerError(
                        status: 500,
                        message:
                            "the database holds another ModelSync schema (its hash is \(stored.hash), this spec's is "
                            + "\(current)), built by a server that did not store its schema, so it cannot be migrated: "
                            + "start the server of the spec that built it once (it stores its schema), then this one")
                }
                try await connection.query("UPDATE modelsync_schema SET \"schema\" = \(shape)", logger: self.logger)
                return
            }
            let storedSchema: ServerSchema
            do {
                storedSchema = try JSONDecoder().decode(ServerSchema.self, from: Data(storedText.utf8))
            } catch {
                throw SyncServerError(
                    status: 500, message: "the schema stored in modelsync_schema cannot be read: \(error)")
            }
            if storedSchema == self.schema.shape { return }
            if storedSchema.schemaVersion > self.schema.schemaVersion {
                throw SyncServerError(
                    status: 500,
                    message:
                        "the database was built with schema version \(storedSchema.schemaVersion), newer than this "
                        + "spec's \(self.schema.schemaVersion); run the newer server (a database is never migrated back)"
                )
            }
            let migration = try ServerMigration(from: storedSchema, to: self.schema)
            for check in migration.checks {
                for try await value in try await connection.query(
                    PostgresQuery(unsafeSQL: check.sql), logger: self.logger
                ).decode(String.self) {
                    throw ServerMigrationError(message: check.message + ": '\(value)'")
                }
            }
            for statement in migration.statements {
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                } catch let error as PSQLError {
                    throw SyncServerError(
                        status: 500,
                        message:
                            "migrating the database from schema version \(storedSchema.schemaVersion) failed (nothing "
                            + "was changed): \(error.serverInfo?[.message] ?? String(reflecting: error)) in: \(statement)"
                    )
                }
            }
            try await connection.query(
                "UPDATE modelsync_schema SET ddl_hash = \(current), \"schema\" = \(shape)", logger: self.logger)
            self.logger.notice(
                "migrated the database from schema version \(storedSchema.schemaVersion) to \(self.schema.schemaVersion) (\(migration.statements.count) statements)"
            )
        }
    }

    /// FNV-1a of the DDL, as hex: enough to notice another schema.
    static func hash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    // MARK: Operations

    /// `POST {path}`; a client of the ``ClientShape/earlier`` shape sends and gets that shape.
    public func create(
        _ model: ServerModel, as identity: SyncIdentity, body: Data, idempotencyKey: String?,
        shape: ClientShape = .current
    ) async throws -> Answer {
        guard shape == .current else {
            let body = try await currentBody(body, of: model, storedRecord: nil)
            let answer = try await create(model, as: identity, body: body, idempotencyKey: idempotencyKey)
            return try await self.answer(answer, in: shape, of: model)
        }
        let fields = try JSONShape.object(from: body)
        try validate(fields, for: model, creating: true)
        let text = String(decoding: body, as: UTF8.self)
        let scope = "create:" + model.table
        let requestHash = Self.requestHash(text)
        // One statement, one round trip: the record, its history and the answer stored under the key
        // commit together (`ModelStatements.create`). A repeat of the key fails on a primary key and
        // changes nothing; its stored answer is read then.
        var binds = PostgresBindings()
        binds.append(identity.tenant)
        binds.append(text)
        binds.append(idempotencyKey)
        binds.append(scope)
        binds.append(requestHash)
        binds.append(identity.actor)
        let statement = sql.models[model.table]!.create
        do {
            let record = try await database.withConnection { connection in
                var result: String?
                for try await text in try await connection.query(
                    PostgresQuery(unsafeSQL: statement, binds: binds), logger: self.logger
                ).decode(String.self) {
                    result = text
                }
                return result
            }
            return Answer(status: 201, body: record ?? "{}")
        } catch let error as PSQLError {
            if let idempotencyKey, error.serverInfo?[.sqlState] == "23505",
                let replay = try await storedAnswer(
                    idempotencyKey, scope: scope, requestHash: requestHash, identity: identity)
            {
                return replay
            }
            throw mapped(error, model: model, operation: "create")
        }
    }

    /// One create of a set-based create: the body as sent (JSON text), its key and request hash.
    struct CreateInput: Sendable {
        var body: String
        var idempotencyKey: String?
        var requestHash: String
    }

    /// Runs the set-based create (`ModelStatements.createRun`) for `creates` of `model` on `connection`:
    /// one round trip. Returns each create's outcome in order: the created record (`201`), the answer
    /// stored under its key, or the error of a key used for another request or still unanswered.
    /// Throws the database's error when any record is refused; then nothing was created and the caller
    /// decides (one create at a time, or the mapped error). `creates` must not repeat a key.
    func createAll(
        _ creates: [CreateInput], of model: ServerModel, as identity: SyncIdentity, on connection: PostgresConnection
    ) async throws -> [Result<Answer, SyncServerError>] {
        var array = "["
        for (index, create) in creates.enumerated() {
            if index > 0 { array += "," }
            array += #"{"b":"# + create.body + #","k":"# + (create.idempotencyKey.map(jsonString) ?? "null")
            array += #","h":"# + jsonString(create.requestHash) + "}"
        }
        array += "]"
        var binds = PostgresBindings()
        binds.append(identity.tenant)
        binds.append(array)
        binds.append("create:" + model.table)
        binds.append(identity.actor)
        var created: [String] = []
        var stored: [Int: Result<Answer, SyncServerError>] = [:]
        for try await (ordinal, _, record, hash, status) in try await connection.query(
            PostgresQuery(unsafeSQL: sql.models[model.table]!.createRun, binds: binds), logger: logger
        ).decode((Int64?, Int64?, String?, String?, Int?).self) {
            guard let ordinal else {
                created.append(record ?? "{}")
                continue
            }
            let index = Int(ordinal) - 1
            let create = creates[index]
            if let hash, !Self.sameRequest(hash, create.requestHash) {
                stored[index] = .failure(Self.keyReused(create.idempotencyKey ?? ""))
            } else if let status, let record {
                stored[index] = .success(Answer(status: status, body: record))
            } else {
                stored[index] = .failure(
                    SyncServerError(
                        status: 503, message: "the first request with this Idempotency-Key is still running; retry"))
            }
        }
        var outcomes: [Result<Answer, SyncServerError>] = []
        var next = created.makeIterator()
        for index in creates.indices {
            if let answer = stored[index] {
                outcomes.append(answer)
            } else if let record = next.next() {
                outcomes.append(.success(Answer(status: 201, body: record)))
            } else {
                throw SyncServerError(
                    status: 500,
                    message: "the database created \(created.count) of \(creates.count) \(model.table) records")
            }
        }
        return outcomes
    }

    /// A create on `connection`, inside a transaction of the caller's (a batch): the body is
    /// validated. It claims the key first, so that a repeat answers from the stored answer without
    /// an error that would abort the caller's transaction.
    func create(
        _ model: ServerModel, as identity: SyncIdentity, text: String, idempotencyKey: String?,
        on connection: PostgresConnection
    ) async throws -> Answer {
        let statements = sql.models[model.table]!
        let scope = "create:" + model.table
        guard let idempotencyKey else {
            try await self.setActor(identity, on: connection)
            var binds = PostgresBindings()
            binds.append(identity.tenant)
            binds.append(text)
            binds.append(String?.none)
            let record = try await self.single(
                PostgresQuery(unsafeSQL: statements.insert, binds: binds), on: connection, model: model,
                operation: "create")
            return Answer(status: 201, body: record ?? "{}")
        }
        if let replay = try await self.claim(
            idempotencyKey, scope: scope, request: text, identity: identity, on: connection)
        {
            return replay
        }
        var binds = PostgresBindings()
        binds.append(identity.tenant)
        binds.append(text)
        binds.append(idempotencyKey)
        binds.append(scope)
        let record = try await self.single(
            PostgresQuery(
                unsafeSQL: "WITH created(record) AS (\n\(statements.insert)\n)\n"
                    + "UPDATE modelsync_idempotency SET \"status\" = 201, \"response\" = (SELECT record FROM created)\n"
                    + "WHERE \"tenant_id\" = $1 AND \"scope\" = $4 AND \"key\" = $3 RETURNING \"response\"",
                binds: binds), on: connection, model: model, operation: "create")
        return Answer(status: 201, body: record ?? "{}")
    }

    /// The answer stored under an idempotency key, or `nil` when the key is unused; `422` when the
    /// key was used for another request.
    private func storedAnswer(_ key: String, scope: String, requestHash: String, identity: SyncIdentity)
        async throws -> Answer?
    {
        for try await (storedHash, status, response) in try await database.query(
            """
            SELECT "request_hash", "status", "response" FROM modelsync_idempotency
            WHERE "tenant_id" = \(identity.tenant) AND "scope" = \(scope) AND "key" = \(key)
            """, logger: logger
        ).decode((String, Int?, String?).self) {
            guard Self.sameRequest(storedHash, requestHash) else { throw Self.keyReused(key) }
            if let status, let response { return Answer(status: status, body: response) }
        }
        return nil
    }

    /// Whether a request with `hash` repeats the one stored under a key as `storedHash`. An answer
    /// stored before a schema migration (`…:migrated`) is replayed whatever shape the retry has.
    static func sameRequest(_ storedHash: String, _ hash: String) -> Bool {
        storedHash == hash || storedHash.hasSuffix(":migrated")
    }

    /// The answer to a key used before for another request.
    static func keyReused(_ key: String) -> SyncServerError {
        SyncServerError(
            status: 422,
            message: "the Idempotency-Key '\(key)' was already used for another request; use a new key for a new change"
        )
    }

    /// What identifies a request under an idempotency key: the hash of its body and its length.
    static func requestHash(_ request: String) -> String {
        hash(request) + String(request.utf8.count, radix: 16)
    }

    /// `PUT {path}/{id}`: replaces a record; `404` for an unknown ID (never a re-create), `409` with
    /// the server's copy when `ifMatch` names another version.
    public func update(
        _ model: ServerModel, as identity: SyncIdentity, id rawID: String, body: Data, ifMatch: String?,
        idempotencyKey: String?, shape: ClientShape = .current
    ) async throws -> Answer {
        let id = try recordID(rawID, of: model)
        let fields = try JSONShape.object(from: body)
        if shape == .current { try validate(fields, for: model, creating: false) }
        let text = String(decoding: body, as: UTF8.self)
        let answer = try await transaction { connection in
            try await self.update(
                model, as: identity, id: id, rawID: rawID, text: text, ifMatch: ifMatch,
                idempotencyKey: idempotencyKey, shape: shape, on: connection)
        }
        return try await self.answer(answer, in: shape, of: model)
    }

    /// An update on `connection`, in the caller's transaction: `id` normalised; the body validated
    /// when it is in the current shape (an earlier shape is validated once translated).
    func update(
        _ model: ServerModel, as identity: SyncIdentity, id: String, rawID: String, text requestText: String,
        ifMatch: String?, idempotencyKey: String?, shape: ClientShape = .current, on connection: PostgresConnection
    ) async throws -> Answer {
        let statements = sql.models[model.table]!
        try await self.setActor(identity, on: connection)
        let scope = "update:" + model.table
        if let idempotencyKey,
            let replay = try await self.claim(
                idempotencyKey, scope: scope, request: id + "\u{0}" + requestText, identity: identity,
                on: connection)
        {
            return replay
        }
        var binds = PostgresBindings()
        binds.append(identity.tenant)
        binds.append(id)
        var current: (version: Int64, record: String)?
        for try await row in try await connection.query(
            PostgresQuery(unsafeSQL: statements.selectForUpdate, binds: binds), logger: self.logger
        ).decode((Int64, String).self) {
            current = (row.0, row.1)
        }
        guard let current else { throw Self.notFound(model, rawID) }
        if let ifMatch, ifMatch != "*", ifMatch != String(current.version) {
            throw SyncServerError(
                status: 409,
                message:
                    "\(model.table) '\(rawID)' is at version \(current.version), the change was based on version "
                    + "\(ifMatch); merge with 'current' and send it again with If-Match: \"\(current.version)\"",
                current: shape == .current
                    ? current.record : try await self.earlierRecord(current.record, of: model, on: connection))
        }
        var text = requestText
        if shape == .earlier {
            // The keys the earlier shape lacks keep their stored values.
            let body = try await self.currentBody(
                Data(requestText.utf8), of: model, storedRecord: current.record, on: connection)
            try self.validate(try JSONShape.object(from: body), for: model, creating: false)
            text = String(decoding: body, as: UTF8.self)
        }
        binds.append(text)
        let record = try await self.single(
            PostgresQuery(unsafeSQL: statements.update, binds: binds), on: connection, model: model,
            operation: "update")
        guard let record else { throw Self.notFound(model, rawID) }
        let answer = Answer(status: 200, body: record)
        if let idempotencyKey {
            try await self.remember(answer, key: idempotencyKey, scope: scope, identity: identity, on: connection)
        }
        return answer
    }

    /// `DELETE {path}/{id}`: leaves a tombstone (and cascades, nullifies or refuses per the spec's
    /// delete rules); `404` for an unknown ID.
    public func delete(_ model: ServerModel, as identity: SyncIdentity, id rawID: String) async throws -> Answer {
        let id = try recordID(rawID, of: model)
        return try await transaction { connection in
            try await self.delete(model, as: identity, id: id, rawID: rawID, on: connection)
        }
    }

    /// A delete on `connection`, in its transaction; `id` normalised.
    func delete(
        _ model: ServerModel, as identity: SyncIdentity, id: String, rawID: String, on connection: PostgresConnection
    ) async throws -> Answer {
        let statements = sql.models[model.table]!
        try await self.setActor(identity, on: connection)
        var binds = PostgresBindings()
        binds.append(identity.tenant)
        binds.append(id)
        var deleted = false
        for try await _ in try await connection.query(
            PostgresQuery(unsafeSQL: statements.delete, binds: binds), logger: self.logger)
        {
            deleted = true
        }
        guard deleted else { throw Self.notFound(model, rawID) }
        return Answer(status: 204, body: "")
    }

    /// `GET {path}/{id}`.
    public func get(_ model: ServerModel, as identity: SyncIdentity, id rawID: String, shape: ClientShape = .current)
        async throws -> Answer
    {
        let id = try recordID(rawID, of: model)
        var binds = PostgresBindings()
        binds.append(identity.tenant)
        binds.append(id)
        let record = try await runMapped(model: model, operation: "read") {
            var found: String?
            for try await text in try await self.database.query(
                PostgresQuery(unsafeSQL: self.sql.models[model.table]!.select, binds: binds), logger: self.logger
            ).decode(String.self) {
                found = text
            }
            return found
        }
        guard let record else { throw Self.notFound(model, rawID) }
        return try await answer(Answer(status: 200, body: record), in: shape, of: model)
    }

    /// `GET {path}?cursor=…&limit=…`: changes after the cursor, oldest first, each change of a
    /// transaction that has finished (see Docs/Server.md for why this never skips one); without a
    /// cursor, live records only. A cursor older than the retention horizon
    /// (``pruneTombstones(through:)``) gets `410 Gone` naming the horizon: the tombstones after it
    /// are gone, so the changes listed would silently miss deletions.
    public func list(
        _ model: ServerModel, as identity: SyncIdentity, cursor: String?, limit: Int?, shape: ClientShape = .current
    ) async throws -> Answer {
        var position = (xid: "0", seq: Int64(0))
        if let cursor, !cursor.isEmpty {
            let parts = cursor.split(separator: "-")
            guard parts.count == 2, let xid = UInt64(parts[0]), let seq = Int64(parts[1]) else {
                throw SyncServerError(
                    status: 400,
                    message: "the cursor '\(cursor)' is not one this server gave; send a next_cursor back as is")
            }
            position = (String(xid), seq)
        }
        let pageSize = min(max(limit ?? 100, 1), 1000)
        let statements = sql.models[model.table]!
        var binds = PostgresBindings()
        binds.append(identity.tenant)
        binds.append(position.xid)
        binds.append(position.seq)
        binds.append(Int64(pageSize))
        let query = PostgresQuery(
            unsafeSQL: cursor?.isEmpty == false ? statements.listChanges : statements.listLive, binds: binds)
        var rows: [(String, Int64, String)] = []
        // A short page may be short because an older transaction is still running (the cursor must not
        // pass it). Wait for it briefly, so that a change committed before this request is listed.
        for attempt in 0..<Self.heldBackAttempts {
            rows = try await runMapped(model: model, operation: "list") {
                var rows: [(String, Int64, String)] = []
                for try await row in try await self.database.query(query, logger: self.logger).decode(
                    (String, Int64, String).self)
                {
                    rows.append(row)
                }
                return rows
            }
            if rows.count == pageSize || attempt == Self.heldBackAttempts - 1 { break }
            var check = PostgresBindings()
            check.append(identity.tenant)
            check.append(rows.last?.0 ?? position.xid)
            check.append(rows.last?.1 ?? position.seq)
            let heldBack = try await runMapped(model: model, operation: "list") {
                var held = false
                for try await value in try await self.database.query(
                    PostgresQuery(unsafeSQL: statements.heldBack, binds: check), logger: self.logger
                ).decode(Bool.self) {
                    held = value
                }
                return held
            }
            if !heldBack { break }
            try await Task.sleep(for: .milliseconds(min(2 << attempt, 100)))
        }
        // Checked after the listing was read: a pruning that committed before the read is seen here.
        if let requested = cursor.flatMap(ChangePosition.init),
            let horizon = try await runMapped(
                model: model, operation: "list", { try await self.retentionHorizon() }), requested < horizon
        {
            return Answer(status: 410, body: Self.expired(requested, horizon: horizon))
        }
        if let last = rows.last { position = (last.0, last.1) }
        var data = "[" + rows.map(\.2).joined(separator: ",") + "]"
        if shape == .earlier, !rows.isEmpty { data = try await earlierRecords(data, of: model) }
        return Answer(
            status: 200,
            body: #"{"data":"# + data + #","next_cursor":"# + jsonString("\(position.xid)-\(position.seq)") + "}")
    }

    /// `GET {path}/{id}/history?cursor=…&limit=…`: the record's changes, oldest first
    /// (`seq`, `at`, `actor`, `operation`, `before`, `after`); `404` when the tenant has none.
    public func history(
        _ model: ServerModel, as identity: SyncIdentity, id rawID: String, cursor: String?, limit: Int?
    ) async throws -> Answer {
        let id = try recordID(rawID, of: model)
        var after: Int64 = 0
        if let cursor, !cursor.isEmpty {
            guard let value = Int64(cursor) else {
                throw SyncServerError(
                    status: 400, message: "the history cursor '\(cursor)' must be a next_cursor of this server")
            }
            after = value
        }
        var binds = PostgresBindings()
        binds.append(identity.tenant)
        binds.append(model.table)
        binds.append(id)
        binds.append(after)
        binds.append(Int64(min(max(limit ?? 100, 1), 1000)))
        let rows = try await runMapped(model: model, operation: "history") {
            var rows: [(Int64, String)] = []
            for try await row in try await self.database.query(
                PostgresQuery(unsafeSQL: Self.historySQL, binds: binds), logger: self.logger
            ).decode((Int64, String).self) {
                rows.append(row)
            }
            return rows
        }
        if rows.isEmpty, after == 0 { throw Self.notFound(model, rawID) }
        let next = rows.last?.0 ?? after
        return Answer(
            status: 200,
            body: #"{"data":["# + rows.map(\.1).joined(separator: ",") + #"],"next_cursor":""# + String(next) + "\"}")
    }

    /// How often a listing checks for changes held back by a running transaction (about 5.5 s in all:
    /// transaction IDs are cluster-wide, so a `CREATE DATABASE` or a slow transaction in another
    /// database of the cluster holds listings back too).
    static let heldBackAttempts = 60

    static let historySQL = """
        SELECT h."seq", jsonb_build_object('seq', h."seq", 'at', h."at", 'actor', h."actor", 'operation', h."operation",
          'before', h."before", 'after', h."after")::text
        FROM modelsync_history AS h
        WHERE h."tenant_id" = $1 AND h."model" = $2 AND h."record_id" = $3 AND h."seq" > $4
        ORDER BY h."seq" LIMIT $5
        """

    // MARK: Helpers

    /// The ID as stored: integers normalised (`007` is `7`); an ID that cannot exist is a `404`.
    func recordID(_ raw: String, of model: ServerModel) throws -> String {
        guard model.idType == .int else { return raw }
        guard let value = Int64(raw) else { throw Self.notFound(model, raw) }
        return String(value)
    }

    static func notFound(_ model: ServerModel, _ id: String) -> SyncServerError {
        SyncServerError(status: 404, message: "no \(model.table) has id '\(id)'")
    }

    /// Checks the body's fields against the model before any SQL runs: `422` naming the field.
    func validate(_ fields: [String: JSONShape], for model: ServerModel, creating: Bool) throws {
        var problems: [String] = []
        if creating, model.idGeneration == .client {
            switch (fields["id"], model.idType) {
            case (.string(let id)?, .string) where !id.isEmpty: break
            case (.integer?, .int): break
            default:
                problems.append(
                    "'id' is required: a \(model.table) gets its ID from the client (\(model.idType == .int ? "an integer" : "a non-empty string"))"
                )
            }
        }
        for column in model.columns {
            let value = fields[column.name] ?? .null
            if value == .null {
                if !column.isOptional { problems.append("'\(column.name)' is required") }
                continue
            }
            let expected: String
            var matches: Bool
            if let foreignKey = model.foreignKey(column: column.name) {
                let targetIsInt = modelsByTable[foreignKey.targetTable]?.idType == .int
                expected = targetIsInt ? "an integer ID" : "a string ID"
                if case .string = value { matches = !targetIsInt } else { matches = targetIsInt && value == .integer }
            } else {
                switch column.type {
                case .text, .date, .data:
                    expected = "a string"
                    if case .string = value { matches = true } else { matches = false }
                case .integer:
                    expected = "an integer"
                    matches = value == .integer
                case .double, .decimal:
                    expected = "a number"
                    matches = value == .integer || value == .number
                case .boolean:
                    expected = "a boolean"
                    matches = value == .bool
                case .json:
                    expected = "a JSON array or object"
                    if case .object = value { matches = true } else { matches = value == .array }
                }
            }
            if !matches { problems.append("'\(column.name)' must be \(expected), got \(value.typeName)") }
        }
        if !problems.isEmpty {
            throw SyncServerError(status: 422, message: problems.joined(separator: "; "))
        }
    }

    func setActor(_ identity: SyncIdentity, on connection: PostgresConnection) async throws {
        try await connection.query(
            "SELECT set_config('modelsync.actor', \(identity.actor), true)", logger: logger)
    }

    /// Claims an idempotency key in this transaction; returns the first answer when the key was
    /// used before with the same request, throws `422` when it was used with another.
    func claim(
        _ key: String, scope: String, request: String, identity: SyncIdentity, on connection: PostgresConnection
    ) async throws -> Answer? {
        let hash = Self.requestHash(request)
        var claimed = false
        for try await _ in try await connection.query(
            """
            INSERT INTO modelsync_idempotency ("tenant_id", "scope", "key", "request_hash")
            SELECT \(identity.tenant), \(scope), \(key), \(hash)
            FROM (SELECT set_config('modelsync.actor', \(identity.actor), true)) AS actor
            ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        {
            claimed = true
        }
        if claimed { return nil }
        for try await (storedHash, status, response) in try await connection.query(
            """
            SELECT "request_hash", "status", "response" FROM modelsync_idempotency
            WHERE "tenant_id" = \(identity.tenant) AND "scope" = \(scope) AND "key" = \(key)
            """, logger: logger
        ).decode((String, Int?, String?).self) {
            guard Self.sameRequest(storedHash, hash) else { throw Self.keyReused(key) }
            if let status, let response { return Answer(status: status, body: response) }
        }
        throw SyncServerError(
            status: 503, message: "the first request with this Idempotency-Key is still running; retry")
    }

    func remember(
        _ answer: Answer, key: String, scope: String, identity: SyncIdentity, on connection: PostgresConnection
    ) async throws {
        try await connection.query(
            """
            UPDATE modelsync_idempotency SET "status" = \(answer.status), "response" = \(answer.body)
            WHERE "tenant_id" = \(identity.tenant) AND "scope" = \(scope) AND "key" = \(key)
            """, logger: logger)
    }

    /// Runs a statement that returns at most one text column; database errors become answers.
    private func single(
        _ query: PostgresQuery, on connection: PostgresConnection, model: ServerModel, operation: String
    ) async throws -> String? {
        try await runMapped(model: model, operation: operation) {
            var result: String?
            for try await text in try await connection.query(query, logger: self.logger).decode(String.self) {
                result = text
            }
            return result
        }
    }

    /// Runs `body` in a transaction on one connection: committed when it returns, rolled back when it throws.
    func transaction<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await database.withConnection { connection in
            try await connection.query("BEGIN", logger: self.logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: self.logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: self.logger)
                if let error = error as? PSQLError { throw self.mapped(error, model: nil, operation: "commit") }
                throw error
            }
        }
    }

    private func runMapped<Result>(model: ServerModel, operation: String, _ body: () async throws -> Result)
        async throws -> Result
    {
        do {
            return try await body()
        } catch let error as PSQLError {
            throw mapped(error, model: model, operation: operation)
        }
    }

    /// A database error as an answer that names the field: unique and foreign-key violations,
    /// missing values and invalid values are `422`; a delete refused by `restrict` is `409`.
    func mapped(_ error: PSQLError, model: ServerModel?, operation: String) -> SyncServerError {
        guard let info = error.serverInfo, let state = info[.sqlState] else {
            logger.error("database unavailable: \(String(reflecting: error))")
            return SyncServerError(status: 503, message: "the database is unavailable; retry later")
        }
        let constraint = info[.constraintName].flatMap { sql.constraints[$0] }
        let table = model?.table ?? info[.tableName] ?? "record"
        switch state {
        case "23505":
            if let constraint {
                return SyncServerError(
                    status: 422,
                    message: "'\(constraint.column)' must be unique: another \(constraint.table) already has this value"
                )
            }
            return SyncServerError(status: 409, message: "a \(table) with this id already exists")
        case "23503":
            if operation == "delete" || info[.tableName] != model?.table {
                let child =
                    constraint.map { "\($0.table) records still reference it (\($0.column))" }
                    ?? "other records reference it"
                return SyncServerError(status: 409, message: "this \(table) cannot be deleted: \(child)")
            }
            let column = constraint?.column ?? "a reference"
            let target = constraint.flatMap { model?.foreignKey(column: $0.column)?.targetTable } ?? "record"
            return SyncServerError(
                status: 422, message: "'\(column)' references an unknown \(target); create the \(target) first")
        case "23502":
            return SyncServerError(status: 422, message: "'\(info[.columnName] ?? "a field")' is required")
        case "23514":
            guard let constraint else { break }
            let column = modelsByTable[constraint.table]?.columns.first { $0.name == constraint.column }
            if let column, !column.allowedValues.isEmpty {
                return SyncServerError(
                    status: 422,
                    message:
                        "'\(constraint.column)' must be one of \(column.allowedValues.map { "'\($0)'" }.joined(separator: ", "))"
                )
            }
            return SyncServerError(
                status: 422,
                message: "'\(constraint.column)' must be an ISO 8601 date-time such as 2026-11-22T19:02:50.5Z")
        case "40001", "40P01":
            return SyncServerError(status: 503, message: "the change conflicted with a concurrent one; retry")
        default:
            if state.hasPrefix("22") {
                return SyncServerError(
                    status: 422, message: "a value is invalid: \(info[.message] ?? "out of range or malformed")")
            }
        }
        logger.error("database error \(state): \(info[.message] ?? "")")
        return SyncServerError(status: 500, message: "the database refused the \(operation) (\(state))")
    }
}
