import Foundation

/// A model of a spec as tools other than the code generator need it: a server that serves the spec
/// without compiled models (`modelsync-reference-server --spec`), or the conformance kit, which builds
/// sample records from field types and checks a server against the protocol.
///
/// Values come from the validated model graph, with every default of the spec format applied (table
/// names, `/table` paths, ID types and formats, delete rules).
public struct SpecModel: Sendable, Hashable {
    /// Who decides a record's permanent ID (`idGeneration:`).
    public enum IDGeneration: String, Sendable, Hashable {
        case client
        case server
    }

    /// The JSON type of IDs on the wire (`remote.idType:`).
    public enum IDType: String, Sendable, Hashable {
        case string
        case int
    }

    /// How JSON keys are written on the wire (`remote.fieldNaming:`).
    public enum FieldNaming: String, Sendable, Hashable {
        case camelCase
        case snakeCase

        /// The wire key of a property, by the runtime's rule (`FieldNaming.wireKey(for:)` of
        /// ModelSync): `threadId` stays `threadId`, or becomes `thread_id`.
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

    /// What happens to referencing records when a record is deleted (`onDelete:`).
    public enum DeleteRule: String, Sendable, Hashable {
        case cascade
        case nullify
        case restrict
    }

    /// A stored field (every column but `id`, foreign keys included), in column order.
    public struct Field: Sendable, Hashable {
        /// The property and column name (`createdAt`, `threadId`).
        public var name: String
        /// The JSON key on the wire (`created_at` under `fieldNaming: snake_case`).
        public var wireKey: String
        /// The scalar type (`String`, `Int`, `Int64`, `Double`, `Bool`, `Date`, `Data`, `UUID`, `URL`,
        /// `Decimal`), the enum's type name for an enum field, or `ID` for a foreign key.
        public var type: String
        /// The runtime's column type: `text`, `integer`, `double`, `boolean`, `date`, `blob`, `json`
        /// (arrays) or `decimal`.
        public var columnType: String
        /// An array of `type` (`"[String]"` in the spec).
        public var isArray: Bool
        public var isOptional: Bool
        public var isUnique: Bool
        /// The cases of an enum field (their wire values), `nil` for other fields.
        public var enumCases: [String]?
        /// The model a foreign-key field references, `nil` for other fields.
        public var referencedModel: String?
    }

    /// A foreign key: the `<relationship>Id` column of a `belongsTo` relationship.
    public struct ForeignKey: Sendable, Hashable {
        /// The column (`threadId`).
        public var column: String
        /// The JSON key on the wire (`thread_id` under `fieldNaming: snake_case`).
        public var wireKey: String
        /// The referenced model's name (`Thread`).
        public var targetModel: String
        /// The referenced model's table (`thread`).
        public var targetTable: String
        public var isOptional: Bool
        public var onDelete: DeleteRule
    }

    /// A foreign key of some model that references this one.
    public struct Reference: Sendable, Hashable {
        /// The table holding the foreign key.
        public var table: String
        /// The foreign-key column in that table.
        public var column: String
        public var onDelete: DeleteRule
    }

    /// The model's name in the spec (the Swift type name).
    public var name: String
    public var tableName: String
    public var idGeneration: IDGeneration
    /// The format of client-generated IDs: `uuid4`, `uuidv7`, `ulid` or `cuid2`.
    public var idFormat: String
    /// Prepended to client-generated IDs (may be empty).
    public var idPrefix: String
    /// The REST collection path (`/threads`); a record is `{path}/{id}`.
    public var path: String
    public var idType: IDType
    public var fieldNaming: FieldNaming
    /// Stored fields in column order, foreign keys included (after the declared fields), `id` excluded.
    public var fields: [Field]
    public var foreignKeys: [ForeignKey]
    /// Every foreign key, in any model, that references this model.
    public var referencedBy: [Reference]
}

extension ModelSyncGenerator {
    /// The models of one target's specs, parents before children (a model comes after every model
    /// its foreign keys reference, except itself).
    ///
    /// - Throws: ``GenerationFailed`` with every diagnostic when a spec has an error.
    /// - Returns: The models and the warnings of the specs.
    public static func models(_ sources: [SpecSource], moduleName: String? = nil) throws -> (
        models: [SpecModel], warnings: [Diagnostic]
    ) {
        var collector = DiagnosticCollector()
        var specFiles: [SpecFile] = []
        guard let graph = translate(sources, moduleName: moduleName, diagnostics: &collector, specFiles: &specFiles)
        else {
            throw GenerationFailed(diagnostics: collector.sorted)
        }
        let models = graph.dependencyOrder.map { SpecModel(graph.models[$0]) }
        return (models, collector.sorted)
    }
}

extension SpecModel {
    init(_ model: GraphModel) {
        let naming: FieldNaming = model.fieldNaming == .camelCase ? .camelCase : .snakeCase
        let referenced = Dictionary(model.foreignKeys.map { ($0.column, $0.targetModel) }) { first, _ in first }
        self.init(
            name: model.name, tableName: model.tableName,
            idGeneration: model.idGeneration == .client ? .client : .server, idFormat: model.idFormat.rawValue,
            idPrefix: model.idPrefix, path: model.remotePath, idType: model.remoteIDType == .int ? .int : .string,
            fieldNaming: naming,
            fields: model.fields.map { field in
                let isArray = field.swiftType.hasPrefix("[")
                let target = referenced[field.name]
                let type =
                    target != nil ? "ID" : isArray ? String(field.swiftType.dropFirst().dropLast()) : field.swiftType
                return Field(
                    name: field.name, wireKey: naming.wireKey(for: field.name), type: type,
                    columnType: field.columnType, isArray: isArray, isOptional: field.isOptional,
                    isUnique: field.isUnique, enumCases: field.enumeration?.cases, referencedModel: target)
            },
            foreignKeys: model.foreignKeys.map {
                ForeignKey(
                    column: $0.column, wireKey: naming.wireKey(for: $0.column), targetModel: $0.targetModel,
                    targetTable: $0.targetTable, isOptional: $0.isOptional,
                    onDelete: DeleteRule(rawValue: $0.onDelete.rawValue) ?? .restrict)
            },
            referencedBy: model.referencedBy.map {
                Reference(
                    table: $0.table, column: $0.column,
                    onDelete: DeleteRule(rawValue: $0.onDelete.rawValue) ?? .restrict)
            })
    }
}
