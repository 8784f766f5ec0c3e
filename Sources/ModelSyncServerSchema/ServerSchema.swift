/// The server side of a set of models: what the generated sync server stores in PostgreSQL and
/// serves over HTTP. The generator builds it from `*.modelsync.yaml` specs (and writes it into the
/// generated server file); `modelsync-server` builds the same description at run time.
public struct ServerSchema: Sendable, Hashable, Codable {
    /// Every model, parents before children where the references allow it.
    public var models: [ServerModel]
    /// The version of the models' shape (the spec's `options.schemaVersion`); clients send theirs in
    /// the `ModelSync-Schema-Version` header.
    public var schemaVersion: Int
    /// The oldest client schema version served (the spec's `options.oldestClientSchemaVersion`):
    /// a client from it up to `schemaVersion - 1` sends and receives the earlier shape that
    /// `renamedFrom:`, `removed:`, `default:` and `mapping:` describe; an older one gets `426`.
    public var oldestClientSchemaVersion: Int
    /// The tables of models an earlier version had and this one removes (`removed:`).
    public var removedTables: [String]

    /// A schema of `models`. `oldestClientSchemaVersion` defaults to `schemaVersion` (no grace period).
    public init(
        models: [ServerModel], schemaVersion: Int = 1, oldestClientSchemaVersion: Int? = nil,
        removedTables: [String] = []
    ) {
        self.models = models
        self.schemaVersion = schemaVersion
        self.oldestClientSchemaVersion = min(oldestClientSchemaVersion ?? schemaVersion, schemaVersion)
        self.removedTables = removedTables
    }

    /// The schema as the database stores it (`modelsync_schema`): its shape only, without what the
    /// spec says about the earlier version.
    public var shape: ServerSchema {
        var copy = self
        copy.oldestClientSchemaVersion = schemaVersion
        copy.removedTables = []
        for index in copy.models.indices {
            copy.models[index].previousTable = nil
            copy.models[index].previousPath = nil
            copy.models[index].removedColumns = []
            for column in copy.models[index].columns.indices {
                copy.models[index].columns[column].renamedFrom = nil
                copy.models[index].columns[column].defaultValue = nil
                copy.models[index].columns[column].valueMapping = [:]
            }
        }
        return copy
    }

    /// The model stored in `table`, if any.
    public func model(table: String) -> ServerModel? {
        models.first { $0.table == table }
    }
}

/// One model on the server: its table, its collection path and its columns.
public struct ServerModel: Sendable, Hashable, Codable {
    /// The spec's model name (`Thread`).
    public var name: String
    /// The PostgreSQL table (`thread`); also the `model` column of the audit history.
    public var table: String
    /// The collection path (`/threads`), without a trailing slash; a record is `{path}/{id}`.
    public var path: String
    /// The JSON type of IDs on the wire, and the PostgreSQL type of the `id` column.
    public var idType: ServerIDType
    /// Who makes IDs: the client (`id` required in a create) or the server.
    public var idGeneration: ServerIDGeneration
    /// Every column but `id`, foreign keys included, named by their wire keys.
    public var columns: [ServerColumn]
    /// One per `belongsTo`: a column of `columns` that references another model.
    public var foreignKeys: [ServerForeignKey]
    /// The table of this model in the earlier version (`renamedFrom:`), if it was renamed.
    public var previousTable: String?
    /// The collection path of the earlier version, if it was renamed and its path followed its name:
    /// older clients in the grace period still use it.
    public var previousPath: String?
    /// Columns (wire keys) of the earlier version that this one removes (`removed:`).
    public var removedColumns: [String]

    /// A model description; `path` loses a trailing slash.
    public init(
        name: String, table: String, path: String, idType: ServerIDType, idGeneration: ServerIDGeneration,
        columns: [ServerColumn], foreignKeys: [ServerForeignKey], previousTable: String? = nil,
        previousPath: String? = nil, removedColumns: [String] = []
    ) {
        self.previousTable = previousTable
        self.previousPath = previousPath
        self.removedColumns = removedColumns
        self.name = name
        self.table = table
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        self.idType = idType
        self.idGeneration = idGeneration
        self.columns = columns
        self.foreignKeys = foreignKeys
    }

    /// The foreign key stored in `column`, if it is one.
    public func foreignKey(column: String) -> ServerForeignKey? {
        foreignKeys.first { $0.column == column }
    }
}

/// The JSON type of a model's IDs.
public enum ServerIDType: String, Sendable, Hashable, Codable {
    /// JSON integers; `bigint` (`bigserial` for server IDs) in PostgreSQL.
    case int
    /// JSON strings; `text` in PostgreSQL.
    case string
}

/// Who makes a model's IDs.
public enum ServerIDGeneration: String, Sendable, Hashable, Codable {
    /// The client sends the `id` of a new record.
    case client
    /// The server gives a new record its `id` (a `bigserial` value or a random UUID).
    case server
}

/// A column of a model, named by its wire key.
public struct ServerColumn: Sendable, Hashable, Codable {
    /// The wire key, which is also the PostgreSQL column name (`created_at`).
    public var name: String
    public var type: ServerColumnType
    public var isOptional: Bool
    /// Unique per tenant.
    public var isUnique: Bool
    /// The allowed values of an enumeration field; empty for other fields.
    public var allowedValues: [String]
    /// The column's wire key in the earlier version (`renamedFrom:`), if it was renamed.
    public var renamedFrom: String?
    /// The value (JSON text) of a required field for rows and requests that have none (`default:`).
    public var defaultValue: String?
    /// Earlier values and the enumeration case each becomes (`mapping:`).
    public var valueMapping: [String: String]

    /// A column description.
    public init(
        name: String, type: ServerColumnType, isOptional: Bool, isUnique: Bool = false, allowedValues: [String] = [],
        renamedFrom: String? = nil, defaultValue: String? = nil, valueMapping: [String: String] = [:]
    ) {
        self.renamedFrom = renamedFrom
        self.defaultValue = defaultValue
        self.valueMapping = valueMapping
        self.name = name
        self.type = type
        self.isOptional = isOptional
        self.isUnique = isUnique
        self.allowedValues = allowedValues
    }
}

/// How a field is stored in PostgreSQL and written on the wire.
public enum ServerColumnType: String, Sendable, Hashable, Codable {
    /// JSON string; `text`.
    case text
    /// JSON integer; `bigint`.
    case integer
    /// JSON number; `float8` (the client's `Double`, exactly).
    case double
    /// JSON number with every digit kept; `numeric`.
    case decimal
    /// JSON `true`/`false`; `boolean`.
    case boolean
    /// ISO 8601 text, kept exactly as the client wrote it (`text` with a format check): `timestamptz`
    /// keeps only microseconds and years 4713 BC to 294276 AD, the client's dates carry every digit of
    /// a `Double` and any year.
    case date
    /// Base64 text on the wire; `bytea`.
    case data
    /// A JSON array (or other JSON value); `jsonb`.
    case json
}

/// A `belongsTo` reference, enforced by PostgreSQL within the tenant.
public struct ServerForeignKey: Sendable, Hashable, Codable {
    /// The referencing column (a wire key of the model's columns).
    public var column: String
    /// The referenced model's table.
    public var targetTable: String
    public var isOptional: Bool
    public var onDelete: ServerDeleteRule

    /// A foreign key description.
    public init(column: String, targetTable: String, isOptional: Bool, onDelete: ServerDeleteRule) {
        self.column = column
        self.targetTable = targetTable
        self.isOptional = isOptional
        self.onDelete = onDelete
    }
}

/// What deleting a referenced record does to the records that reference it.
public enum ServerDeleteRule: String, Sendable, Hashable, Codable {
    /// They are deleted too (and leave tombstones).
    case cascade
    /// Their reference becomes `null` (a new version of each).
    case nullify
    /// The delete is refused with a `409` while they exist.
    case restrict
}
