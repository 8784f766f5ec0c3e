import Foundation

/// The PostgreSQL side of a ``ServerSchema``: the schema (DDL) and each model's statements. The
/// generator writes this text into the generated server file and `modelsync-server` builds it at run
/// time: both call this one builder, so the SQL has one source.
///
/// Every table has `tenant_id`; primary keys are `(tenant_id, id)` and foreign keys
/// `(tenant_id, parent)`, so that no row can reference another tenant's record. Row triggers stamp
/// each change with the writing transaction's ID (`_xid`) and a change sequence (`_seq`), bump
/// `_version`, keep tombstones of deleted records and append the audit history, in the same
/// transaction as the change (cascaded deletes and nullified references included).
public struct ServerSQL: Sendable, Hashable {
    /// The statements that create the schema, in order (run once, in one transaction).
    public var schema: [String]
    /// Per model table: its statements.
    public var models: [String: ModelStatements]
    /// Constraint name -> the table and column it guards, to name the field in a `422`.
    public var constraints: [String: ConstraintColumn]

    /// The statements of one model. Parameters are listed with each statement.
    public struct ModelStatements: Sendable, Hashable {
        /// `$1` tenant, `$2` the body (JSON text), `$3` the idempotency key or null -> the record (JSON text).
        public var insert: String
        /// A create sent alone, in one statement, so in one round trip and its own transaction: names
        /// the actor for the history trigger, inserts the record and, with a key, stores the answer
        /// under it. A key used before makes the statement fail on `modelsync_idempotency`'s primary
        /// key (or, for a client ID, on the record's), undoing the insert; the caller then reads the
        /// stored answer. `$1` tenant, `$2` the body, `$3` the idempotency key or null, `$4` the key's
        /// scope, `$5` the request's hash, `$6` the actor -> the record (JSON text). (The set-based
        /// ``createRun`` with an array of one does the same work, but PostgreSQL plans and runs its
        /// larger statement at about half the speed: server-create8 measured 2.25 against 1.28.)
        public var create: String
        /// Creates in one statement, so in one round trip: a batch's run of creates of this model. It names the actor for the history trigger, inserts the
        /// records in the array's order and stores each answer under its key. A create whose key already
        /// has an answer (visible to the statement) inserts nothing and returns that answer instead.
        /// A key claimed by a transaction still running, a key twice in the array, or any refused
        /// record (constraint, invalid value) makes the statement fail and undoes all of it: the caller
        /// then goes one create at a time.
        /// `$1` tenant, `$2` a JSON array of `{"b": body, "k": key or null, "h": the request's hash}`,
        /// `$3` the keys' scope, `$4` the actor -> rows `ord, seq, record, hash, status`: one per
        /// created record (`ord` null) in the array's order (by `seq`), then one per create answered
        /// from its stored answer (`ord`, 1-based; `record` the stored answer, `hash` and `status` its).
        public var createRun: String
        /// `$1` tenant, `$2` id, `$3` the body -> the record; no row when the ID is unknown.
        public var update: String
        /// `$1` tenant, `$2` id -> `_version`, the record; locks the row for an update.
        public var selectForUpdate: String
        /// `$1` tenant, `$2` id -> the record.
        public var select: String
        /// `$1` tenant, `$2` id -> one row when deleted.
        public var delete: String
        /// `$1` tenant, `$2` cursor xid, `$3` cursor sequence, `$4` limit -> `xid`, `seq`, the record or tombstone.
        /// Changes (tombstones included) of finished transactions only, oldest first.
        public var listChanges: String
        /// As ``listChanges`` without tombstones: a first listing, without a cursor.
        public var listLive: String
        /// `$1` tenant, `$2` xid, `$3` sequence of the end of a short page -> whether committed changes
        /// follow it: the page was cut by a transaction still running (the listing waits for it). Its own
        /// snapshot: the transaction may have finished since the page was read.
        public var heldBack: String

        /// A statement set.
        public init(
            insert: String, create: String, createRun: String, update: String, selectForUpdate: String, select: String,
            delete: String, listChanges: String, listLive: String, heldBack: String
        ) {
            self.insert = insert
            self.create = create
            self.createRun = createRun
            self.update = update
            self.selectForUpdate = selectForUpdate
            self.select = select
            self.delete = delete
            self.listChanges = listChanges
            self.listLive = listLive
            self.heldBack = heldBack
        }
    }

    /// What a named constraint guards.
    public struct ConstraintColumn: Sendable, Hashable {
        public var table: String
        public var column: String
        /// `fkey`, `key` (unique) or `check`.
        public var kind: String

        /// A constraint description.
        public init(table: String, column: String, kind: String) {
            self.table = table
            self.column = column
            self.kind = kind
        }
    }

    /// The SQL text of a schema and its statements, as written into generated code.
    public init(schema: [String], models: [String: ModelStatements], constraints: [String: ConstraintColumn]) {
        self.schema = schema
        self.models = models
        self.constraints = constraints
    }

    /// Builds the SQL of `schema`.
    public init(_ schema: ServerSchema) {
        var statements = Self.commonSchema
        var constraints: [String: ConstraintColumn] = [:]
        var foreignKeys: [String] = []
        var models: [String: ModelStatements] = [:]
        for model in schema.models {
            statements += Self.tableStatements(model, in: schema)
            foreignKeys += model.foreignKeys.flatMap { Self.foreignKeyStatements(model, $0) }
            constraints.merge(Self.constraints(of: model), uniquingKeysWith: { first, _ in first })
            models[model.table] = Self.statements(for: model, in: schema)
        }
        self.init(schema: statements + foreignKeys, models: models, constraints: constraints)
    }

    // MARK: Tables

    /// The statements that create `model`'s table, its change index and its triggers (foreign keys
    /// apart: ``foreignKeyStatements(_:_:)``, once every table exists).
    static func tableStatements(_ model: ServerModel, in schema: ServerSchema) -> [String] {
        let table = quoted(model.table)
        var lines = ["  \"tenant_id\" text NOT NULL"]
        switch (model.idType, model.idGeneration) {
        case (.int, .server): lines.append("  \"id\" bigserial NOT NULL")
        case (.int, .client): lines.append("  \"id\" bigint NOT NULL")
        case (.string, .server): lines.append("  \"id\" text NOT NULL DEFAULT gen_random_uuid()::text")
        case (.string, .client): lines.append("  \"id\" text NOT NULL")
        }
        for column in model.columns {
            var line = "  \(quoted(column.name)) \(Self.sqlType(column, in: model, schema: schema))"
            if !column.isOptional { line += " NOT NULL" }
            if let check = checkConstraint(column, of: model) {
                line += " CONSTRAINT \(quoted(check.name)) \(check.clause)"
            }
            lines.append(line)
        }
        lines.append("  \"_version\" bigint NOT NULL DEFAULT 1")
        lines.append("  \"_idempotency_key\" text")
        lines.append("  \"_xid\" xid8 NOT NULL DEFAULT pg_current_xact_id()")
        lines.append("  \"_seq\" bigint NOT NULL DEFAULT 0")
        lines.append("  PRIMARY KEY (\"tenant_id\", \"id\")")
        for column in model.columns where column.isUnique {
            let unique = uniqueConstraint(column, of: model)
            lines.append("  CONSTRAINT \(quoted(unique.name)) \(unique.clause)")
        }
        return [
            "CREATE TABLE \(table) (\n" + lines.joined(separator: ",\n") + "\n)",
            "CREATE INDEX \(quoted(model.table + "_changes")) ON \(table) (\"tenant_id\", \"_xid\", \"_seq\")",
            "CREATE TRIGGER modelsync_stamp BEFORE INSERT OR UPDATE ON \(table) "
                + "FOR EACH ROW EXECUTE FUNCTION modelsync_stamp()",
            "CREATE TRIGGER modelsync_track AFTER INSERT OR UPDATE OR DELETE ON \(table) "
                + "FOR EACH ROW EXECUTE FUNCTION modelsync_track()",
        ]
    }

    /// The `CHECK` of a date or enumeration column: its name and clause.
    static func checkConstraint(_ column: ServerColumn, of model: ServerModel) -> (name: String, clause: String)? {
        let name = constraintName(model.table, column.name, "check")
        if column.type == .date {
            return (
                name,
                "CHECK (\(quoted(column.name)) ~ "
                    + "'^[+-]?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$')"
            )
        }
        guard !column.allowedValues.isEmpty else { return nil }
        let values = column.allowedValues.map(literal).joined(separator: ", ")
        return (name, "CHECK (\(quoted(column.name)) IN (\(values)))")
    }

    /// The `UNIQUE` (per tenant) of a unique column: its name and clause.
    static func uniqueConstraint(_ column: ServerColumn, of model: ServerModel) -> (name: String, clause: String) {
        (constraintName(model.table, column.name, "key"), "UNIQUE (\"tenant_id\", \(quoted(column.name)))")
    }

    /// The constraint and the index of a `belongsTo`.
    static func foreignKeyStatements(_ model: ServerModel, _ foreignKey: ServerForeignKey) -> [String] {
        let table = quoted(model.table)
        let name = constraintName(model.table, foreignKey.column, "fkey")
        let action: String
        switch foreignKey.onDelete {
        case .cascade: action = "CASCADE"
        case .nullify: action = "SET NULL (\(quoted(foreignKey.column)))"
        case .restrict: action = "RESTRICT"
        }
        return [
            "ALTER TABLE \(table) ADD CONSTRAINT \(quoted(name)) FOREIGN KEY (\"tenant_id\", "
                + "\(quoted(foreignKey.column))) REFERENCES \(quoted(foreignKey.targetTable)) "
                + "(\"tenant_id\", \"id\") ON DELETE \(action)",
            "CREATE INDEX \(quoted(constraintName(model.table, foreignKey.column, "idx"))) ON \(table) "
                + "(\"tenant_id\", \(quoted(foreignKey.column)))",
        ]
    }

    /// The named constraints of `model`, to name the field in a `422`.
    static func constraints(of model: ServerModel) -> [String: ConstraintColumn] {
        var constraints: [String: ConstraintColumn] = [:]
        for column in model.columns {
            if let check = checkConstraint(column, of: model) {
                constraints[check.name] = ConstraintColumn(table: model.table, column: column.name, kind: "check")
            }
            if column.isUnique {
                constraints[uniqueConstraint(column, of: model).name] = ConstraintColumn(
                    table: model.table, column: column.name, kind: "key")
            }
        }
        for foreignKey in model.foreignKeys {
            constraints[constraintName(model.table, foreignKey.column, "fkey")] = ConstraintColumn(
                table: model.table, column: foreignKey.column, kind: "fkey")
        }
        return constraints
    }

    // MARK: Per model

    private static func statements(for model: ServerModel, in schema: ServerSchema) -> ModelStatements {
        /// A foreign key reads as its target's ID type; other columns as their own type.
        func input(_ column: ServerColumn, parameter: String) -> String {
            if let foreignKey = model.foreignKey(column: column.name) {
                let text = "(\(parameter)::jsonb ->> \(literal(column.name)))"
                return schema.model(table: foreignKey.targetTable)?.idType == .int ? "\(text)::bigint" : text
            }
            return Self.input(column, parameter: parameter)
        }
        let table = quoted(model.table)
        let id = model.idType == .int ? "$2::bigint" : "$2::text"
        var insertColumns = ["\"tenant_id\""]
        var insertValues = ["$1"]
        if model.idGeneration == .client {
            insertColumns.append("\"id\"")
            insertValues.append(model.idType == .int ? "($2::jsonb ->> 'id')::bigint" : "($2::jsonb ->> 'id')")
        }
        for column in model.columns {
            insertColumns.append(quoted(column.name))
            insertValues.append(input(column, parameter: "$2"))
        }
        insertColumns.append("\"_idempotency_key\"")
        insertValues.append("$3")
        let record = recordJSON(model, alias: "r")
        let insert =
            "INSERT INTO \(table) AS r (\(insertColumns.joined(separator: ", ")))\n"
            + "VALUES (\(insertValues.joined(separator: ", ")))\nRETURNING \(record)"
        // The set-based create: every create of the array in one statement (a batch's run of creates).
        // Rows are inserted in the array's order, so their
        // `_seq` (stamped per row by the trigger) gives each created record its place.
        var setValues = ["$1"]
        if model.idGeneration == .client {
            setValues.append(model.idType == .int ? "(i.b ->> 'id')::bigint" : "(i.b ->> 'id')")
        }
        for column in model.columns { setValues.append(input(column, parameter: "i.b")) }
        setValues.append("i.k")
        let create =
            "WITH created AS (\nINSERT INTO \(table) AS r (\(insertColumns.joined(separator: ", ")))\n"
            + "SELECT \(insertValues.joined(separator: ", "))\n"
            + "FROM (SELECT set_config('modelsync.actor', $6, true)) AS actor\nRETURNING \(record) AS record\n"
            + "), remembered AS (\nINSERT INTO modelsync_idempotency "
            + "(\"tenant_id\", \"scope\", \"key\", \"request_hash\", \"status\", \"response\")\n"
            + "SELECT $1, $4, $3, $5, 201, created.record FROM created WHERE $3::text IS NOT NULL\n"
            + ")\nSELECT record FROM created"
        let createRun =
            "WITH actor AS MATERIALIZED (SELECT set_config('modelsync.actor', $4, true) AS name\n"
            + "), input AS MATERIALIZED (\nSELECT e.ord, e.value -> 'b' AS b, e.value ->> 'k' AS k, "
            + "e.value ->> 'h' AS h\nFROM actor, jsonb_array_elements($2::jsonb) WITH ORDINALITY AS e(value, ord)\n"
            // One primary-key lookup per create (LATERAL): a join would let the planner scan the whole
            // table of stored answers for every create.
            + "), stored AS MATERIALIZED (\nSELECT i.ord, s.\"request_hash\", s.\"status\", s.\"response\" "
            + "FROM input AS i\nCROSS JOIN LATERAL (SELECT x.\"request_hash\", x.\"status\", x.\"response\" "
            + "FROM modelsync_idempotency AS x\nWHERE x.\"tenant_id\" = $1 AND x.\"scope\" = $3 AND x.\"key\" = i.k) AS s\n"
            + "), created AS (\nINSERT INTO \(table) AS r (\(insertColumns.joined(separator: ", ")))\n"
            + "SELECT \(setValues.joined(separator: ", "))\nFROM input AS i "
            + "WHERE NOT EXISTS (SELECT 1 FROM stored WHERE stored.ord = i.ord)\nORDER BY i.ord\n"
            + "RETURNING r.\"_seq\" AS seq, r.\"_idempotency_key\" AS k, \(record) AS record\n"
            + "), remembered AS (\nINSERT INTO modelsync_idempotency "
            + "(\"tenant_id\", \"scope\", \"key\", \"request_hash\", \"status\", \"response\")\n"
            + "SELECT $1, $3, c.k, i.h, 201, c.record FROM created AS c JOIN input AS i ON i.k = c.k\n"
            + ")\nSELECT NULL::bigint AS ord, c.seq, c.record, NULL::text AS hash, NULL::integer AS status "
            + "FROM created AS c\nUNION ALL\nSELECT s.ord, NULL, s.\"response\", s.\"request_hash\", s.\"status\" "
            + "FROM stored AS s\nORDER BY seq"
        let assignments = model.columns.map { "\(quoted($0.name)) = \(input($0, parameter: "$3"))" }
        let update =
            "UPDATE \(table) AS r SET \(assignments.isEmpty ? "\"_version\" = r.\"_version\"" : assignments.joined(separator: ", "))\n"
            + "WHERE r.\"tenant_id\" = $1 AND r.\"id\" = \(id)\nRETURNING \(record)"
        let key = "WHERE r.\"tenant_id\" = $1 AND r.\"id\" = \(id)"
        let select = "SELECT \(record) FROM \(table) AS r \(key)"
        let selectForUpdate = "SELECT r.\"_version\", \(record) FROM \(table) AS r \(key) FOR UPDATE"
        let delete = "DELETE FROM \(table) AS r \(key) RETURNING 1"
        let finished = "pg_snapshot_xmin(pg_current_snapshot())"
        let live =
            "SELECT r.\"_xid\"::text AS xid, r.\"_seq\" AS seq, \(record) AS record FROM \(table) AS r\n"
            + "WHERE r.\"tenant_id\" = $1 AND (r.\"_xid\", r.\"_seq\") > ($2::text::xid8, $3::bigint) "
            + "AND r.\"_xid\" < \(finished)"
        let tombstoneID = model.idType == .int ? "to_jsonb(t.\"record_id\"::bigint)" : "to_jsonb(t.\"record_id\")"
        let tombstones =
            "SELECT t.\"_xid\"::text, t.\"_seq\", jsonb_build_object('id', \(tombstoneID), 'deleted', true)::text "
            + "FROM modelsync_tombstones AS t\n"
            + "WHERE t.\"tenant_id\" = $1 AND t.\"table_name\" = \(literal(model.table)) "
            + "AND (t.\"_xid\", t.\"_seq\") > ($2::text::xid8, $3::bigint) AND t.\"_xid\" < \(finished)"
        return ModelStatements(
            insert: insert, create: create, createRun: createRun, update: update, selectForUpdate: selectForUpdate,
            select: select,
            delete: delete,
            listChanges:
                "SELECT * FROM (\n\(live)\nUNION ALL\n\(tombstones)\n) AS changes ORDER BY xid::xid8, seq LIMIT $4",
            listLive: live + "\nORDER BY r.\"_xid\", r.\"_seq\" LIMIT $4",
            heldBack:
                "SELECT EXISTS (SELECT 1 FROM \(table) AS r WHERE r.\"tenant_id\" = $1 "
                + "AND (r.\"_xid\", r.\"_seq\") > ($2::text::xid8, $3::bigint))\n"
                + "OR EXISTS (SELECT 1 FROM modelsync_tombstones AS t WHERE t.\"tenant_id\" = $1 "
                + "AND t.\"table_name\" = \(literal(model.table)) "
                + "AND (t.\"_xid\", t.\"_seq\") > ($2::text::xid8, $3::bigint))")
    }

    /// The record as JSON text: wire keys, `_version`, and `_idempotency_key` when set.
    private static func recordJSON(_ model: ServerModel, alias: String) -> String {
        var pairs = ["'id', \(alias).\"id\""]
        for column in model.columns {
            let value = "\(alias).\(quoted(column.name))"
            let output = column.type == .data ? "translate(encode(\(value), 'base64'), E'\\n', '')" : value
            pairs.append("\(literal(column.name)), \(output)")
        }
        pairs.append("'_version', \(alias).\"_version\"")
        // jsonb_build_object takes at most 100 arguments: build in chunks of 40 pairs.
        var chunks: [String] = []
        var index = 0
        while index < pairs.count {
            let chunk = pairs[index..<min(index + 40, pairs.count)]
            chunks.append("jsonb_build_object(\(chunk.joined(separator: ", ")))")
            index += 40
        }
        chunks.append("jsonb_strip_nulls(jsonb_build_object('_idempotency_key', \(alias).\"_idempotency_key\"))")
        return "(" + chunks.joined(separator: " || ") + ")::text"
    }

    /// The SQL expression that reads `column` from the JSON body in `parameter`.
    private static func input(_ column: ServerColumn, parameter: String) -> String {
        let text = "(\(parameter)::jsonb ->> \(literal(column.name)))"
        switch column.type {
        case .text, .date: return text
        case .integer: return "\(text)::bigint"
        case .double: return "\(text)::float8"
        case .decimal: return "\(text)::numeric"
        case .boolean: return "\(text)::boolean"
        case .data: return "decode(\(text), 'base64')"
        case .json: return "NULLIF(\(parameter)::jsonb -> \(literal(column.name)), 'null'::jsonb)"
        }
    }

    static func sqlType(_ column: ServerColumn, in model: ServerModel, schema: ServerSchema) -> String {
        if let foreignKey = model.foreignKey(column: column.name) {
            return schema.model(table: foreignKey.targetTable)?.idType == .int ? "bigint" : "text"
        }
        switch column.type {
        case .text, .date: return "text"
        case .integer: return "bigint"
        case .double: return "float8"
        case .decimal: return "numeric"
        case .boolean: return "boolean"
        case .data: return "bytea"
        case .json: return "jsonb"
        }
    }

    /// `{table}_{column}_{kind}`, or a hashed name when that is longer than PostgreSQL's 63 bytes.
    static func constraintName(_ table: String, _ column: String, _ kind: String) -> String {
        let name = "\(table)_\(column)_\(kind)"
        guard name.utf8.count > 63 else { return name }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let prefix = String(decoding: Array(table.utf8.prefix(30)), as: UTF8.self)
        return "\(prefix)_\(String(hash, radix: 16))_\(kind)"
    }

    // MARK: Common tables

    /// The tables and triggers every schema has: schema marker, change sequence, idempotency
    /// records, tombstones and audit history.
    static let commonSchema: [String] = [
        "CREATE SEQUENCE modelsync_change_seq",
        """
        CREATE TABLE modelsync_idempotency (
          "tenant_id" text NOT NULL,
          "scope" text NOT NULL,
          "key" text NOT NULL,
          "request_hash" text NOT NULL,
          "status" integer,
          "response" text,
          "created_at" timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY ("tenant_id", "scope", "key")
        )
        """,
        """
        CREATE TABLE modelsync_tombstones (
          "tenant_id" text NOT NULL,
          "table_name" text NOT NULL,
          "record_id" text NOT NULL,
          "_xid" xid8 NOT NULL,
          "_seq" bigint NOT NULL,
          PRIMARY KEY ("tenant_id", "table_name", "record_id")
        )
        """,
        "CREATE INDEX modelsync_tombstones_changes ON modelsync_tombstones (\"tenant_id\", \"table_name\", \"_xid\", \"_seq\")",
        """
        CREATE TABLE modelsync_history (
          "seq" bigserial PRIMARY KEY,
          "tenant_id" text NOT NULL,
          "at" timestamptz NOT NULL DEFAULT now(),
          "actor" text NOT NULL,
          "operation" text NOT NULL,
          "model" text NOT NULL,
          "record_id" text NOT NULL,
          "before" jsonb,
          "after" jsonb
        )
        """,
        "CREATE INDEX modelsync_history_record ON modelsync_history (\"tenant_id\", \"model\", \"record_id\", \"seq\")",
        """
        CREATE FUNCTION modelsync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW."_xid" := pg_current_xact_id();
          NEW."_seq" := nextval('modelsync_change_seq');
          IF TG_OP = 'UPDATE' THEN
            NEW."_version" := OLD."_version" + 1;
            NEW."_idempotency_key" := OLD."_idempotency_key";
          ELSE
            NEW."_version" := 1;
          END IF;
          RETURN NEW;
        END $$
        """,
        """
        CREATE FUNCTION modelsync_track() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          v_actor text := coalesce(current_setting('modelsync.actor', true), '');
        BEGIN
          IF TG_OP = 'INSERT' THEN
            DELETE FROM modelsync_tombstones
              WHERE "tenant_id" = NEW."tenant_id" AND "table_name" = TG_TABLE_NAME AND "record_id" = NEW."id"::text;
            INSERT INTO modelsync_history ("tenant_id", "actor", "operation", "model", "record_id", "before", "after")
              VALUES (NEW."tenant_id", v_actor, 'create', TG_TABLE_NAME, NEW."id"::text, NULL,
                      to_jsonb(NEW) - 'tenant_id' - '_xid' - '_seq');
          ELSIF TG_OP = 'UPDATE' THEN
            INSERT INTO modelsync_history ("tenant_id", "actor", "operation", "model", "record_id", "before", "after")
              VALUES (NEW."tenant_id", v_actor, 'update', TG_TABLE_NAME, NEW."id"::text,
                      to_jsonb(OLD) - 'tenant_id' - '_xid' - '_seq', to_jsonb(NEW) - 'tenant_id' - '_xid' - '_seq');
          ELSE
            INSERT INTO modelsync_tombstones ("tenant_id", "table_name", "record_id", "_xid", "_seq")
              VALUES (OLD."tenant_id", TG_TABLE_NAME, OLD."id"::text, pg_current_xact_id(), nextval('modelsync_change_seq'))
              ON CONFLICT ("tenant_id", "table_name", "record_id")
              DO UPDATE SET "_xid" = EXCLUDED."_xid", "_seq" = EXCLUDED."_seq";
            INSERT INTO modelsync_history ("tenant_id", "actor", "operation", "model", "record_id", "before", "after")
              VALUES (OLD."tenant_id", v_actor, 'delete', TG_TABLE_NAME, OLD."id"::text,
                      to_jsonb(OLD) - 'tenant_id' - '_xid' - '_seq', NULL);
          END IF;
          -- Wakes the live change streams of this tenant when the transaction commits (one
          -- notification per tenant and transaction: PostgreSQL folds identical ones).
          PERFORM pg_notify('modelsync_changes', CASE WHEN TG_OP = 'DELETE' THEN OLD."tenant_id" ELSE NEW."tenant_id" END);
          RETURN NULL;
        END $$
        """,
        // How far back changes are kept: tombstones up to this position were pruned, so a listing or
        // a live stream from an earlier position would miss deletions (see SyncService+Live.swift).
        """
        CREATE TABLE modelsync_retention (
          "singleton" boolean PRIMARY KEY DEFAULT true CHECK ("singleton"),
          "_xid" xid8 NOT NULL,
          "_seq" bigint NOT NULL
        )
        """,
    ]
}

/// `"name"`, with inner quotes doubled.
func quoted(_ identifier: String) -> String {
    "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// `'text'`, with inner quotes doubled.
func literal(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
}
