import Foundation
import GRDB

/// The schema a store was built with, kept in the database (`modelsync_schema`, one row per model
/// table), so that the next version of the app computes what changed when it opens the store.
struct StoredModelSchema: Codable, Hashable, Sendable {
    struct Field: Codable, Hashable, Sendable {
        var name: String
        var type: ColumnType
        var isOptional: Bool
        var isUnique: Bool
        var enumCases: [String]?
    }

    struct ForeignKey: Codable, Hashable, Sendable {
        var column: String
        var table: String
        var isOptional: Bool
    }

    var name: String
    var tableName: String
    var idGeneration: IDGeneration
    var fields: [Field]
    var foreignKeys: [ForeignKey]

    init(_ schema: ModelSchema) {
        name = schema.name
        tableName = schema.tableName
        idGeneration = schema.idGeneration
        fields = schema.fields.map {
            Field(
                name: $0.name, type: $0.type, isOptional: $0.isOptional, isUnique: $0.isUnique, enumCases: $0.enumCases)
        }
        foreignKeys = schema.foreignKeys.map {
            ForeignKey(column: $0.column, table: $0.table, isOptional: $0.isOptional)
        }
    }

    /// One line for messages: `message(id, body: text, role: text?)`.
    var summary: String {
        "\(tableName)(id"
            + fields.map { ", \($0.name): \($0.type.rawValue)\($0.isOptional ? "?" : "")" }.joined() + ")"
    }
}

/// Migrates a store built with an earlier version of the spec to the current one when it opens: the
/// change is computed from the schema stored in the database and what the current spec says about
/// its history (`renamedFrom:`, `removed:`, `default:`, `mapping:`), never declared version by version.
///
/// Everything runs in the store's opening transaction: model tables (renamed, rebuilt with their
/// new columns, constraints and indexes, rows copied and transformed), every queued outbox payload
/// rewritten to the new shape, and the store's own tables (outbox, ID map, record versions, pull
/// state) following renamed and removed models. A change the spec does not explain throws
/// ``ModelSyncError/incompatibleSchema(table:reason:)`` before anything is changed.
enum SchemaMigration {
    static let schemaTable = "modelsync_schema"
    /// Where a rebuilt table is filled before it takes its model's name.
    static let rebuildTable = "modelsync_migrating"

    /// The internal migration that creates ``schemaTable``.
    static let createSchemaTable: (identifier: String, migrate: @Sendable (Database) throws -> Void) = (
        "modelsync-schema-v1",
        { db in
            try db.execute(
                sql: """
                    CREATE TABLE \(schemaTable) (
                        tableName TEXT PRIMARY KEY NOT NULL,
                        schema TEXT NOT NULL
                    ) WITHOUT ROWID
                    """)
        }
    )

    /// Called inside the migration transaction, after the plan is computed and before the first
    /// change; tests use it to stop a process in the middle of a migration.
    static let willMigrate = Locked<(@Sendable (_ tables: [String]) -> Void)?>(nil)

    /// The stored schema, by table; empty for a database built before schemas were stored.
    static func stored(_ db: Database) throws -> [String: StoredModelSchema] {
        guard try db.tableExists(schemaTable) else { return [:] }
        var result: [String: StoredModelSchema] = [:]
        let decoder = JSONDecoder()
        for row in try Row.fetchAll(db, sql: "SELECT tableName, schema FROM \(schemaTable)") {
            let text: String = row["schema"]
            result[row["tableName"]] = try decoder.decode(StoredModelSchema.self, from: Data(text.utf8))
        }
        return result
    }

    /// Records the current schema as the one the store is built with.
    static func record(_ db: Database, models: [any SyncModel.Type]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try db.execute(sql: "DELETE FROM \(schemaTable)")
        for model in models {
            let schema = StoredModelSchema(model.schema)
            try db.execute(
                sql: "INSERT INTO \(schemaTable) (tableName, schema) VALUES (?, ?)",
                arguments: [schema.tableName, String(decoding: try encoder.encode(schema), as: UTF8.self)])
        }
    }

    /// `true` when the current models differ from the stored schema in a way opening must migrate
    /// (read-only stores cannot).
    static func needsMigration(_ db: Database, models: [any SyncModel.Type], removedModels: [String]) throws -> Bool {
        let stored = try stored(db)
        guard !stored.isEmpty else { return false }
        return try !MigrationPlan(stored: stored, models: models, removedModels: removedModels).isEmpty
    }

    /// Migrates the model tables from the stored schema to `models`, then records `models`.
    /// Runs in the caller's transaction, with foreign keys off (see `SyncStore.init`).
    static func migrate(_ db: Database, models: [any SyncModel.Type], removedModels: [String]) throws {
        let stored = try stored(db)
        if !stored.isEmpty {
            let plan = try MigrationPlan(stored: stored, models: models, removedModels: removedModels)
            if !plan.isEmpty {
                if let hook = willMigrate.withLock({ $0 }) { hook(plan.changedTables) }
                try plan.apply(db)
            }
        }
        try record(db, models: models)
    }
}

/// Hooks for tests of schema migration (a process stopped in the middle of one).
@_spi(Testing) public enum SchemaMigrationHooks {
    /// Sets what runs inside the migration transaction of every store that opens in this process,
    /// after the migration is planned and before the first change (given the tables it changes);
    /// `nil` removes it.
    public static func setWillMigrate(_ hook: (@Sendable (_ tables: [String]) -> Void)?) {
        SchemaMigration.willMigrate.withLock { $0 = hook }
    }
}

/// What opening must do to turn the stored schema into the current one.
struct MigrationPlan {
    /// How one current column gets its values from the stored table.
    struct ColumnSource {
        var field: FieldSchema
        /// The stored column it comes from, or `nil` for a new column.
        var from: StoredModelSchema.Field?
    }

    struct TableChange {
        var schema: ModelSchema
        var stored: StoredModelSchema
        var columns: [ColumnSource]
        /// The table must be rebuilt (renamed, columns renamed, removed, retyped, constraints changed);
        /// otherwise only optional columns are appended, which `SchemaBuilder` does in place.
        var rebuild: Bool
    }

    var tables: [TableChange] = []
    var removedTables: [String] = []

    var isEmpty: Bool { tables.isEmpty && removedTables.isEmpty }
    var changedTables: [String] { tables.map(\.schema.tableName) + removedTables }

    init(stored: [String: StoredModelSchema], models: [any SyncModel.Type], removedModels: [String]) throws {
        // The generated schemas carry their spec's removed models; the app may name more.
        let removedModels = Set(removedModels).union(models.flatMap { $0.schema.removedModels })
        var consumed: Set<String> = []
        let storedList = stored.values.sorted { $0.tableName < $1.tableName }.map(\.summary).joined(separator: "; ")
        func unexplained(_ table: String, _ reason: String) -> ModelSyncError {
            .incompatibleSchema(
                table: table,
                reason: reason + ". The database was built with the schema stored in its table "
                    + "'\(SchemaMigration.schemaTable)': \(storedList). Nothing was changed")
        }
        for model in models {
            let schema = model.schema
            var source: StoredModelSchema?
            if let previous = schema.renamedFrom, let old = stored[previous] {
                if stored[schema.tableName] != nil {
                    throw unexplained(
                        schema.tableName,
                        "model '\(schema.name)' is renamedFrom table '\(previous)', but the database has both "
                            + "'\(previous)' and '\(schema.tableName)'; remove 'renamedFrom:' or list the old model "
                            + "under 'removed:'")
                }
                source = old
            } else {
                source = stored[schema.tableName]
            }
            guard let source else { continue }  // a new model: its table is created
            consumed.insert(source.tableName)
            if let change = try Self.tableChange(schema: schema, stored: source, unexplained: unexplained) {
                tables.append(change)
            }
        }
        for table in stored.keys.sorted() where !consumed.contains(table) {
            guard removedModels.contains(table) else {
                let name = stored[table]!.name
                throw unexplained(
                    table,
                    "the database has model '\(name)' (table '\(table)'), which this version of the spec does not "
                        + "declare; if it was renamed, write 'renamedFrom: \(name)' on the new model; if it was "
                        + "removed, list it under the top-level 'removed: [\(name)]' and generate the models again "
                        + "(hand-written schemas: pass its table in `SyncStore(_:models:removedModels:)`)")
            }
            removedTables.append(table)
        }
    }

    private static func tableChange(
        schema: ModelSchema, stored: StoredModelSchema, unexplained: (String, String) -> ModelSyncError
    ) throws -> TableChange? {
        let table = schema.tableName
        var storedByName: [String: StoredModelSchema.Field] = [:]
        for field in stored.fields { storedByName[field.name] = field }
        var used: Set<String> = []
        var columns: [ColumnSource] = []
        var rebuild = stored.tableName != table
        let foreignKeyColumns = Set(schema.foreignKeys.map(\.column))
        for field in schema.fields {
            let from =
                field.renamedFrom.flatMap { storedByName[$0] }
                ?? (storedByName[field.name].flatMap { used.contains($0.name) ? nil : $0 })
            guard let from else {
                if !field.isOptional, field.defaultValue == nil {
                    throw unexplained(
                        table,
                        "field '\(field.name)' of model '\(schema.name)' is new and required, and the rows and "
                            + "queued changes of the earlier version have no value for it; give it a 'default:', "
                            + "make it optional, or if it was renamed write 'renamedFrom: <old name>'")
                }
                // A new required column with its default is added in place (ALTER TABLE ADD COLUMN).
                if field.isUnique || foreignKeyColumns.contains(field.name) { rebuild = true }
                columns.append(ColumnSource(field: field, from: nil))
                continue
            }
            used.insert(from.name)
            // A renamed column is renamed in place (ALTER TABLE RENAME COLUMN), unless it is a foreign key
            // (its index is named after it).
            if (from.name != field.name && foreignKeyColumns.contains(field.name)) || from.isUnique != field.isUnique
                || (from.isOptional && !field.isOptional)
            {
                rebuild = true
            }
            if from.isOptional, !field.isOptional, field.defaultValue == nil {
                throw unexplained(
                    table,
                    "field '\(field.name)' of model '\(schema.name)' was optional and is now required; give it a "
                        + "'default:' for the records that have no value")
            }
            if !field.isOptional, from.isOptional != field.isOptional { rebuild = true }
            if field.isOptional, !from.isOptional { rebuild = true }
            if from.type != field.type {
                guard from.type == .integer && field.type == .double else {
                    throw unexplained(
                        table,
                        "field '\(field.name)' of model '\(schema.name)' changed type from \(from.type.rawValue) to "
                            + "\(field.type.rawValue), which has no automatic transform (supported: Int to Int64, "
                            + "Int to Double, String to an enum with 'mapping:', T to T?, T? to T with a 'default:')")
                }
                rebuild = true
            }
            if field.enumCases != nil, field.enumCases != from.enumCases || !field.valueMapping.isEmpty {
                rebuild = true
            }
            columns.append(ColumnSource(field: field, from: from))
        }
        for field in stored.fields where !used.contains(field.name) {
            let removed =
                schema.removedFields.contains(field.name)
                || (field.name.hasSuffix("Id") && schema.removedFields.contains(String(field.name.dropLast(2))))
            guard removed else {
                throw unexplained(
                    table,
                    "model '\(schema.name)' had field '\(field.name)' (\(field.type.rawValue)), which this version "
                        + "of the spec does not declare; if it was renamed, write 'renamedFrom: \(field.name)' on "
                        + "the new field; if it was removed, list it in the model's 'removed: [\(field.name)]'")
            }
            rebuild = true
        }
        let storedKeys = Set(stored.foreignKeys.map { "\($0.column)>\($0.table)>\($0.isOptional)" })
        let currentKeys = Set(schema.foreignKeys.map { "\($0.column)>\($0.table)>\($0.isOptional)" })
        if storedKeys != currentKeys { rebuild = true }
        let added = columns.contains { $0.from == nil }
        guard rebuild || added || stored.idGeneration != schema.idGeneration else { return nil }
        return TableChange(schema: schema, stored: stored, columns: columns, rebuild: rebuild)
    }

    // MARK: Applying

    func apply(_ db: Database) throws {
        let outbox = SchemaBuilder.outboxTable
        let bookkeeping = [
            outbox, SchemaBuilder.idMapTable, RecordVersions.table, PulledOrphans.table, PullState.table,
            PullState.unlistedTable,
        ]
        for table in removedTables {
            try db.execute(sql: "DROP TABLE IF EXISTS \(table.quotedDatabaseIdentifier)")
            for ownTable in bookkeeping {
                try db.execute(sql: "DELETE FROM \(ownTable) WHERE tableName = ?", arguments: [table])
            }
        }
        for change in tables {
            let table = change.schema.tableName
            if change.stored.tableName != table {
                for ownTable in bookkeeping where ownTable != PullState.table && ownTable != PullState.unlistedTable {
                    try db.execute(
                        sql: "UPDATE \(ownTable) SET tableName = ? WHERE tableName = ?",
                        arguments: [table, change.stored.tableName])
                }
                // A renamed model is listed at another path: its next pull starts from the beginning
                // (and a full listing in progress starts over).
                for pullTable in [PullState.table, PullState.unlistedTable] {
                    try db.execute(
                        sql: "DELETE FROM \(pullTable) WHERE tableName = ?", arguments: [change.stored.tableName])
                }
            }
            if change.rebuild {
                try checkEnumValues(db, change)
                try rebuildTable(db, change)
            } else {
                try alterTable(db, change)
            }
            try rewritePayloads(db, change)
            // Pulled records kept aside have the earlier shape; the next pull lists them again.
            try db.execute(sql: "DELETE FROM \(PulledOrphans.table) WHERE tableName = ?", arguments: [table])
        }
    }

    /// Renames columns and adds new ones in place, when nothing else changed: no row is copied.
    private func alterTable(_ db: Database, _ change: TableChange) throws {
        let table = change.schema.tableName.quotedDatabaseIdentifier
        for column in change.columns {
            if let from = column.from, from.name != column.field.name {
                try db.execute(
                    sql: "ALTER TABLE \(table) RENAME COLUMN \(from.name.quotedDatabaseIdentifier) "
                        + "TO \(column.field.name.quotedDatabaseIdentifier)")
            } else if column.from == nil {
                let field = column.field
                var definition = "\(field.name.quotedDatabaseIdentifier) \(field.type.sqlType)"
                if !field.isOptional, let value = field.defaultValue {
                    definition += " NOT NULL DEFAULT \(Self.sqlLiteral(value))"
                }
                try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN \(definition)")
            }
        }
    }

    /// Creates the table as the current schema says under a temporary name, copies the rows through
    /// their transforms, drops the old table and gives the new one its name, then its indexes.
    private func rebuildTable(_ db: Database, _ change: TableChange) throws {
        let schema = change.schema
        let temporary = SchemaMigration.rebuildTable
        try db.execute(sql: "DROP TABLE IF EXISTS \(temporary)")
        try SchemaMigration.createModelTable(db, schema: schema, named: temporary)
        let names = (["id"] + change.columns.map(\.field.name)).map(\.quotedDatabaseIdentifier)
        let values = ["\"id\""] + change.columns.map { Self.rowExpression($0) }
        try db.execute(
            sql: "INSERT INTO \(temporary) (\(names.joined(separator: ", "))) SELECT "
                + values.joined(separator: ", ") + " FROM \(change.stored.tableName.quotedDatabaseIdentifier)")
        try db.execute(sql: "DROP TABLE \(change.stored.tableName.quotedDatabaseIdentifier)")
        try db.execute(sql: "ALTER TABLE \(temporary) RENAME TO \(schema.tableName.quotedDatabaseIdentifier)")
        try SchemaMigration.createForeignKeyIndexes(db, schema: schema)
    }

    /// Refuses values of a field that became an enum (or changed its cases) that are no case after
    /// the mapping, unless a default replaces them.
    private func checkEnumValues(_ db: Database, _ change: TableChange) throws {
        for column in change.columns {
            guard let cases = column.field.enumCases, let from = column.from, column.field.defaultValue == nil,
                from.enumCases != cases || !column.field.valueMapping.isEmpty
            else { continue }
            let mapped = Self.mapped(from.name.quotedDatabaseIdentifier, column.field)
            let list = cases.map(Self.sqlText).joined(separator: ", ")
            if let value = try String.fetchOne(
                db,
                sql:
                    "SELECT \(from.name.quotedDatabaseIdentifier) FROM \(change.stored.tableName.quotedDatabaseIdentifier) "
                    + "WHERE \(mapped) IS NOT NULL AND \(mapped) NOT IN (\(list)) LIMIT 1")
            {
                throw ModelSyncError.incompatibleSchema(
                    table: change.schema.tableName,
                    reason: "field '\(column.field.name)' of model '\(change.schema.name)' is now an enum, and a "
                        + "record holds '\(value)', which is not one of its cases (\(cases.joined(separator: ", "))); "
                        + "add '\(value): <case>' to its 'mapping:', or give the field a 'default:'. Nothing was changed"
                )
            }
        }
    }

    /// Rewrites every queued payload of the table to the current shape: renamed keys, removed keys
    /// dropped, defaults filled, enum values mapped. Key order follows the columns, as when queued.
    private func rewritePayloads(_ db: Database, _ change: TableChange) throws {
        var parts = ["'id', json(payload -> '$.id')"]
        for column in change.columns {
            parts.append("\(Self.sqlText(column.field.name)), \(Self.payloadExpression(column))")
        }
        try db.execute(
            sql: "UPDATE \(SchemaBuilder.outboxTable) SET payload = json_object(\(parts.joined(separator: ", "))) "
                + "WHERE tableName = ? AND payload IS NOT NULL",
            arguments: [change.schema.tableName])
    }

    // MARK: Expressions

    static func sqlText(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    static func sqlLiteral(_ value: FieldDefault) -> String {
        switch value {
        case .text(let text), .decimal(let text): return sqlText(text)
        case .integer(let integer): return String(integer)
        case .double(let double): return "\(double)"
        case .boolean(let boolean): return boolean ? "1" : "0"
        }
    }

    /// The value as JSON, for `json(...)`.
    static func jsonLiteral(_ value: FieldDefault) -> String {
        switch value {
        case .text(let text):
            var bytes: [UInt8] = []
            JSONText.appendString(text, to: &bytes)
            return sqlText(String(decoding: bytes, as: UTF8.self))
        case .decimal(let text): return sqlText(text)
        case .integer(let integer): return sqlText(String(integer))
        case .double(let double): return sqlText("\(double)")
        case .boolean(let boolean): return sqlText(boolean ? "true" : "false")
        }
    }

    /// `value` through the field's `mapping:` (SQL text in, SQL text out).
    static func mapped(_ value: String, _ field: FieldSchema) -> String {
        guard !field.valueMapping.isEmpty else { return value }
        let cases = field.valueMapping.sorted { $0.key < $1.key }
            .map { "WHEN \(sqlText($0.key)) THEN \(sqlText($0.value))" }.joined(separator: " ")
        return "(CASE \(value) \(cases) ELSE \(value) END)"
    }

    /// An enum value after the mapping, replaced by the default when it is no case.
    static func enumValue(_ value: String, _ field: FieldSchema, fallback: String) -> String {
        let mappedValue = mapped(value, field)
        guard let cases = field.enumCases, field.defaultValue != nil else { return mappedValue }
        let list = cases.map(sqlText).joined(separator: ", ")
        return "(CASE WHEN \(mappedValue) IN (\(list)) THEN \(mappedValue) ELSE \(fallback) END)"
    }

    /// The SQL expression that fills a column of the rebuilt table from the old row.
    static func rowExpression(_ column: ColumnSource) -> String {
        let field = column.field
        let fallback = field.defaultValue.map(sqlLiteral) ?? "NULL"
        guard let from = column.from else { return field.isOptional ? "NULL" : fallback }
        var value = from.name.quotedDatabaseIdentifier
        if from.type == .integer, field.type == .double { value = "CAST(\(value) AS REAL)" }
        if field.enumCases != nil { value = enumValue(value, field, fallback: fallback) }
        if !field.isOptional, field.defaultValue != nil { value = "COALESCE(\(value), \(fallback))" }
        return value
    }

    /// The SQL expression (JSON) of a key of a rewritten payload. Values that need no transform are
    /// copied as JSON text, so that numbers (dates, doubles, decimals) keep every digit.
    static func payloadExpression(_ column: ColumnSource) -> String {
        let field = column.field
        let fallback = field.defaultValue.map { "json(\(jsonLiteral($0)))" } ?? "NULL"
        guard let from = column.from else { return field.isOptional ? "NULL" : fallback }
        let path = sqlText("$." + from.name)
        let raw = "json(payload -> \(path))"
        let isNull = "(json_type(payload, \(path)) IS NULL OR json_type(payload, \(path)) = 'null')"
        if field.enumCases != nil, from.enumCases != field.enumCases || !field.valueMapping.isEmpty {
            let text = "(payload ->> \(path))"
            let sqlFallback = field.defaultValue.map(sqlLiteral) ?? "NULL"
            let value = enumValue(text, field, fallback: sqlFallback)
            return field.defaultValue == nil ? value : "COALESCE(\(value), \(sqlFallback))"
        }
        if !field.isOptional, field.defaultValue != nil {
            return "(CASE WHEN \(isNull) THEN \(fallback) ELSE \(raw) END)"
        }
        return raw
    }
}

extension SchemaMigration {
    /// Creates a model table as its schema says (the same definition `SchemaBuilder` creates).
    static func createModelTable(_ db: Database, schema: ModelSchema, named name: String) throws {
        let foreignKeysByColumn = Dictionary(uniqueKeysWithValues: schema.foreignKeys.map { ($0.column, $0) })
        try db.create(table: name) { table in
            table.primaryKey("id", .text).notNull()
            for field in schema.fields {
                let column = table.column(field.name, Database.ColumnType(rawValue: field.type.sqlType))
                if !field.isOptional { column.notNull() }
                if field.isUnique { column.unique() }
                if let foreignKey = foreignKeysByColumn[field.name] {
                    column.references(foreignKey.table, column: "id", deferred: true)
                }
            }
        }
    }

    static func createForeignKeyIndexes(_ db: Database, schema: ModelSchema) throws {
        for foreignKey in schema.foreignKeys {
            try db.create(
                index: "\(schema.tableName)_\(foreignKey.column)", on: schema.tableName,
                columns: [foreignKey.column], ifNotExists: true)
        }
    }

    /// Runs `body` in one IMMEDIATE transaction with SQLite's foreign keys off (a table rebuild drops
    /// and recreates tables that others reference), then checks every foreign key before the commit:
    /// a violation rolls everything back. Foreign keys are on again afterwards, whatever happened.
    static func withForeignKeysOff<T>(_ db: Database, _ body: (Database) throws -> T) throws -> T {
        try db.execute(sql: "PRAGMA foreign_keys = OFF")
        defer { try? db.execute(sql: "PRAGMA foreign_keys = ON") }
        var result: T?
        try db.inTransaction(.immediate) {
            result = try body(db)
            if let violation = try Row.fetchOne(db, sql: "PRAGMA foreign_key_check") {
                let table: String = violation[0]
                let parent: String = violation[2]
                throw ModelSyncError.incompatibleSchema(
                    table: table,
                    reason: "after migrating, a record of '\(table)' references a '\(parent)' record that does not "
                        + "exist; nothing was changed")
            }
            return .commit
        }
        return result!
    }
}
