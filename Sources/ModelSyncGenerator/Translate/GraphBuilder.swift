import Foundation

/// Stage 2: resolves the parsed files of one target into a ``ModelGraph``, reporting every
/// semantic mistake (unknown types and models, inverses, join models, cycles, option conflicts).
struct GraphBuilder {
    private(set) var diagnostics = DiagnosticCollector()
    /// The name of the module the models are generated into, when known (messages spell
    /// `Module.Thread` with it).
    var moduleName: String?

    init(moduleName: String? = nil) {
        self.moduleName = moduleName
    }

    /// Type names the generated code relies on; a model may not take them.
    static let reservedTypeNames: Set<String> = [
        "SyncModel", "SyncStore", "Repository", "GeneratedModels", "ModelID", "ModelSchema", "FieldSchema",
        "ForeignKeySchema", "ForeignKeyReference", "RemoteSchema", "Column", "Columns", "ID", "Codable", "Row",
        "StatementColumnConvertible", "PersistenceContainer",
        "StoredDate", "StoredUUID", "StoredJSON", "StoredString", "StoredDouble", "StoredDecimal",
        "Sendable", "Hashable", "Identifiable", "CaseIterable", "DatabaseValueConvertible", "Optional", "Array",
    ]

    /// Member names the generated code declares on every model.
    static let reservedMemberNames: Set<String> = [
        "id", "ID", "Columns", "schema", "databaseTableName", "withID", "replacingReferences", "newID",
        "databaseValues", "row", "encode",
        "self", "Self", "super", "Type", "Protocol", "init", "deinit", "subscript",
    ]

    private struct ModelEntry {
        var spec: ModelSpec
        var file: SpecFile
        var fileIndex: Int
    }

    mutating func build(_ specFiles: [SpecFile]) -> ModelGraph? {
        let files = specFiles.sorted { $0.path < $1.path }
        var entries: [ModelEntry] = []
        var indexByName: [String: Int] = [:]
        var graphFiles: [GraphFile] = []
        var outputNames: [String: String] = [:]
        var duplicates: [ModelSpec] = []
        for (fileIndex, file) in files.enumerated() {
            let outputName = Self.outputName(for: file.fileName)
            if let other = outputNames[outputName] {
                diagnostics.error(
                    "two spec files would both generate '\(outputName)' (the other is \(other)); rename one",
                    at: SourceLocation(path: file.path, line: 1, column: 1))
            }
            outputNames[outputName] = file.path
            var templatesDirectory: String?
            if let templates = file.templates {
                let base = (file.path as NSString).deletingLastPathComponent
                let directory =
                    templates.value.hasPrefix("/")
                    ? templates.value : (base as NSString).appendingPathComponent(templates.value)
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue {
                    templatesDirectory = directory
                } else {
                    diagnostics.error(
                        "template folder '\(templates.value)' does not exist (looked in \(directory))",
                        at: templates.location)
                }
            }
            var graphFile = GraphFile(
                path: file.path, fileName: file.fileName, outputName: outputName, access: file.accessModifier,
                templatesDirectory: templatesDirectory, modelIndexes: [])
            for model in file.models {
                let name = model.name.value
                if let existing = indexByName[name] {
                    let first = entries[existing].spec.name.location
                    diagnostics.error(
                        "duplicate model '\(name)'; first declared at \(first.path):\(first.line):\(first.column)",
                        at: model.name.location)
                    duplicates.append(model)
                    continue
                }
                indexByName[name] = entries.count
                graphFile.modelIndexes.append(entries.count)
                entries.append(ModelEntry(spec: model, file: file, fileIndex: fileIndex))
            }
            graphFiles.append(graphFile)
        }
        let modelNames = entries.map(\.spec.name.value)
        // A duplicate model generates nothing, but its own mistakes are still reported.
        for model in duplicates {
            var nestedTypes: [String: SourceLocation] = [:]
            for field in model.fields { _ = resolveField(field, modelNames: modelNames, nestedTypes: &nestedTypes) }
            for relationship in model.relationships { _ = resolveModel(relationship.target, modelNames: modelNames) }
        }

        // Models: names, ID options, remote conventions, fields and foreign keys.
        var models: [GraphModel] = []
        var tables: [String: String] = [:]
        var accessors: [String: String] = [:]
        for entry in entries {
            let spec = entry.spec
            let name = spec.name.value
            checkModelName(spec.name)
            let table = Naming.snakeCase(name)
            let accessor = Naming.plural(Naming.lowerCamel(name))
            if let other = tables[table] {
                diagnostics.error(
                    "model '\(name)' would use table '\(table)', already used by model '\(other)'; rename one",
                    at: spec.name.location)
            } else if let other = accessors[accessor] {
                diagnostics.error(
                    "model '\(name)' would use store accessor '\(accessor)', already used by model '\(other)'",
                    at: spec.name.location)
            }
            tables[table] = tables[table] ?? name
            accessors[accessor] = accessors[accessor] ?? name

            let idGeneration = spec.idGeneration ?? entry.file.defaultIDGeneration ?? .client
            let idPrefix = spec.idPrefix?.value ?? ""
            if let prefix = spec.idPrefix {
                if prefix.value.hasPrefix("tmp_") {
                    diagnostics.error(
                        "idPrefix '\(prefix.value)' starts with 'tmp_', the prefix of temporary IDs; choose another "
                            + "prefix", at: prefix.location)
                } else if idGeneration == .server {
                    diagnostics.warning(
                        "idPrefix has no effect on model '\(name)': its IDs come from the server (idGeneration: server)",
                        at: prefix.location)
                }
            }
            var remotePath = "/" + Naming.plural(table)
            if let path = spec.remotePath {
                if !path.value.hasPrefix("/") {
                    diagnostics.error(
                        "remote path '\(path.value)' must start with '/'; did you mean '/\(path.value)'?",
                        at: path.location)
                }
                remotePath = path.value
            }

            var fields: [GraphField] = []
            var nestedTypes: [String: SourceLocation] = [:]
            for field in spec.fields {
                if let resolved = resolveField(field, modelNames: modelNames, nestedTypes: &nestedTypes) {
                    fields.append(resolved)
                }
            }
            for relationship in spec.relationships where Self.reservedMemberNames.contains(relationship.name.value) {
                diagnostics.error(
                    "relationship name '\(relationship.name.value)' is reserved by the generated code",
                    at: relationship.name.location)
            }
            var foreignKeys: [GraphForeignKey] = []
            let memberNames = Set(spec.fields.map(\.name.value) + spec.relationships.map(\.name.value))
            for relationship in spec.relationships where relationship.kind == .belongsTo {
                guard let targetIndex = resolveModel(relationship.target, modelNames: modelNames) else { continue }
                let targetName = modelNames[targetIndex]
                let column = relationship.name.value + "Id"
                let targetFile = entries[targetIndex].file
                if targetFile.accessModifier < entry.file.accessModifier {
                    diagnostics.error(
                        "\(entry.file.accessModifier.rawValue) model '\(name)' cannot have a foreign key to "
                            + "\(targetFile.accessModifier.rawValue) model '\(targetName)' (\(targetFile.fileName)); give "
                            + "both spec files the same accessModifier", at: relationship.target.location)
                }
                if memberNames.contains(column) {
                    diagnostics.error(
                        "belongsTo '\(relationship.name.value)' adds the foreign key '\(column)', which clashes with "
                            + "another field or relationship of '\(name)'", at: relationship.name.location)
                }
                let onDelete = relationship.onDelete?.value ?? .restrict
                if onDelete == .nullify, !relationship.isOptional, let rule = relationship.onDelete {
                    diagnostics.error(
                        "onDelete: nullify needs an optional foreign key; add 'optional: true' to '\(relationship.name.value)' "
                            + "or use cascade or restrict", at: rule.location)
                }
                if targetName == name, !relationship.isOptional {
                    diagnostics.error(
                        "required belongsTo '\(relationship.name.value)' points to its own model '\(name)': no first "
                            + "record could be created; add 'optional: true'", at: relationship.target.location)
                }
                foreignKeys.append(
                    GraphForeignKey(
                        column: column, relationship: relationship.name.value, targetModel: targetName,
                        targetTable: Naming.snakeCase(targetName), isOptional: relationship.isOptional,
                        onDelete: onDelete))
                fields.append(
                    GraphField(
                        name: column, swiftType: "\(targetName).ID", columnType: "text",
                        isOptional: relationship.isOptional, isUnique: false,
                        defaultLiteral: relationship.isOptional ? "nil" : nil, enumeration: nil))
            }
            models.append(
                GraphModel(
                    name: name, fileIndex: entry.fileIndex, tableName: table, accessor: accessor,
                    idGeneration: idGeneration, idFormat: spec.idFormat ?? entry.file.defaultIDFormat ?? .uuidv7,
                    idPrefix: idPrefix, remotePath: remotePath, remoteIDType: spec.remoteIDType ?? .string,
                    fieldNaming: entry.file.fieldNaming, fields: fields, foreignKeys: foreignKeys))
        }

        // referencedBy: every belongsTo pointing at a model, in declaration order.
        for (sourceIndex, model) in models.enumerated() {
            _ = sourceIndex
            for foreignKey in model.foreignKeys {
                guard let targetIndex = indexByName[foreignKey.targetModel] else { continue }
                models[targetIndex].referencedBy.append(
                    GraphReference(table: model.tableName, column: foreignKey.column, onDelete: foreignKey.onDelete))
            }
        }

        // Resolvers: declared relationships, then the other side of many-to-many relationships.
        var synthesized: [[GraphResolver]] = Array(repeating: [], count: models.count)
        for (modelIndex, entry) in entries.enumerated() {
            let spec = entry.spec
            for relationship in spec.relationships {
                guard
                    let targetIndex = resolveModel(
                        relationship.target, modelNames: modelNames, report: relationship.kind != .belongsTo)
                else { continue }
                switch relationship.kind {
                case .belongsTo:
                    models[modelIndex].resolvers.append(
                        .belongsTo(
                            name: relationship.name.value, target: targetIndex, column: relationship.name.value + "Id",
                            isOptional: relationship.isOptional))
                case .hasMany, .hasOne:
                    guard
                        let inverse = checkInverse(
                            relationship, owner: spec, target: entries[targetIndex].spec, modelNames: modelNames)
                    else {
                        continue
                    }
                    let column = inverse + "Id"
                    models[modelIndex].resolvers.append(
                        relationship.kind == .hasMany
                            ? .hasMany(
                                name: relationship.name.value, target: targetIndex, inverse: inverse, column: column)
                            : .hasOne(
                                name: relationship.name.value, target: targetIndex, inverse: inverse, column: column))
                case .manyToMany:
                    guard let through = relationship.through else {
                        diagnostics.error(
                            "manyToMany '\(relationship.name.value)' needs 'through:', the join model with a belongsTo "
                                + "to '\(spec.name.value)' and one to '\(relationship.target.value)'",
                            at: relationship.name.location)
                        continue
                    }
                    guard let joinIndex = resolveModel(through, modelNames: modelNames) else { continue }
                    guard
                        let (from, to) = joinColumns(
                            join: entries[joinIndex].spec, owner: spec.name.value, target: modelNames[targetIndex],
                            at: through.location, modelNames: modelNames)
                    else { continue }
                    models[modelIndex].resolvers.append(
                        .manyToMany(
                            name: relationship.name.value, target: targetIndex, through: through.value, from: from,
                            to: to))
                    let targetSpec = entries[targetIndex].spec
                    let declaredBack = targetSpec.relationships.contains {
                        $0.kind == .manyToMany && $0.target.value == spec.name.value
                            && $0.through?.value == through.value
                    }
                    if !declaredBack, targetIndex != modelIndex {
                        let backName = Naming.plural(Naming.lowerCamel(spec.name.value))
                        if targetSpec.fields.contains(where: { $0.name.value == backName })
                            || targetSpec.relationships.contains(where: { $0.name.value == backName })
                        {
                            diagnostics.error(
                                "manyToMany '\(relationship.name.value)' adds '\(backName)' to '\(targetSpec.name.value)', "
                                    + "which already has a member named '\(backName)'; declare the other side explicitly "
                                    + "with 'manyToMany: \(spec.name.value), through: \(through.value)'",
                                at: relationship.name.location)
                        } else {
                            synthesized[targetIndex].append(
                                .manyToMany(
                                    name: backName, target: modelIndex, through: through.value, from: to, to: from))
                        }
                    }
                }
            }
        }
        for index in models.indices { models[index].resolvers += synthesized[index] }

        let order = dependencyOrder(entries.map(\.spec), indexByName: indexByName)
        guard !diagnostics.hasErrors else { return nil }
        return ModelGraph(files: graphFiles, models: models, dependencyOrder: order)
    }

    static func outputName(for fileName: String) -> String {
        if fileName.hasSuffix(".yaml") { return String(fileName.dropLast(5)) + ".swift" }
        if fileName.hasSuffix(".yml") { return String(fileName.dropLast(4)) + ".swift" }
        return fileName + ".swift"
    }

    // MARK: Checks

    private mutating func checkModelName(_ name: Located<String>) {
        let value = name.value
        guard Naming.isIdentifier(value) else { return }  // reported by the parser
        if Naming.swiftKeywords.contains(value) || SpecKeys.scalarTypes.contains(value)
            || Self.reservedTypeNames.contains(value)
        {
            diagnostics.error(
                "model name '\(value)' clashes with a Swift or ModelSync type used by the generated code; rename the model",
                at: name.location)
        } else if let shadowing = ShadowedTypeNames.warning(forModel: value, moduleName: moduleName) {
            diagnostics.warning(shadowing, at: name.location)
        } else if let first = value.first, !first.isUppercase {
            diagnostics.warning(
                "model name '\(value)' should start with an uppercase letter; did you mean '\(Naming.upperFirst(value))'?",
                at: name.location)
        }
    }

    private mutating func resolveModel(
        _ name: Located<String>, modelNames: [String], report: Bool = true
    ) -> Int? {
        if let index = modelNames.firstIndex(of: name.value) { return index }
        if report {
            let hint = suggestion(for: name.value, among: modelNames)
            diagnostics.error("unknown model '\(name.value)'\(hint)", at: name.location)
        }
        return nil
    }

    private mutating func resolveField(
        _ field: FieldSpec, modelNames: [String], nestedTypes: inout [String: SourceLocation]
    ) -> GraphField? {
        let name = field.name.value
        if Self.reservedMemberNames.contains(name) {
            let extra = name == "id" ? " (every model has an 'id'; set its kind with idGeneration)" : ""
            diagnostics.error("field name '\(name)' is reserved by the generated code\(extra)", at: field.name.location)
            return nil
        }
        switch field.kind {
        case .enumeration(let cases, let isOptional):
            let typeName = Naming.upperFirst(name)
            if SpecKeys.scalarTypes.contains(typeName) || modelNames.contains(typeName)
                || Self.reservedTypeNames.contains(typeName)
            {
                diagnostics.error(
                    "enum field '\(name)' would declare a nested type '\(typeName)' that hides the type of the same "
                        + "name; rename the field", at: field.name.location)
                return nil
            }
            nestedTypes[typeName] = field.name.location
            var defaultLiteral: String? = isOptional ? "nil" : nil
            if let value = field.defaultValue {
                if cases.contains(where: { $0.value == value.value }) {
                    defaultLiteral = "." + Naming.escaped(value.value)
                } else {
                    diagnostics.error(
                        "default '\(value.value)' is not a case of enum field '\(name)'"
                            + suggestion(for: value.value, among: cases.map(\.value)), at: value.location)
                }
            } else if field.defaultIsNull, !isOptional {
                diagnostics.error("default: null needs an optional field", at: field.name.location)
            }
            return GraphField(
                name: name, swiftType: typeName, columnType: "text", isOptional: isOptional, isUnique: field.isUnique,
                defaultLiteral: defaultLiteral, enumeration: GraphEnum(typeName: typeName, cases: cases.map(\.value)))
        case .type(let type):
            guard SpecKeys.scalarTypes.contains(type.name) else {
                if modelNames.contains(type.name) {
                    diagnostics.error(
                        "'\(type.name)' is a model, not a field type; declare a relationship instead: "
                            + "'\(name): { belongsTo: \(type.name) }' under 'relationships:'", at: type.location)
                } else {
                    diagnostics.error(
                        "unknown type '\(type.name)'" + suggestion(for: type.name, among: SpecKeys.scalarTypes),
                        at: type.location)
                }
                return nil
            }
            let columnType: String
            if type.isArray {
                columnType = "json"
            } else {
                switch type.name {
                case "String", "URL", "UUID": columnType = "text"
                case "Int", "Int64": columnType = "integer"
                case "Double": columnType = "double"
                case "Bool": columnType = "boolean"
                case "Date": columnType = "date"
                case "Data": columnType = "blob"
                default: columnType = "decimal"
                }
            }
            let swiftType = type.isArray ? "[\(type.name)]" : type.name
            var defaultLiteral: String? = type.isOptional ? "nil" : nil
            if let value = field.defaultValue {
                defaultLiteral = literal(value, for: type, field: name) ?? defaultLiteral
            } else if field.defaultIsNull, !type.isOptional {
                diagnostics.error(
                    "default: null needs an optional type; did you mean '\(type.name)?'", at: field.name.location)
            }
            return GraphField(
                name: name, swiftType: swiftType, columnType: columnType, isOptional: type.isOptional,
                isUnique: field.isUnique, defaultLiteral: defaultLiteral, enumeration: nil)
        }
    }

    /// The Swift literal of a `default:` value, checked against the field type.
    private mutating func literal(_ value: Located<String>, for type: TypeSpec, field: String) -> String? {
        let text = value.value
        func invalid(_ expected: String) -> String? {
            diagnostics.error(
                "default '\(text)' of field '\(field)' is not \(expected)", at: value.location)
            return nil
        }
        if type.isArray {
            diagnostics.error(
                "default values are not supported for array fields such as '\(field)'", at: value.location)
            return nil
        }
        switch type.name {
        case "String":
            return Naming.stringLiteral(text)
        case "Int", "Int64":
            return Int64(text) != nil ? text : invalid("an integer")
        case "Double":
            return Double(text) != nil && !text.contains(where: \.isLetter) ? text : invalid("a number")
        case "Bool":
            return text == "true" || text == "false" ? text : invalid("true or false")
        case "Decimal":
            return Decimal(string: text) != nil && !text.contains(where: \.isLetter)
                ? "Decimal(string: \(Naming.stringLiteral(text)))!" : invalid("a decimal number")
        default:
            diagnostics.error(
                "default values are supported for String, Int, Int64, Double, Bool, Decimal and enum fields, not "
                    + "'\(type.name)'", at: value.location)
            return nil
        }
    }

    /// Checks a hasMany/hasOne `inverse:` and returns the inverse belongsTo's name.
    ///
    /// An inverse that fails only because of another error (its belongsTo names an unknown model, or
    /// its declaration could not be read) is reported as that error's consequence, after it.
    private mutating func checkInverse(
        _ relationship: RelationshipSpec, owner: ModelSpec, target: ModelSpec, modelNames: [String]
    ) -> String? {
        let candidates = target.relationships.filter { $0.kind == .belongsTo && $0.target.value == owner.name.value }
        guard let inverse = relationship.inverse else {
            var hint = ""
            if candidates.count == 1 { hint = "; did you mean 'inverse: \(candidates[0].name.value)'?" }
            diagnostics.error(
                "\(relationship.kind.rawValue) '\(relationship.name.value)' needs 'inverse:', the belongsTo of "
                    + "'\(target.name.value)' that points to '\(owner.name.value)'\(hint)",
                at: relationship.name.location)
            return nil
        }
        guard let match = target.relationships.first(where: { $0.name.value == inverse.value }) else {
            if let broken = target.unreadableRelationships[inverse.value] {
                diagnostics.error(
                    "inverse '\(inverse.value)' is not a usable relationship of '\(target.name.value)' (follows from the "
                        + "error in its declaration at line \(broken.line))", at: inverse.location, causedBy: broken)
                return nil
            }
            let hint = suggestion(for: inverse.value, among: candidates.map(\.name.value))
            diagnostics.error(
                "inverse '\(inverse.value)' is not a relationship of '\(target.name.value)'\(hint)",
                at: inverse.location)
            return nil
        }
        guard match.kind == .belongsTo else {
            diagnostics.error(
                "inverse '\(inverse.value)' of '\(target.name.value)' is a \(match.kind.rawValue); the inverse of a "
                    + "\(relationship.kind.rawValue) must be a belongsTo", at: inverse.location)
            return nil
        }
        guard match.target.value == owner.name.value else {
            let message = "inverse '\(inverse.value)' belongs to '\(match.target.value)', not to '\(owner.name.value)'"
            if modelNames.contains(match.target.value) {
                diagnostics.error(message, at: inverse.location)
            } else {
                diagnostics.error(
                    message
                        + " (follows from the unknown model '\(match.target.value)' at line \(match.target.location.line))",
                    at: inverse.location, causedBy: match.target.location)
            }
            return nil
        }
        return inverse.value
    }

    /// The join model's foreign keys (owner side, target side) of a manyToMany.
    ///
    /// When the join model has a belongsTo to an unknown model, a missing link is reported as that
    /// error's consequence, after it.
    private mutating func joinColumns(
        join: ModelSpec, owner: String, target: String, at location: SourceLocation, modelNames: [String]
    ) -> (String, String)? {
        let belongsTo = join.relationships.filter { $0.kind == .belongsTo }
        let toOwner = belongsTo.first { $0.target.value == owner }
        let toTarget = belongsTo.first { $0.target.value == target && $0.name.value != toOwner?.name.value }
        guard let toOwner, let toTarget else {
            let missing = [toOwner == nil ? owner : nil, toTarget == nil ? target : nil].compactMap { $0 }
            let message =
                "join model '\(join.name.value)' needs a belongsTo to "
                + missing.map { "'\($0)'" }.joined(separator: " and ") + " to link '\(owner)' and '\(target)'"
            if let unknown = belongsTo.first(where: { !modelNames.contains($0.target.value) })?.target {
                diagnostics.error(
                    message + " (follows from the unknown model '\(unknown.value)' at line \(unknown.location.line))",
                    at: location, causedBy: unknown.location)
            } else {
                diagnostics.error(message, at: location)
            }
            return nil
        }
        return (toOwner.name.value + "Id", toTarget.name.value + "Id")
    }

    // MARK: Dependency order

    /// Kahn's algorithm over required belongsTo edges (self-references and optional edges ignored),
    /// ties broken by declaration order. Reports cycles, naming them.
    private mutating func dependencyOrder(_ specs: [ModelSpec], indexByName: [String: Int]) -> [Int] {
        var parents: [[Int]] = Array(repeating: [], count: specs.count)
        var children: [[Int]] = Array(repeating: [], count: specs.count)
        for (index, spec) in specs.enumerated() {
            for relationship in spec.relationships where relationship.kind == .belongsTo && !relationship.isOptional {
                guard let target = indexByName[relationship.target.value], target != index else { continue }
                parents[index].append(target)
                children[target].append(index)
            }
        }
        var remaining = parents.map(\.count)
        var ready = Set(remaining.indices.filter { remaining[$0] == 0 })
        var order: [Int] = []
        while let next = ready.min() {
            ready.remove(next)
            order.append(next)
            for child in children[next] {
                remaining[child] -= 1
                if remaining[child] == 0 { ready.insert(child) }
            }
        }
        if order.count < specs.count {
            reportCycle(specs, parents: parents, placed: Set(order))
        }
        return order
    }

    private mutating func reportCycle(_ specs: [ModelSpec], parents: [[Int]], placed: Set<Int>) {
        // Walk parent edges from the first unplaced model until a model repeats: that loop is a cycle.
        guard let start = specs.indices.first(where: { !placed.contains($0) }) else { return }
        var path: [Int] = []
        var current = start
        while !path.contains(current) {
            path.append(current)
            guard let next = parents[current].first(where: { !placed.contains($0) }) else { return }
            current = next
        }
        var cycle = Array(path[path.firstIndex(of: current)!...])
        // Start the cycle at its first-declared model, so the message does not depend on the walk.
        let first = cycle.min()!
        let rotation = cycle.firstIndex(of: first)!
        cycle = Array(cycle[rotation...] + cycle[..<rotation])
        let names = (cycle + [cycle[0]]).map { specs[$0].name.value }
        let nextModel = specs[cycle.count > 1 ? cycle[1] : cycle[0]].name.value
        let edge = specs[first].relationships.first {
            $0.kind == .belongsTo && !$0.isOptional && $0.target.value == nextModel
        }
        diagnostics.error(
            "required belongsTo relationships form a cycle: \(names.joined(separator: " -> ")); no record of these "
                + "models could be created first; make one of them 'optional: true'",
            at: edge?.name.location ?? specs[first].name.location)
    }
}
