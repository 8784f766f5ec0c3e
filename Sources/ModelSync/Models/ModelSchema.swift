/// Who decides a record's permanent ID.
public enum IDGeneration: String, Sendable, Hashable, Codable {
    /// The client makes the ID when the record is created; it never changes.
    case client
    /// The server assigns the ID when it stores the record; until then the record has a temporary
    /// ID, which the store replaces everywhere once the server's ID is known.
    case server
}

/// What happens to records that reference a deleted record.
public enum DeleteRule: String, Sendable, Hashable, Codable {
    /// Referencing records are deleted too (and their own references handled in turn).
    case cascade
    /// The referencing foreign key is set to `nil` (the foreign key must be optional).
    case nullify
    /// The delete is refused while any record references the record.
    case restrict
}

/// How a field is stored in SQLite.
public enum ColumnType: String, Sendable, Hashable, Codable {
    case text
    case integer
    case double
    case boolean
    /// A `Date`, stored as seconds since 2001-01-01 (exact round trip).
    case date
    case blob
    /// An array, stored as JSON text.
    case json
    /// A `Decimal`, stored as text so that no digit is lost.
    case decimal

    /// The SQLite column type.
    public var sqlType: String {
        switch self {
        case .text, .json, .decimal: return "TEXT"
        case .integer: return "INTEGER"
        case .double, .date: return "DOUBLE"
        case .boolean: return "BOOLEAN"
        case .blob: return "BLOB"
        }
    }
}

/// A stored field of a model (every column but `id`, foreign keys included).
public struct FieldSchema: Sendable, Hashable {
    /// The column name, equal to the Swift property name and the local JSON key.
    public let name: String
    public let type: ColumnType
    public let isOptional: Bool
    public let isUnique: Bool
    /// The column of this field in the earlier version it was renamed from (`renamedFrom:`).
    public let renamedFrom: String?
    /// The value a required field takes where an earlier version had none: rows and queued changes
    /// from before the field was added, or before it became required.
    public let defaultValue: FieldDefault?
    /// The cases of an enum field (its stored raw values), or `nil` for other fields.
    public let enumCases: [String]?
    /// Earlier stored values and the enum case each becomes (`mapping:`), for a field that became an
    /// enum or whose cases were renamed.
    public let valueMapping: [String: String]

    public init(
        name: String, type: ColumnType, isOptional: Bool, isUnique: Bool, renamedFrom: String? = nil,
        defaultValue: FieldDefault? = nil, enumCases: [String]? = nil, valueMapping: [String: String] = [:]
    ) {
        self.name = name
        self.type = type
        self.isOptional = isOptional
        self.isUnique = isUnique
        self.renamedFrom = renamedFrom
        self.defaultValue = defaultValue
        self.enumCases = enumCases
        self.valueMapping = valueMapping
    }
}

/// A foreign key of this model: the `<relationship>Id` column of a `belongsTo` relationship.
public struct ForeignKeySchema: Sendable, Hashable {
    /// The foreign-key column of this model's table.
    public let column: String
    /// The table of the referenced model.
    public let table: String
    public let isOptional: Bool
    public let onDelete: DeleteRule

    public init(column: String, table: String, isOptional: Bool, onDelete: DeleteRule) {
        self.column = column
        self.table = table
        self.isOptional = isOptional
        self.onDelete = onDelete
    }
}

/// A foreign key of another model (or of this one) that references this model: the list the store
/// walks to replace a temporary ID and to apply delete rules, without reflection or string search.
public struct ForeignKeyReference: Sendable, Hashable {
    /// The table that holds the foreign key.
    public let table: String
    /// The foreign-key column in that table.
    public let column: String
    public let onDelete: DeleteRule

    public init(table: String, column: String, onDelete: DeleteRule) {
        self.table = table
        self.column = column
        self.onDelete = onDelete
    }
}

/// The JSON type of IDs on the wire.
public enum RemoteIDType: String, Sendable, Hashable, Codable {
    case string
    case int
}

/// How JSON keys are written on the wire.
public enum FieldNaming: String, Sendable, Hashable, Codable {
    case camelCase
    case snakeCase

    /// The wire key of a property: `threadId` stays `threadId`, or becomes `thread_id`.
    public func wireKey(for property: String) -> String {
        guard self == .snakeCase else { return property }
        var result = ""
        for character in property {
            if character.isUppercase {
                if !result.isEmpty { result.append("_") }
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }
}

/// The REST conventions of a model, from the spec's `remote:` blocks.
public struct RemoteSchema: Sendable, Hashable {
    /// The collection path (kept verbatim); an item is `{path}/{id}`.
    public var path: String
    public var idType: RemoteIDType
    public var fieldNaming: FieldNaming

    public init(path: String, idType: RemoteIDType, fieldNaming: FieldNaming) {
        self.path = path
        self.idType = idType
        self.fieldNaming = fieldNaming
    }
}

/// Everything the runtime knows about a model, generated from its spec.
public struct ModelSchema: Sendable {
    /// The Swift type name.
    public let name: String
    public let tableName: String
    public let idGeneration: IDGeneration
    public let idFormat: IDFormat
    /// Prepended to client-generated IDs (may be empty).
    public let idPrefix: String
    /// Stored fields in column order, foreign keys included, `id` excluded.
    public let fields: [FieldSchema]
    /// The foreign keys of this model.
    public let foreignKeys: [ForeignKeySchema]
    /// Every foreign key, in any model, that references this model.
    public let referencedBy: [ForeignKeyReference]
    public let remote: RemoteSchema
    /// The table of this model in the earlier version it was renamed from (`renamedFrom:`).
    public let renamedFrom: String?
    /// Columns of an earlier version that this version removes (`removed:`); a removed belongsTo
    /// may be named by its relationship (`owner` for the column `ownerId`).
    public let removedFields: [String]
    /// The spec's `options.schemaVersion`: the version of the models' shape the app speaks (1 when
    /// the spec does not say). `RESTRemote` sends the highest of its models' versions unless its
    /// configuration names one.
    public let schemaVersion: Int
    /// The tables of the models the spec removes (its top-level `removed:`), the same in every
    /// model of the spec: a ``SyncStore`` opening a database built by an earlier version of the
    /// spec drops them (their rows and queued changes) without the app naming them.
    public let removedModels: [String]

    public init(
        name: String,
        tableName: String,
        idGeneration: IDGeneration,
        idFormat: IDFormat,
        idPrefix: String,
        fields: [FieldSchema],
        foreignKeys: [ForeignKeySchema],
        referencedBy: [ForeignKeyReference],
        remote: RemoteSchema,
        renamedFrom: String? = nil,
        removedFields: [String] = [],
        schemaVersion: Int = 1,
        removedModels: [String] = []
    ) {
        self.name = name
        self.tableName = tableName
        self.idGeneration = idGeneration
        self.idFormat = idFormat
        self.idPrefix = idPrefix
        self.fields = fields
        self.foreignKeys = foreignKeys
        self.referencedBy = referencedBy
        self.remote = remote
        self.renamedFrom = renamedFrom
        self.removedFields = removedFields
        self.schemaVersion = schemaVersion
        self.removedModels = removedModels
    }
}

/// The default value of a required field, as the store writes it into rows and queued changes of an
/// earlier version that lack the field (see "Evolving your models" in the spec format).
public enum FieldDefault: Sendable, Hashable, Codable {
    case text(String)
    case integer(Int64)
    case double(Double)
    case boolean(Bool)
    /// A `Decimal`, as its text.
    case decimal(String)
}
