/// The keys the spec format accepts at each level: the single source of truth for the parser's
/// unknown-key check and for the published JSON Schema.
enum SpecKeys {
    static let file = ["version", "options", "defaults", "remote", "models", "removed"]
    static let options = ["accessModifier", "templates", "schemaVersion", "oldestClientSchemaVersion"]
    static let defaults = ["idGeneration", "idFormat"]
    static let fileRemote = ["fieldNaming"]
    static let model = [
        "idGeneration", "idFormat", "idPrefix", "remote", "fields", "relationships", "renamedFrom", "removed",
    ]
    static let modelRemote = ["path", "idType"]
    static let field = ["type", "enum", "unique", "default", "optional", "renamedFrom", "mapping"]
    static let relationshipKinds = ["belongsTo", "hasMany", "hasOne", "manyToMany"]
    static let relationship = relationshipKinds + ["optional", "onDelete", "inverse", "through", "renamedFrom"]

    /// The keys each relationship kind accepts besides its kind key.
    static func relationshipOptions(for kind: RelationshipSpec.Kind) -> [String] {
        switch kind {
        case .belongsTo: return ["optional", "onDelete", "renamedFrom"]
        case .hasMany, .hasOne: return ["inverse"]
        case .manyToMany: return ["through"]
        }
    }

    /// The scalar field types.
    static let scalarTypes = ["String", "Int", "Int64", "Double", "Bool", "Date", "Data", "UUID", "URL", "Decimal"]
}
