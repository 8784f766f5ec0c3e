/// The server side of a set of models: what the generated sync server stores in PostgreSQL and
/// serves over HTTP. The generator builds it from `*.modelsync.yaml` specs (and writes it into the
/// generated server file); `modelsync-server` builds the same description at run time.
public struct ServerSchema: Sendable, Hashable {
    /// Every model, parents before children where the references allow it.
    public var models: [ServerModel]

    /// A schema of `models`.
    public init(models: [ServerModel]) {
        self.models = models
    }

    /// The model stored in `table`, if any.
    public func model(table: String) -> ServerModel? {
        models.first { $0.table == table }
    }
}

/// One model on the server: its table, its collection path and its columns.
public struct ServerModel: Sendable, Hashable {
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

    /// A model description; `path` loses a trailing slash.
    public init(
        name: String, table: String, path: String, idType: ServerIDType, idGeneration: ServerIDGeneration,
        columns: [ServerColumn], foreignKeys: [ServerForeignKey]
    ) {
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
public enum ServerIDType: String, Sendable, Hashable {
    /// JSON integers; `bigint` (`bigserial` for server IDs) in PostgreSQL.
    case int
    /// JSON strings; `text` in PostgreSQL.
    case string
}

/// Who makes a model's IDs.
public enum ServerIDGeneration: String, Sendable, Hashable {
    /// The client sends the `id` of a new record.
    case client
    /// The server gives a new record its `id` (a `bigserial` value or a random UUID).
    case server
}

/// A column of a model, named by its wire key.
public struct ServerColumn: Sendable, Hashable {
    /// The wire key, which is also the PostgreSQL column name (`created_at`).
    public var name: String
    public var type: ServerColumnType
    public var isOptional: Bool
    /// Unique per tenant.
    public var isUnique: Bool
    /// The allowed values of an enumeration field; empty for other fields.
    public var allowedValues: [String]

    /// A column description.
    public init(
        name: String, type: ServerColumnType, isOptional: Bool, isUnique: Bool = false, allowedValues: [String] = []
    ) {
        self.name = name
        self.type = type
        self.isOptional = isOptional
        self.isUnique = isUnique
        self.allowedValues = allowedValues
    }
}

/// How a field is stored in PostgreSQL and written on the wire.
public enum ServerColumnType: String, Sendable, Hashable {
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
public struct ServerForeignKey: Sendable, Hashable {
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
public enum ServerDeleteRule: String, Sendable, Hashable {
    /// They are deleted too (and leave tombstones).
    case cascade
    /// Their reference becomes `null` (a new version of each).
    case nullify
    /// The delete is refused with a `409` while they exist.
    case restrict
}
