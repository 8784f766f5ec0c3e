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
        modelsByTable = Dictionary(schema.models.map { ($0.table, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// An answer: status and JSON body.
    public struct Answer: Sendable, Equatable {
        public var status: Int
        public var body: String
    }

    // MARK: Schema

    /// Creates the schema in an empty database, or checks that the database has this very schema
    /// (several processes may start at once: an advisory lock serialises them).
    ///
    /// - Throws: ``SyncServerError`` when the database holds another schema (migrations are not
    ///   supported yet: use a new database, or drop the tables).
    public func migrate() async throws {
        let ddl = sql.schema.joined(separator: ";\n")
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7150209011)", logger: self.logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS modelsync_schema (singleton boolean PRIMARY KEY DEFAULT true, ddl_hash text NOT NULL)",
                logger: self.logger)
            var stored: String?
            for try await hash in try await connection.query(
                "SELECT ddl_hash FROM modelsync_schema", logger: self.logger
            )
            .decode(String.self) {
                stored = hash
            }
            let current = Self.hash(ddl)
            if let stored {
                guard stored == current else {
                    throw SyncServerError(
                        status: 500,
                        message:
                            "the database holds another ModelSync schema (its hash is \(stored), this spec's is "
                            + "\(current)); schema migrations are not supported yet: use a new database or drop its tables"
                    )
                }
                return
            }
            for statement in self.sql.schema {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
            }
            try await connection.query(
                "INSERT INTO modelsync_schema (ddl_hash) VALUES (\(current))", logger: self.logger)
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

    /// `POST {path}`.
    public func create(_ model: ServerModel, as identity: SyncIdentity, body: Data, idempotencyKey: String?)
        async throws -> Answer
    {
        let fields = try JSONShape.object(from: body)
        try validate(fields, for: model, creating: true)
        let text = String(decoding: body, as: UTF8.self)
        // Four round trips with a key: BEGIN, claim the key (and name the actor), insert the record and
        // store the answer in one statement, COMMIT.
        return try await transaction { connection in
            try await self.create(model, as: identity, text: text, idempotencyKey: idempotencyKey, on: connection)
        }
    }

    /// A create on `connection`, in its transaction: the body is validated.
    func create(
        _ model: ServerModel, as identity: SyncIdentity, text: String, idempotencyKey: String?,
        on connection: PostgresConnection
    ) async throws -> Answer {
        let statements = sql.models[model.table]!
        do {
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
    }

    /// `PUT {path}/{id}`: replaces a record; `404` for an unknown ID (never a re-create), `409` with
    /// the server's copy when `ifMatch` names another version.
    public func update(
        _ model: ServerModel, as identity: SyncIdentity, id rawID: String, body: Data, ifMatch: String?,
        idempotencyKey: String?
    ) async throws -> Answer {
        let id = try recordID(rawID, of: model)
        let fields = try JSONShape.object(from: body)
        try validate(fields, for: model, creating: false)
        let text = String(decoding: body, as: UTF8.self)
        return try await transaction { connection in
            try await self.update(
                model, as: identity, id: id, rawID: rawID, text: text, ifMatch: ifMatch,
                idempotencyKey: idempotencyKey, on: connection)
        }
    }

    /// An update on `connection`, in its transaction: the body is validated, `id` normalised.
    func update(
        _ model: ServerModel, as identity: SyncIdentity, id: String, rawID: String, text: String, ifMatch: String?,
        idempotencyKey: String?, on connection: PostgresConnection
    ) async throws -> Answer {
        let statements = sql.models[model.table]!
        do {
            try await self.setActor(identity, on: connection)
            let scope = "update:" + model.table
            if let idempotencyKey,
                let replay = try await self.claim(
                    idempotencyKey, scope: scope, request: id + "\u{0}" + text, identity: identity, on: connection)
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
                    current: current.record)
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
        do {
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
    }

    /// `GET {path}/{id}`.
    public func get(_ model: ServerModel, as identity: SyncIdentity, id rawID: String) async throws -> Answer {
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
        return Answer(status: 200, body: record)
    }

    /// `GET {path}?cursor=…&limit=…`: changes after the cursor, oldest first, each change of a
    /// transaction that has finished (see Docs/Server.md for why this never skips one); without a
    /// cursor, live records only.
    public func list(_ model: ServerModel, as identity: SyncIdentity, cursor: String?, limit: Int?) async throws
        -> Answer
    {
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
        if let last = rows.last { position = (last.0, last.1) }
        let data = rows.map(\.2).joined(separator: ",")
        return Answer(
            status: 200,
            body: #"{"data":["# + data + #"],"next_cursor":"# + jsonString("\(position.xid)-\(position.seq)") + "}")
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
        let hash = Self.hash(request) + String(request.utf8.count, radix: 16)
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
            guard storedHash == hash else {
                throw SyncServerError(
                    status: 422,
                    message:
                        "the Idempotency-Key '\(key)' was already used for another request; use a new key for a new change"
                )
            }
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
