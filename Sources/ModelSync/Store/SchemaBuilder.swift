import GRDB

/// Creates the store's tables: the outbox, the ID map, and one table per model derived from its
/// schema (foreign-key columns with indexes, unique constraints, delete rules).
///
/// Model tables are created when missing and extended with new optional columns when a model gains
/// a field; any other difference is reported as ``ModelSyncError/incompatibleSchema(table:reason:)``.
enum SchemaBuilder {
    static let outboxTable = "modelsync_outbox"
    static let idMapTable = "modelsync_id_map"
    /// Where applied migrations are recorded: GRDB's `DatabaseMigrator` table, so that databases
    /// created by earlier versions (which used it) keep their records.
    static let migrationsTable = "grdb_migrations"

    /// The store's own migrations, in order; each runs once per database.
    static let migrations: [(identifier: String, migrate: @Sendable (Database) throws -> Void)] = [
        (
            "modelsync-internal-v1",
            { db in
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
        ),
        (
            "modelsync-pull-state-v1",
            { db in
                try db.execute(
                    sql: """
                        CREATE TABLE \(PullState.table) (
                            tableName TEXT PRIMARY KEY NOT NULL,
                            cursor TEXT NOT NULL
                        ) WITHOUT ROWID;
                        """)
            }
        ),
        (
            // Who holds the claim of an entry in flight (see OutboxClaims.swift); the index covers
            // the few entries in flight, which every claim checks for stale owners.
            "modelsync-claims-v1",
            { db in
                try db.execute(
                    sql: """
                        ALTER TABLE \(outboxTable) ADD COLUMN claimOwner TEXT;
                        ALTER TABLE \(outboxTable) ADD COLUMN claimProcess INTEGER;
                        ALTER TABLE \(outboxTable) ADD COLUMN claimExpiresAt DOUBLE;
                        CREATE INDEX \(outboxTable)_claims ON \(outboxTable)(claimOwner, claimProcess)
                            WHERE state = 'inFlight';
                        """)
            }
        ),
        (
            // Server versions of records (sent back as If-Match), pulled records kept aside, and the
            // lookup of a sent create by its key (a listing that echoes the key of a lost create).
            "modelsync-record-version-v1",
            { db in
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
        ),
        (
            // The notes of a full listing in progress (local records it has not listed yet): stored
            // so that a full pull resumed after a kill still deletes what the server no longer has.
            "modelsync-pull-unlisted-v1",
            { db in
                try db.execute(
                    sql: """
                        CREATE TABLE \(PullState.unlistedTable) (
                            tableName TEXT NOT NULL,
                            recordID TEXT NOT NULL,
                            PRIMARY KEY (tableName, recordID)
                        ) WITHOUT ROWID;
                        """)
            }
        ),
        // The schema the store is built with, which the next version migrates from (SchemaMigration.swift).
        SchemaMigration.createSchemaTable,
        (
            // The server's copy a local change is based on (JSON, local form), for conflict resolvers.
            "modelsync-record-version-base-v1",
            { db in try db.execute(sql: "ALTER TABLE \(RecordVersions.table) ADD COLUMN base TEXT") }
        ),
        (
            // The unit an entry belongs to (changes saved with `SyncStore.writeAsOneUnit`, sent to the
            // server as one all-or-nothing batch whose Idempotency-Key is the unit's ID).
            "modelsync-outbox-units-v1",
            { db in
                try db.execute(
                    sql: """
                        ALTER TABLE \(outboxTable) ADD COLUMN unitID TEXT;
                        CREATE INDEX \(outboxTable)_unit ON \(outboxTable)(unitID) WHERE unitID IS NOT NULL;
                        """)
            }
        ),
        (
            // Entries never sent store no payload (the row is read when they are first claimed): the
            // entries that do (sent at least once, or queued by an earlier version) are indexed, so that
            // an ID replacement rewrites their references without reading the whole queue.
            "modelsync-outbox-stored-payload-v1",
            { db in
                try db.execute(
                    sql: """
                        CREATE INDEX \(outboxTable)_stored_payload ON \(outboxTable)(tableName)
                            WHERE payload IS NOT NULL;
                        """)
            }
        ),
        (
            // One index by record instead of two (a save queues one index entry, not two): `unsentSlot`
            // is 0 for the entry never sent (pending, no attempt) and NULL for every other entry. NULLs
            // are distinct in a unique index, so the index keeps at most one unsent entry per record
            // (the conflict target of the coalescing upsert, `OutboxStore.enqueueSave`), and its prefix
            // (tableName, recordID) serves the lookups by record. The column is computed (VIRTUAL), so
            // no statement that changes `state` or `attempts` has to keep it, and adding it rewrites no
            // row; the unsent entries were already unique by the partial index it replaces.
            "modelsync-outbox-record-index-v2",
            { db in
                try db.execute(
                    sql: """
                        ALTER TABLE \(outboxTable) ADD COLUMN unsentSlot INTEGER
                            GENERATED ALWAYS AS (CASE WHEN state = 'pending' AND attempts = 0 THEN 0 END) VIRTUAL;
                        DROP INDEX \(outboxTable)_record;
                        DROP INDEX \(outboxTable)_unsent;
                        CREATE UNIQUE INDEX \(outboxTable)_record_unsent
                            ON \(outboxTable)(tableName, recordID, unsentSlot);
                        """)
            }
        ),
        (
            // The outbox without AUTOINCREMENT (which writes `sqlite_sequence` on every insert): a new
            // entry takes the highest sequence number plus one, so entries of a record keep their order.
            // A number can come back after the newest entry is removed; an outcome applies only to the
            // entry its claim holds (`OutcomeRecorder.stillOurs`), so a late answer never touches the
            // entry that reuses the number. AUTOINCREMENT cannot be dropped in place: the table is
            // rebuilt, every row copied as it is (sequence numbers kept), and every index recreated.
            //
            // The same rebuild makes `idempotencyKey` nullable: an entry gets its key when it is first
            // claimed for sending (`Outbox.claimReadyEntries`, `Outbox.claimReadyUnit`), in the claim's
            // transaction, and keeps it from then on; a save no longer draws and stores one. Entries
            // copied from an older outbox keep the keys they have.
            //
            // It also adds `conflictRetries`: how many times in a row the entry met a newer server copy
            // and was sent again to keep the local change (`OutcomeRecorder`). `attempts` counts every
            // send, failures on the way included, so it cannot tell a flaky network from a record that
            // keeps changing on the server.
            "modelsync-outbox-rowid-v3",
            { db in
                let columns =
                    "sequence, tableName, recordID, operation, payload, idempotencyKey, state, attempts, lastError, "
                    + "nextAttemptAt, createdAt, claimOwner, claimProcess, claimExpiresAt, unitID"
                try db.execute(
                    sql: """
                        CREATE TABLE \(outboxTable)_rebuilt (
                            sequence INTEGER PRIMARY KEY,
                            tableName TEXT NOT NULL,
                            recordID TEXT NOT NULL,
                            operation TEXT NOT NULL,
                            payload TEXT,
                            idempotencyKey TEXT,
                            state TEXT NOT NULL DEFAULT 'pending',
                            attempts INTEGER NOT NULL DEFAULT 0,
                            lastError TEXT,
                            nextAttemptAt DOUBLE,
                            createdAt DOUBLE NOT NULL,
                            claimOwner TEXT,
                            claimProcess INTEGER,
                            claimExpiresAt DOUBLE,
                            unitID TEXT,
                            conflictRetries INTEGER NOT NULL DEFAULT 0,
                            unsentSlot INTEGER
                                GENERATED ALWAYS AS (CASE WHEN state = 'pending' AND attempts = 0 THEN 0 END) VIRTUAL
                        );
                        INSERT INTO \(outboxTable)_rebuilt (\(columns))
                            SELECT \(columns) FROM \(outboxTable) ORDER BY sequence;
                        DROP TABLE \(outboxTable);
                        ALTER TABLE \(outboxTable)_rebuilt RENAME TO \(outboxTable);
                        CREATE UNIQUE INDEX \(outboxTable)_record_unsent
                            ON \(outboxTable)(tableName, recordID, unsentSlot);
                        CREATE INDEX \(outboxTable)_claims ON \(outboxTable)(claimOwner, claimProcess)
                            WHERE state = 'inFlight';
                        CREATE INDEX \(outboxTable)_sent_key ON \(outboxTable)(idempotencyKey) WHERE attempts > 0;
                        CREATE INDEX \(outboxTable)_unit ON \(outboxTable)(unitID) WHERE unitID IS NOT NULL;
                        CREATE INDEX \(outboxTable)_stored_payload ON \(outboxTable)(tableName)
                            WHERE payload IS NOT NULL;
                        """)
            }
        ),
    ]

    /// Applies the migrations this database lacks and creates or extends the model tables, in the
    /// caller's write transaction.
    ///
    /// The caller opens it IMMEDIATE (GRDB's `write`): a second store or process opening the same
    /// file at the same moment waits for the write lock (up to the busy timeout), then reads which
    /// migrations are applied inside its own transaction and finds them done. (GRDB's
    /// `DatabaseMigrator` reads them before its transactions, so two processes could both run the
    /// first migration and one would fail with "table already exists".)
    static func migrate(_ db: Database, models: [any SyncModel.Type], removedModels: [String] = []) throws {
        // Another process may have changed the schema since this connection last looked.
        db.clearSchemaCache()
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS \(migrationsTable) (identifier TEXT NOT NULL PRIMARY KEY)")
        let applied = Set(try String.fetchAll(db, sql: "SELECT identifier FROM \(migrationsTable)"))
        for migration in migrations where !applied.contains(migration.identifier) {
            try migration.migrate(db)
            try db.execute(
                sql: "INSERT INTO \(migrationsTable) (identifier) VALUES (?)", arguments: [migration.identifier])
        }
        try SchemaMigration.migrate(db, models: models, removedModels: removedModels)
        for model in models {
            try createOrExtendTable(db, schema: model.schema)
        }
    }

    /// Checks that a database opened read-only needs nothing that opening would change: every
    /// migration applied, every model table with every column. Otherwise throws
    /// ``ModelSyncError/readOnlyStore(path:reason:)`` naming what is missing.
    static func checkReadable(_ db: Database, models: [any SyncModel.Type], path: String, readOnlyReason: String)
        throws
    {
        var missing: [String] = []
        let applied =
            try db.tableExists(migrationsTable)
            ? Set(try String.fetchAll(db, sql: "SELECT identifier FROM \(migrationsTable)")) : []
        for migration in migrations where !applied.contains(migration.identifier) {
            missing.append("migration '\(migration.identifier)'")
        }
        for model in models {
            let table = model.schema.tableName
            guard try db.tableExists(table) else {
                missing.append("table '\(table)'")
                continue
            }
            let columns = Set(try db.columns(in: table).map { $0.name.lowercased() })
            for field in model.schema.fields where !columns.contains(field.name.lowercased()) {
                missing.append("column '\(table).\(field.name)'")
            }
        }
        guard missing.isEmpty else {
            throw ModelSyncError.readOnlyStore(
                path: path,
                reason: "\(readOnlyReason), and the database lacks what this version adds when it opens a store ("
                    + missing.prefix(3).joined(separator: ", ") + (missing.count > 3 ? ", …" : "")
                    + "); open it once where this process may write it, to upgrade it")
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
                // Delete rules live in one place, `SyncTransaction.deleteRecord`, which also queues what
                // the server needs and reports each change. SQLite's foreign key only checks, at commit
                // (deferred, so an ID replacement can rewrite parent and children in one transaction): a
                // delete that skipped the rules fails instead of cascading unseen.
                if let foreignKey = foreignKeysByColumn[field.name] {
                    column.references(foreignKey.table, column: "id", deferred: true)
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
}
