import Foundation

/// Stage 2: resolves the parsed files of one target into a ``ModelGraph``, reporting every
/// semantic mistake (unknown types and models, inverses, join models, cycles, option conflicts).
struct GraphBuilder {
    var diagnostics = DiagnosticCollector()
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
        "RecordFields", "RecordFieldReader", "FieldDecodable", "JSONValue",
        "Sendable", "Hashable", "Identifiable", "CaseIterable", "DatabaseValueConvertible", "Optional", "Array",
    ]

    /// Member names the generated code declares on every model.
    static let reservedMemberNames: Set<String> = [
        "id", "ID", "Columns", "schema", "databaseTableName", "withID", "replacingReferences", "newID",
        "databaseValues", "row", "encode",
        "self", "Self", "super", "Type", "Protocol", "init", "deinit", "subscript",
    ]

    struct ModelEntry {
        var spec: ModelSpec
        var file: SpecFile
        var fileIndex: Int
    }

    mutating func build(_ specFiles: [SpecFile]) -> ModelGraph? {
        let (entries, graphFiles, indexByName) = collectModels(specFiles.sorted { $0.path < $1.path })
        let modelNames = entries.map(\.spec.name.value)
        var models = translateModels(entries, modelNames: modelNames)
        linkReferences(&models, indexByName: indexByName)
        resolveRelationships(&models, entries: entries, modelNames: modelNames)
        let order = dependencyOrder(entries.map(\.spec), indexByName: indexByName)
        let removedTables = translateEvolution(&models, entries: entries, files: specFiles)
        let schemaVersion = specFiles.compactMap(\.schemaVersion).max() ?? 1
        let oldest = specFiles.compactMap(\.oldestClientSchemaVersion).min { $0.value < $1.value }
        if let oldest, oldest.value > schemaVersion {
            diagnostics.error(
                "'oldestClientSchemaVersion' is \(oldest.value), newer than the schemaVersion \(schemaVersion); it names "
                    + "the oldest app version the server still serves, at most the current one", at: oldest.location)
        }
        guard !diagnostics.hasErrors else { return nil }
        var graph = ModelGraph(
            files: graphFiles, models: models, dependencyOrder: order, removedTables: removedTables,
            schemaVersion: schemaVersion)
        graph.oldestClientSchemaVersion = oldest?.value
        return graph
    }

    /// The files of the target and their models, each model once (a duplicate is reported, and its own
    /// mistakes too, but it generates nothing).
    mutating func collectModels(_ files: [SpecFile]) -> (
        entries: [ModelEntry], files: [GraphFile], indexByName: [String: Int]
    ) {
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
            var graphFile = GraphFile(
                path: file.path, fileName: file.fileName, outputName: outputName, access: file.accessModifier,
                templatesDirectory: templatesDirectory(of: file), modelIndexes: [])
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
        for model in duplicates {
            var nestedTypes: [String: SourceLocation] = [:]
            for field in model.fields { _ = resolveField(field, modelNames: modelNames, nestedTypes: &nestedTypes) }
            for relationship in model.relationships { _ = resolveModel(relationship.target, modelNames: modelNames) }
        }
        return (entries, graphFiles, indexByName)
    }

    /// The folder of a file's user templates (`options.templates`, relative to the spec), if it exists.
    mutating func templatesDirectory(of file: SpecFile) -> String? {
        guard let templates = file.templates else { return nil }
        let base = (file.path as NSString).deletingLastPathComponent
        let directory =
            templates.value.hasPrefix("/")
            ? templates.value : (base as NSString).appendingPathComponent(templates.value)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue {
            return directory
        }
        diagnostics.error(
            "template folder '\(templates.value)' does not exist (looked in \(directory))", at: templates.location)
        return nil
    }

    /// `referencedBy`: every belongsTo pointing at a model, in declaration order.
    func linkReferences(_ models: inout [GraphModel], indexByName: [String: Int]) {
        for model in models {
            for foreignKey in model.foreignKeys {
                guard let targetIndex = indexByName[foreignKey.targetModel] else { continue }
                models[targetIndex].referencedBy.append(
                    GraphReference(table: model.tableName, column: foreignKey.column, onDelete: foreignKey.onDelete))
            }
        }
    }

    static func outputName(for fileName: String) -> String {
        if fileName.hasSuffix(".yaml") { return String(fileName.dropLast(5)) + ".swift" }
        if fileName.hasSuffix(".yml") { return String(fileName.dropLast(4)) + ".swift" }
        return fileName + ".swift"
    }
}
