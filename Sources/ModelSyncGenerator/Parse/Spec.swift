/// A value read from a spec, with the location of the YAML node it came from.
struct Located<Value> {
    var value: Value
    var location: SourceLocation
}

extension Located: Sendable where Value: Sendable {}

/// The access level of generated declarations (`options.accessModifier`).
public enum AccessModifier: String, CaseIterable, Sendable, Comparable {
    case `internal`
    case `package`
    case `public`

    /// The keyword and a space, or nothing for `internal` (the default level needs no keyword).
    var prefix: String { self == .internal ? "" : rawValue + " " }

    public static func < (lhs: AccessModifier, rhs: AccessModifier) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The spec-level spellings of the runtime's enums.
enum IDGenerationValue: String, CaseIterable, Sendable {
    case client
    case server
}

enum IDFormatValue: String, CaseIterable, Sendable {
    case uuid4
    case uuidv7
    case ulid
    case cuid2
}

enum FieldNamingValue: String, CaseIterable, Sendable {
    case camelCase
    case snakeCase = "snake_case"

    /// The case of the runtime's `FieldNaming`.
    var runtimeCase: String { self == .camelCase ? "camelCase" : "snakeCase" }
}

enum RemoteIDTypeValue: String, CaseIterable, Sendable {
    case string
    case int
}

enum DeleteRuleValue: String, CaseIterable, Sendable {
    case cascade
    case nullify
    case restrict
}

/// One parsed `*.modelsync.yaml` file: the shape is checked, names are not resolved yet.
struct SpecFile {
    var path: String
    /// The file name, such as `Chat.modelsync.yaml`.
    var fileName: String
    var accessModifier: AccessModifier = .internal
    var templates: Located<String>?
    /// The version of the models' shape the app sends to the server (`options.schemaVersion`).
    var schemaVersion: Int?
    /// The oldest client schema version the generated server serves (`options.oldestClientSchemaVersion`).
    var oldestClientSchemaVersion: Located<Int>?
    var defaultIDGeneration: IDGenerationValue?
    var defaultIDFormat: IDFormatValue?
    var fieldNaming: FieldNamingValue = .camelCase
    var models: [ModelSpec] = []
    /// Models of an earlier version that this version removes (`removed:` at the top level).
    var removedModels: [Located<String>] = []
}

struct ModelSpec {
    var name: Located<String>
    var idGeneration: IDGenerationValue?
    var idFormat: IDFormatValue?
    var idPrefix: Located<String>?
    var remotePath: Located<String>?
    var remoteIDType: RemoteIDTypeValue?
    var fields: [FieldSpec] = []
    var relationships: [RelationshipSpec] = []
    /// The model's name in an earlier version (`renamedFrom:`).
    var renamedFrom: Located<String>?
    /// Fields and relationships of an earlier version that this version removes (`removed:`).
    var removed: [Located<String>] = []
    /// Relationships declared but not readable (an error was reported): name -> where that error is.
    /// Later errors that only follow from them (an inverse naming one) are ordered after the cause.
    var unreadableRelationships: [String: SourceLocation] = [:]
}

/// A field type as written: `String`, `Date?`, `[String]`, `[Int]?`.
struct TypeSpec {
    var name: String
    var isArray: Bool
    var isOptional: Bool
    var location: SourceLocation
}

struct FieldSpec {
    enum Kind {
        case type(TypeSpec)
        case enumeration([Located<String>], isOptional: Bool)
    }

    var name: Located<String>
    var kind: Kind
    var isUnique: Bool
    /// The `default:` scalar; `nil` when absent.
    var defaultValue: Located<String>?
    var defaultIsNull: Bool
    /// The field's name in an earlier version (`renamedFrom:`).
    var renamedFrom: Located<String>? = nil
    /// How stored values of an earlier version become cases of this enum field (`mapping:`).
    var mapping: [(from: Located<String>, to: Located<String>)] = []
}

struct RelationshipSpec {
    enum Kind: String {
        case belongsTo
        case hasMany
        case hasOne
        case manyToMany
    }

    var name: Located<String>
    var kind: Kind
    var target: Located<String>
    var isOptional: Bool
    var onDelete: Located<DeleteRuleValue>?
    var inverse: Located<String>?
    var through: Located<String>?
    /// A belongsTo relationship's name in an earlier version (`renamedFrom:`).
    var renamedFrom: Located<String>? = nil
}
