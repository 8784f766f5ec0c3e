import Foundation

/// The PostgreSQL statements that turn a database built with one ``ServerSchema`` (the one stored in
/// `modelsync_schema`) into the current one, computed from what the current spec says about its
/// earlier version (`renamedFrom:`, `removed:`, `default:`, `mapping:`). The generated server and
/// `modelsync-server` both run it (``ServerSQL`` builds the SQL of a fresh database; this builds the
/// SQL of an upgrade), in one transaction: PostgreSQL's DDL is transactional, so a migration that
/// stops half way leaves the earlier schema and its rows as they were.
///
/// Rows keep their `_version`, `_xid` and `_seq` (the change triggers are off while rows are
/// rewritten): clients migrate their own copies the same way, and a cursor given before the
/// upgrade stays valid. Tombstones, audit history and stored idempotent answers follow renamed
/// models and fields.
public struct ServerMigration: Sendable, Hashable {
    /// A query run before any statement: when it returns a row (one text column, the offending
    /// value), the migration stops with `message` and `value`, and nothing is changed.
    public struct Check: Sendable, Hashable {
        /// The query, on the earlier schema.
        public var sql: String
        /// What is wrong and what to do; the value found follows it.
        public var message: String
    }

    /// The checks, run first.
    public var checks: [Check] = []
    /// The statements, in order, in the same transaction as the checks.
    public var statements: [String] = []

    /// Whether the two schemas have the same shape (nothing to run).
    public var isEmpty: Bool { statements.isEmpty }

    /// The migration from `stored` to `current`.
    ///
    /// - Throws: ``ServerMigrationError`` when `current` does not explain a change (a table or
    ///   column that disappeared without `renamedFrom:` or `removed:`, a new required column without
    ///   `default:`, a type change without a transform); the message names the stored schema.
    public init(from stored: ServerSchema, to current: ServerSchema) throws {
        let planner = Planner(stored: stored, current: current)
        self = try planner.plan()
    }

    init() {}
}

/// A change the current spec does not explain: the database was left as it was.
public struct ServerMigrationError: Error, Sendable, CustomStringConvertible {
    /// What changed, what the stored schema is, and what to write in the spec.
    public var message: String
    public var description: String { message }

    /// An error with `message`.
    public init(message: String) {
        self.message = message
    }
}

private struct Planner {
    let stored: ServerSchema
    let current: ServerSchema
    let storedByTable: [String: ServerModel]

    init(stored: ServerSchema, current: ServerSchema) {
        self.stored = stored
        self.current = current
        storedByTable = Dictionary(stored.models.map { ($0.table, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// How one current column gets its values.
    struct ColumnChange {
        var column: ServerColumn
        var from: ServerColumn?
    }

    struct TableChange {
        var model: ServerModel
        var source: ServerModel
        var columns: [ColumnChange]
        var removed: [ServerColumn]
    }

    func unexplained(_ reason: String) -> ServerMigrationError {
        let summary = stored.models.map { model in
            "\(model.table)(id"
                + model.columns.map { ", \($0.name): \($0.type.rawValue)\($0.isOptional ? "?" : "")" }
                .joined() + ")"
        }
        return ServerMigrationError(
            message: reason + ". The database was built with schema version \(stored.schemaVersion), stored in its "
                + "table 'modelsync_schema': \(summary.joined(separator: "; ")). Nothing was changed")
    }

    func plan() throws -> ServerMigration {
        var changes: [TableChange] = []
        var newModels: [ServerModel] = []
        var consumed: Set<String> = []
        for model in current.models {
            var source: ServerModel?
            if let previous = model.previousTable, let old = storedByTable[previous] {
                if storedByTable[model.table] != nil {
                    throw unexplained(
                        "model '\(model.name)' is renamedFrom table '\(previous)', but the database has both "
                            + "'\(previous)' and '\(model.table)'; remove 'renamedFrom:' or list the old model under "
                            + "'removed:'")
                }
                source = old
            } else {
                source = storedByTable[model.table]
            }
            guard let source else {
                newModels.append(model)
                continue
            }
            consumed.insert(source.table)
            if let change = try tableChange(model, source: source) { changes.append(change) }
        }
        var removedTables: [String] = []
        for model in stored.models where !consumed.contains(model.table) {
            guard current.removedTables.contains(model.table) else {
                throw unexplained(
                    "the database has model '\(model.name)' (table '\(model.table)'), which this version of the spec "
                        + "does not declare; if it was renamed, write 'renamedFrom: \(model.name)' on the new model; "
                        + "if it was removed, list it under the top-level 'removed: [\(model.name)]'")
            }
            removedTables.append(model.table)
        }
        var migration = ServerMigration()
        for change in changes { migration.checks += enumChecks(change) }
        // Foreign keys of changed models go first (their names follow the table, their columns may
        // change), and come back once every table has its new shape.
        for change in changes {
            for foreignKey in change.source.foreignKeys {
                migration.statements.append(
                    "ALTER TABLE \(quoted(change.source.table)) DROP CONSTRAINT IF EXISTS "
                        + quoted(ServerSQL.constraintName(change.source.table, foreignKey.column, "fkey")))
                migration.statements.append(
                    "DROP INDEX IF EXISTS "
                        + quoted(ServerSQL.constraintName(change.source.table, foreignKey.column, "idx")))
            }
        }
        for change in changes { migration.statements += statements(change) }
        for table in removedTables {
            migration.statements += [
                "DROP TABLE \(quoted(table)) CASCADE",
                "DELETE FROM modelsync_tombstones WHERE \"table_name\" = \(literal(table))",
                "DELETE FROM modelsync_idempotency WHERE \"scope\" IN (\(literal("create:" + table)), "
                    + "\(literal("update:" + table)))",
            ]
        }
        for model in newModels { migration.statements += ServerSQL.tableStatements(model, in: current) }
        for model in newModels + changes.map(\.model) {
            migration.statements += model.foreignKeys.flatMap { ServerSQL.foreignKeyStatements(model, $0) }
        }
        return migration
    }

    // MARK: One table

    func tableChange(_ model: ServerModel, source: ServerModel) throws -> TableChange? {
        var storedByName: [String: ServerColumn] = [:]
        for column in source.columns { storedByName[column.name] = column }
        var used: Set<String> = []
        var columns: [ColumnChange] = []
        let foreignKeyColumns = Set(model.foreignKeys.map(\.column))
        // A new required column without a value is reported after a column that disappeared (most
        // likely its earlier name).
        var missingValue: ServerMigrationError?
        for column in model.columns {
            let from =
                column.renamedFrom.flatMap { storedByName[$0] }
                ?? storedByName[column.name].flatMap { used.contains($0.name) ? nil : $0 }
            guard let from else {
                if !column.isOptional, column.defaultValue == nil, missingValue == nil {
                    missingValue = unexplained(
                        "field '\(column.name)' of model '\(model.name)' is new and required, and the rows of the "
                            + "earlier version have no value for it; give it a 'default:', make it optional, or if it "
                            + "was renamed write 'renamedFrom: <old name>'")
                }
                columns.append(ColumnChange(column: column, from: nil))
                continue
            }
            used.insert(from.name)
            if from.isOptional, !column.isOptional, column.defaultValue == nil {
                throw unexplained(
                    "field '\(column.name)' of model '\(model.name)' was optional and is now required; give it a "
                        + "'default:' for the records that have no value")
            }
            let fromIsKey = source.foreignKey(column: from.name) != nil
            let isKey = foreignKeyColumns.contains(column.name)
            if from.type != column.type || fromIsKey != isKey {
                guard from.type == .integer, column.type == .double, !fromIsKey, !isKey else {
                    throw unexplained(
                        "field '\(column.name)' of model '\(model.name)' changed type from \(from.type.rawValue) to "
                            + "\(column.type.rawValue), which has no automatic transform (supported: Int to Int64, "
                            + "Int to Double, String to an enum with 'mapping:', T to T?, T? to T with a 'default:')")
                }
            }
            columns.append(ColumnChange(column: column, from: from))
        }
        var removed: [ServerColumn] = []
        for column in source.columns where !used.contains(column.name) {
            guard model.removedColumns.contains(column.name) else {
                throw unexplained(
                    "model '\(model.name)' had field '\(column.name)' (\(column.type.rawValue)), which this version of "
                        + "the spec does not declare; if it was renamed, write 'renamedFrom: \(column.name)' on the new "
                        + "field; if it was removed, list it in the model's 'removed: [\(column.name)]'")
            }
            removed.append(column)
        }
        if let missingValue { throw missingValue }
        if model.idType != source.idType {
            throw unexplained(
                "model '\(model.name)' changed its remote idType from \(source.idType.rawValue) to "
                    + "\(model.idType.rawValue); the IDs clients hold cannot change type")
        }
        var sourceShape = source
        sourceShape.name = model.name
        sourceShape.path = model.path
        var modelShape = model.withoutHistory
        modelShape.previousTable = nil
        if sourceShape == modelShape { return nil }
        return TableChange(model: model, source: source, columns: columns, removed: removed)
    }

    /// Refuses values of a column that becomes an enumeration (or changes its cases) that are no case
    /// after the mapping, unless a default replaces them.
    func enumChecks(_ change: TableChange) -> [ServerMigration.Check] {
        change.columns.compactMap { item in
            guard let from = item.from, !item.column.allowedValues.isEmpty, item.column.defaultValue == nil,
                from.allowedValues != item.column.allowedValues || !item.column.valueMapping.isEmpty
            else { return nil }
            let mapped = mappedValue(quoted(from.name), item.column)
            let cases = item.column.allowedValues.map(literal).joined(separator: ", ")
            return ServerMigration.Check(
                sql: "SELECT \(quoted(from.name)) FROM \(quoted(change.source.table)) WHERE \(mapped) IS NOT NULL "
                    + "AND \(mapped) NOT IN (\(cases)) LIMIT 1",
                message: "field '\(item.column.name)' of model '\(change.model.name)' is now an enum "
                    + "(\(item.column.allowedValues.joined(separator: ", "))), and a record holds a value that is "
                    + "not one of its cases; add it to the field's 'mapping:' or give the field a 'default:'. "
                    + "Nothing was changed. The value")
        }
    }

    func statements(_ change: TableChange) -> [String] {
        let model = change.model
        let source = change.source
        let table = quoted(model.table)
        var statements: [String] = []
        if source.table != model.table {
            statements += [
                "ALTER TABLE \(quoted(source.table)) RENAME TO \(table)",
                "ALTER INDEX \(quoted(source.table + "_changes")) RENAME TO \(quoted(model.table + "_changes"))",
            ]
        }
        // Rows rewritten here keep their version and change stamp, and leave no history.
        statements.append("ALTER TABLE \(table) DISABLE TRIGGER USER")
        for column in source.columns {
            if ServerSQL.checkConstraint(column, of: source) != nil {
                statements.append(
                    "ALTER TABLE \(table) DROP CONSTRAINT IF EXISTS "
                        + quoted(ServerSQL.constraintName(source.table, column.name, "check")))
            }
            if column.isUnique {
                statements.append(
                    "ALTER TABLE \(table) DROP CONSTRAINT IF EXISTS "
                        + quoted(ServerSQL.constraintName(source.table, column.name, "key")))
            }
        }
        for column in change.removed {
            statements.append("ALTER TABLE \(table) DROP COLUMN \(quoted(column.name))")
        }
        for item in change.columns {
            let column = item.column
            let name = quoted(column.name)
            guard let from = item.from else {
                let type = ServerSQL.sqlType(column, in: model, schema: current)
                if !column.isOptional, let value = column.defaultValue {
                    statements += [
                        "ALTER TABLE \(table) ADD COLUMN \(name) \(type) NOT NULL DEFAULT "
                            + Self.sqlValue(value, column, type: type),
                        "ALTER TABLE \(table) ALTER COLUMN \(name) DROP DEFAULT",
                    ]
                } else {
                    statements.append("ALTER TABLE \(table) ADD COLUMN \(name) \(type)")
                }
                continue
            }
            if from.name != column.name {
                statements.append("ALTER TABLE \(table) RENAME COLUMN \(quoted(from.name)) TO \(name)")
            }
            if from.type == .integer, column.type == .double {
                statements.append("ALTER TABLE \(table) ALTER COLUMN \(name) TYPE float8")
            }
            if !column.allowedValues.isEmpty,
                from.allowedValues != column.allowedValues || !column.valueMapping.isEmpty
            {
                if !column.valueMapping.isEmpty {
                    statements.append(
                        "UPDATE \(table) SET \(name) = \(mappedValue(name, column)) "
                            + "WHERE \(name) IN (\(column.valueMapping.keys.sorted().map(literal).joined(separator: ", ")))"
                    )
                }
                if let value = column.defaultValue {
                    statements.append(
                        "UPDATE \(table) SET \(name) = \(Self.sqlValue(value, column, type: "text")) WHERE \(name) "
                            + "NOT IN (\(column.allowedValues.map(literal).joined(separator: ", ")))")
                }
            }
            if from.isOptional, !column.isOptional {
                let type = ServerSQL.sqlType(column, in: model, schema: current)
                if let value = column.defaultValue {
                    statements.append(
                        "UPDATE \(table) SET \(name) = \(Self.sqlValue(value, column, type: type)) WHERE \(name) IS NULL"
                    )
                }
                statements.append("ALTER TABLE \(table) ALTER COLUMN \(name) SET NOT NULL")
            } else if !from.isOptional, column.isOptional {
                statements.append("ALTER TABLE \(table) ALTER COLUMN \(name) DROP NOT NULL")
            }
        }
        for column in model.columns {
            if let check = ServerSQL.checkConstraint(column, of: model) {
                statements.append("ALTER TABLE \(table) ADD CONSTRAINT \(quoted(check.name)) \(check.clause)")
            }
            if column.isUnique {
                let unique = ServerSQL.uniqueConstraint(column, of: model)
                statements.append("ALTER TABLE \(table) ADD CONSTRAINT \(quoted(unique.name)) \(unique.clause)")
            }
        }
        statements += idGenerationStatements(model, from: source)
        statements.append("ALTER TABLE \(table) ENABLE TRIGGER USER")
        statements += bookkeeping(change)
        return statements
    }

    /// A model switching between client and server IDs: the rows keep theirs; new server IDs come
    /// after every ID used so far (deleted ones included).
    func idGenerationStatements(_ model: ServerModel, from source: ServerModel) -> [String] {
        guard model.idGeneration != source.idGeneration else { return [] }
        let table = quoted(model.table)
        guard model.idGeneration == .server else {
            return ["ALTER TABLE \(table) ALTER COLUMN \"id\" DROP DEFAULT"]
        }
        guard model.idType == .int else {
            return ["ALTER TABLE \(table) ALTER COLUMN \"id\" SET DEFAULT gen_random_uuid()::text"]
        }
        let sequence = quoted(model.table + "_id_seq")
        return [
            "CREATE SEQUENCE IF NOT EXISTS \(sequence) OWNED BY \(table).\"id\"",
            "SELECT setval(\(literal(sequence)), GREATEST((SELECT max(\"id\") FROM \(table)), "
                + "(SELECT max(\"record_id\"::bigint) FROM modelsync_tombstones WHERE \"table_name\" = "
                + "\(literal(model.table))), 0) + 1, false)",
            "ALTER TABLE \(table) ALTER COLUMN \"id\" SET DEFAULT nextval(\(literal(sequence)))",
        ]
    }

    /// Tombstones, history and stored idempotent answers follow the model: renamed table, renamed
    /// and removed keys; stored answers take the new shape (defaults filled, values mapped). A stored
    /// answer is replayed for its key whatever the retried request's shape (`:migrated`).
    func bookkeeping(_ change: TableChange) -> [String] {
        let model = change.model
        let old = change.source.table
        var statements: [String] = []
        if old != model.table {
            statements += [
                "UPDATE modelsync_tombstones SET \"table_name\" = \(literal(model.table)) WHERE \"table_name\" = "
                    + literal(old),
                "UPDATE modelsync_idempotency SET \"scope\" = split_part(\"scope\", ':', 1) || ':' || "
                    + "\(literal(model.table)) WHERE \"scope\" IN (\(literal("create:" + old)), "
                    + "\(literal("update:" + old)))",
            ]
        }
        // The history in one pass: the model's new name, and the new keys of its records.
        var history: [String] = []
        if old != model.table { history.append("\"model\" = \(literal(model.table))") }
        let renamedOrRemoved =
            change.columns.contains { $0.from != nil && $0.from!.name != $0.column.name } || !change.removed.isEmpty
        if renamedOrRemoved {
            for key in ["before", "after"] {
                history.append("\(quoted(key)) = \(recordJSON(quoted(key), change, reshape: false))")
            }
        }
        if !history.isEmpty {
            statements.append(
                "UPDATE modelsync_history SET \(history.joined(separator: ", ")) WHERE \"model\" = \(literal(old))")
        }
        statements.append(
            "UPDATE modelsync_idempotency SET \"response\" = (\(recordJSON("\"response\"::jsonb", change, reshape: true)))"
                + "::text, \"request_hash\" = \"request_hash\" || ':migrated' "
                + "WHERE \"scope\" IN (\(literal("create:" + model.table)), \(literal("update:" + model.table))) "
                + "AND \"response\" IS NOT NULL AND \"request_hash\" NOT LIKE '%:migrated'")
        return statements
    }

    /// A record (jsonb) of the earlier shape in the current one: keys renamed, removed keys dropped;
    /// with `reshape`, new keys added (default or null) and enumeration values mapped.
    func recordJSON(_ value: String, _ change: TableChange, reshape: Bool) -> String {
        var dropped = change.removed.map(\.name)
        var pairs: [String] = []
        for item in change.columns {
            let column = item.column
            guard let from = item.from else {
                if reshape {
                    pairs += [literal(column.name), column.defaultValue.map { "\(literal($0))::jsonb" } ?? "NULL"]
                }
                continue
            }
            if from.name != column.name {
                dropped.append(from.name)
            } else if !reshape || column.valueMapping.isEmpty {
                continue
            }
            var element = "\(value) -> \(literal(from.name))"
            if reshape, !column.valueMapping.isEmpty {
                let text = "(\(value) ->> \(literal(from.name)))"
                element = "to_jsonb(\(mappedValue(text, column)))"
            }
            pairs += [literal(column.name), element]
        }
        var result = value
        for name in dropped { result = "(\(result) - \(literal(name)))" }
        // jsonb_build_object takes at most 100 arguments.
        var index = 0
        while index < pairs.count {
            result += " || jsonb_build_object(\(pairs[index..<min(index + 80, pairs.count)].joined(separator: ", ")))"
            index += 80
        }
        return "(\(result))"
    }

    /// `value` (SQL text) through the column's `mapping:`.
    func mappedValue(_ value: String, _ column: ServerColumn) -> String {
        guard !column.valueMapping.isEmpty else { return value }
        let cases = column.valueMapping.sorted { $0.key < $1.key }
            .map { "WHEN \(literal($0.key)) THEN \(literal($0.value))" }.joined(separator: " ")
        return "(CASE \(value) \(cases) ELSE \(value) END)"
    }

    /// A default (JSON text) as an SQL value of the column's type.
    static func sqlValue(_ json: String, _ column: ServerColumn, type: String) -> String {
        if column.type == .json { return "\(literal(json))::jsonb" }
        if column.type == .data { return "decode(\(literal(json))::jsonb #>> '{}', 'base64')" }
        return "(\(literal(json))::jsonb #>> '{}')::\(type)"
    }
}

extension ServerModel {
    /// The model without what the spec says about its earlier version.
    var withoutHistory: ServerModel {
        ServerSchema(models: [self]).shape.models[0]
    }
}

/// The SQL that translates between the earlier wire shape of a model (the one `renamedFrom:`,
/// `removed:`, `default:` and `mapping:` describe) and the current one, for older clients inside the
/// grace period (`options.oldestClientSchemaVersion`). JSON goes through `jsonb`, so numbers keep
/// every digit.
public enum EarlierShapeSQL {
    /// `$1` a request body of the earlier shape (JSON text) -> the body in the current shape: keys
    /// renamed, removed keys dropped, values mapped; with `fillingDefaults`, missing or null values of
    /// required fields with a `default:` take it (a create; an update keeps the stored values of
    /// the keys the earlier shape has not: `$2` the stored record, JSON text, or null).
    public static func request(_ model: ServerModel, fillingDefaults: Bool) -> String {
        var renamed = "b0"
        for name in model.removedColumns { renamed = "(\(renamed) - \(literal(name)))" }
        for column in model.columns {
            guard let old = column.renamedFrom else { continue }
            renamed =
                "(\(renamed) - \(literal(old))) || (CASE WHEN b0 ? \(literal(old)) THEN jsonb_build_object("
                + "\(literal(column.name)), b0 -> \(literal(old))) ELSE '{}'::jsonb END)"
        }
        var mapped = "b1"
        for column in model.columns where !column.valueMapping.isEmpty {
            let text = "(b1 ->> \(literal(column.name)))"
            let keys = column.valueMapping.keys.sorted().map(literal).joined(separator: ", ")
            let cases = column.valueMapping.sorted { $0.key < $1.key }
                .map { "WHEN \(literal($0.key)) THEN \(literal($0.value))" }.joined(separator: " ")
            mapped +=
                " || (CASE WHEN \(text) IN (\(keys)) THEN jsonb_build_object(\(literal(column.name)), "
                + "CASE \(text) \(cases) END) ELSE '{}'::jsonb END)"
        }
        var filled = "b2"
        if fillingDefaults {
            for column in model.columns where !column.isOptional {
                guard let value = column.defaultValue else { continue }
                filled +=
                    " || (CASE WHEN coalesce(b2 -> \(literal(column.name)), 'null'::jsonb) = 'null'::jsonb THEN "
                    + "jsonb_build_object(\(literal(column.name)), \(literal(value))::jsonb) ELSE '{}'::jsonb END)"
            }
        } else {
            filled = "coalesce($2::jsonb - 'id' - '_version' - '_idempotency_key', '{}'::jsonb) || b2"
        }
        return "SELECT (\(filled))::text FROM (SELECT $1::jsonb AS b0) AS s0, LATERAL (SELECT \(renamed) AS b1) AS s1, "
            + "LATERAL (SELECT \(mapped) AS b2) AS s2"
    }

    /// `$1` a JSON array of records and tombstones in the current shape -> the array in the earlier
    /// shape: renamed keys take their earlier names (keys the earlier version did not have stay; a
    /// client ignores keys it does not know).
    public static func answers(_ model: ServerModel) -> String {
        var record = "r"
        for column in model.columns {
            guard let old = column.renamedFrom else { continue }
            record =
                "(\(record) - \(literal(column.name))) || (CASE WHEN r ? \(literal(column.name)) THEN "
                + "jsonb_build_object(\(literal(old)), r -> \(literal(column.name))) ELSE '{}'::jsonb END)"
        }
        return "SELECT coalesce(jsonb_agg(\(record) ORDER BY n), '[]'::jsonb)::text "
            + "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(r, n)"
    }
}
