import GRDB

/// Creates the store's tables: the outbox, the ID map, and one table per model derived from its
/// schema (foreign-key columns with indexes, unique constraints, delete rules).
///
/// Model tables are created when missing and extended with new optional columns when a model gains
/// a field; any other difference is reported as ``ModelSyncError/incompatibleSchema(table:reason:)``.
enum SchemaBuilder {
    static let outboxTable = "modelsync_outbox"
    static let idMapTable = "modelsync_id_map"

    static func migrate(_ writer: any DatabaseWriter, models: [any SyncModel.Type]) throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("modelsync-internal-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE \(outboxTable) (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                        tableName TEXT NOT NULL,
                        recordID TEXT NOT NULL,
                        operation TEXT NOT NULL,
                        payload TEXT,
                        idempotencyKey TEXT NOT NULL,
                        state TEXT NOT NULL DEFAULT 'pending',
                        attempts INTEGER NOT NULL DEFAULT 0,
                        lastError TEXT,
                        nextAttemptAt DOUBLE,
                        createdAt DOUBLE NOT NULL
                    );
                    CREATE INDEX \(outboxTable)_record ON \(outboxTable)(tableName, recordID);
                    CREATE UNIQUE INDEX \(outboxTable)_unsent ON \(outboxTable)(tableName, recordID)
                        WHERE state = 'pending' AND attempts = 0;
                    CREATE TABLE \(idMapTable) (
                        tableName TEXT NOT NULL,
                        oldID TEXT NOT NULL,
                        newID TEXT NOT NULL,
                        replacedAt DOUBLE NOT NULL,
                        PRIMARY KEY (tableName, oldID)
                    ) WITHOUT ROWID;
                    CREATE INDEX \(idMapTable)_new ON \(idMapTable)(tableName, newID);
                    """)
        }
        migrator.registerMigration("modelsync-pull-state-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE \(PullState.table) (
                        tableName TEXT PRIMARY KEY NOT NULL,
                        cursor TEXT NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("modelsync-record-version-v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE \(RecordVersions.table) (
                        tableName TEXT NOT NULL,
                        recordID TEXT NOT NULL,
                        version TEXT NOT NULL,
                        PRIMARY KEY (tableName, recordID)
                    ) WITHOUT ROWID;
                    CREATE TABLE \(PulledOrphans.table) (
                        tableName TEXT NOT NULL,
                        recordID TEXT NOT NULL,
                        fields TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        PRIMARY KEY (tableName, recordID)
                    ) WITHOUT ROWID;
                    CREATE INDEX \(outboxTable)_sent_key ON \(outboxTable)(idempotencyKey) WHERE attempts > 0;
                    """)
        }
        try migrator.migrate(writer)
        try writer.write { db in
            for model in models {
                try createOrExtendTable(db, schema: model.schema)
            }
        }
    }

    private static func createOrExtendTable(_ db: Database, schema: ModelSchema) throws {
        if try db.tableExists(schema.tableName) {
            try extendTable(db, schema: schema)
            return
        }
        let foreignKeysByColumn = Dictionary(uniqueKeysWithValues: schema.foreignKeys.map { ($0.column, $0) })
        try db.create(table: schema.tableName) { table in
            table.primaryKey("id", .text).notNull()
            for field in schema.fields {
                let column = table.column(field.name, Database.ColumnType(rawValue: field.type.sqlType))
                if !field.isOptional { column.notNull() }
                if field.isUnique { column.unique() }
                if let foreignKey = foreignKeysByColumn[field.name] {
                    column.references(
                        foreignKey.table, column: "id", onDelete: foreignKeyAction(foreignKey.onDelete),
                        deferred: true)
                }
            }
        }
        for foreignKey in schema.foreignKeys {
            try db.create(
                index: "\(schema.tableName)_\(foreignKey.column)", on: schema.tableName,
                columns: [foreignKey.column])
        }
    }

    /// Adds the columns of new optional fields; anything else that differs is an error.
    private static func extendTable(_ db: Database, schema: ModelSchema) throws {
        let existing = Set(try db.columns(in: schema.tableName).map { $0.name.lowercased() })
        for field in schema.fields where !existing.contains(field.name.lowercased()) {
            guard field.isOptional, !field.isUnique,
                !schema.foreignKeys.contains(where: { $0.column == field.name })
            else {
                throw ModelSyncError.incompatibleSchema(
                    table: schema.tableName,
                    reason: "the database has no column '\(field.name)', and a required, unique or foreign-key "
                        + "column cannot be added to existing rows; make the field optional, or delete the "
                        + "database file to start over")
            }
            try db.alter(table: schema.tableName) { table in
                table.add(column: field.name, Database.ColumnType(rawValue: field.type.sqlType))
            }
        }
    }

    private static func foreignKeyAction(_ rule: DeleteRule) -> Database.ForeignKeyAction {
        switch rule {
        case .cascade: return .cascade
        case .nullify: return .setNull
        case .restrict: return .restrict
        }
    }
}
