/// Stage 2's output: every model of a target with resolved types, foreign keys, inverse
/// relationships and dependency order. Nothing here is about text layout.
struct ModelGraph: Sendable {
    var files: [GraphFile]
    /// All models, in declaration order (files sorted by path, models in file order).
    var models: [GraphModel]
    /// Indexes into `models`, parents before children.
    var dependencyOrder: [Int]
    /// The tables of models an earlier version had and this one removes (`removed:` at the top level).
    var removedTables: [String] = []
    /// The highest `options.schemaVersion` of the files (1 when none says).
    var schemaVersion = 1
    /// `options.oldestClientSchemaVersion` (the lowest any file says), or `nil`: no grace period.
    var oldestClientSchemaVersion: Int? = nil
}

struct GraphFile: Sendable {
    var path: String
    var fileName: String
    /// `Chat.modelsync.yaml` -> `Chat.modelsync.swift`.
    var outputName: String
    var access: AccessModifier
    /// The user template folder (absolute or relative to the working directory), if any.
    var templatesDirectory: String?
    var modelIndexes: [Int]
}

struct GraphModel: Sendable {
    var name: String
    var fileIndex: Int
    var tableName: String
    /// The `SyncStore` accessor: `threadArtifacts`.
    var accessor: String
    var idGeneration: IDGenerationValue
    var idFormat: IDFormatValue
    var idPrefix: String
    var remotePath: String
    var remoteIDType: RemoteIDTypeValue
    var fieldNaming: FieldNamingValue
    /// Declared fields, then one foreign key per belongsTo, in relationship order.
    var fields: [GraphField]
    var foreignKeys: [GraphForeignKey]
    var referencedBy: [GraphReference] = []
    var resolvers: [GraphResolver] = []
    /// The table of this model in an earlier version (`renamedFrom:`), if it was renamed.
    var previousTableName: String? = nil
    /// Columns of an earlier version this one removes (`removed:`).
    var removedColumns: [String] = []
}

struct GraphEnum: Sendable {
    var typeName: String
    var cases: [String]
}

struct GraphField: Sendable {
    var name: String
    /// The Swift type, without the optional mark: `String`, `[String]`, `Role`, `User.ID`.
    var swiftType: String
    /// The runtime's `ColumnType` case.
    var columnType: String
    var isOptional: Bool
    var isUnique: Bool
    /// A Swift literal for the init parameter's default value.
    var defaultLiteral: String?
    var enumeration: GraphEnum?
    /// The column of this field in an earlier version (`renamedFrom:`), if it was renamed.
    var renamedFrom: String? = nil
    /// The runtime's `FieldDefault` for a required field with a `default:` (Swift text, `.text("x")`).
    var runtimeDefault: String? = nil
    /// The same `default:` as JSON text (`"open"`, `false`), for the generated server.
    var defaultJSON: String? = nil
    /// Earlier stored values and the enum case each becomes (`mapping:`), sorted by old value.
    var valueMapping: [(from: String, to: String)] = []
}

struct GraphForeignKey: Sendable {
    var column: String
    var relationship: String
    var targetModel: String
    var targetTable: String
    var isOptional: Bool
    var onDelete: DeleteRuleValue
}

struct GraphReference: Sendable {
    var table: String
    var column: String
    var onDelete: DeleteRuleValue
}

enum GraphResolver: Sendable {
    case belongsTo(name: String, target: Int, column: String, isOptional: Bool)
    case hasMany(name: String, target: Int, inverse: String, column: String)
    case hasOne(name: String, target: Int, inverse: String, column: String)
    case manyToMany(name: String, target: Int, through: String, from: String, to: String)

    /// The index of the model the resolver returns.
    var target: Int {
        switch self {
        case .belongsTo(_, let target, _, _), .hasMany(_, let target, _, _), .hasOne(_, let target, _, _),
            .manyToMany(_, let target, _, _, _):
            return target
        }
    }

    var name: String {
        switch self {
        case .belongsTo(let name, _, _, _), .hasMany(let name, _, _, _), .hasOne(let name, _, _, _),
            .manyToMany(let name, _, _, _, _):
            return name
        }
    }
}
