import Foundation
import ModelSyncServerSchema

// The server side of the generator (issue 11): the translated model graph becomes a
// `ServerSchema`, and the generated server file holds that schema, its PostgreSQL SQL (built by
// `ServerSQL`, the builder `modelsync-server` uses at run time) and a function that mounts the
// routes on a Hummingbird router.

extension ModelSyncGenerator {
    /// The name of the server file `generate --server` writes.
    public static let serverFileName = "ModelSyncServerModels.swift"

    /// The server schema of the specs of one target (what `modelsync-server` serves).
    ///
    /// - Throws: ``GenerationFailed`` with every diagnostic when any spec has an error.
    public static func serverSchema(_ sources: [SpecSource], moduleName: String? = nil) throws -> ServerSchema {
        var collector = DiagnosticCollector()
        var specFiles: [SpecFile] = []
        guard let graph = translate(sources, moduleName: moduleName, diagnostics: &collector, specFiles: &specFiles)
        else {
            throw GenerationFailed(diagnostics: collector.sorted)
        }
        return ServerSchemaBuilder.schema(of: graph)
    }

    /// Generates the server file of one target: the ``serverFileName`` file, whose `ServerModels`
    /// enum has the schema, its SQL and `addRoutes(to:database:authenticator:)`.
    ///
    /// - Throws: ``GenerationFailed`` with every diagnostic when any spec has an error.
    public static func generateServer(_ sources: [SpecSource], moduleName: String? = nil) throws -> GeneratedFile {
        let schema = try serverSchema(sources, moduleName: moduleName)
        let specs = sources.map { URL(fileURLWithPath: $0.path).lastPathComponent }.sorted()
        return GeneratedFile(
            name: serverFileName,
            contents: ServerRenderer.render(schema, sql: ServerSQL(schema), specs: specs))
    }
}

enum ServerSchemaBuilder {
    static func schema(of graph: ModelGraph) -> ServerSchema {
        let models = graph.dependencyOrder.map { graph.models[$0] }.map { model -> ServerModel in
            let naming: (String) -> String = { name in wireKey(name, snakeCase: model.fieldNaming == .snakeCase) }
            let columns = model.fields.map { field in
                ServerColumn(
                    name: naming(field.name), type: columnType(field.columnType), isOptional: field.isOptional,
                    isUnique: field.isUnique, allowedValues: field.enumeration?.cases ?? [],
                    renamedFrom: field.renamedFrom.map(naming), defaultValue: field.defaultJSON,
                    valueMapping: Dictionary(field.valueMapping, uniquingKeysWith: { first, _ in first }))
            }
            let foreignKeys = model.foreignKeys.map { key in
                ServerForeignKey(
                    column: naming(key.column), targetTable: key.targetTable, isOptional: key.isOptional,
                    onDelete: ServerDeleteRule(rawValue: key.onDelete.rawValue) ?? .restrict)
            }
            // A removed belongsTo is named by its relationship; its column is `<name>Id`.
            let removed = model.removedColumns.flatMap { [naming($0), naming($0 + "Id")] }
            // A renamed model whose path followed its name is served at its earlier path too (grace period).
            let previousPath = model.previousTableName.flatMap { previous in
                model.remotePath == "/" + Naming.plural(model.tableName) ? "/" + Naming.plural(previous) : nil
            }
            return ServerModel(
                name: model.name, table: model.tableName, path: model.remotePath,
                idType: model.remoteIDType == .int ? .int : .string,
                idGeneration: model.idGeneration == .server ? .server : .client, columns: columns,
                foreignKeys: foreignKeys, previousTable: model.previousTableName, previousPath: previousPath,
                removedColumns: removed)
        }
        return ServerSchema(
            models: models, schemaVersion: graph.schemaVersion,
            oldestClientSchemaVersion: graph.oldestClientSchemaVersion,
            removedTables: graph.removedTables)
    }

    /// The wire key of a property, as the runtime's `FieldNaming.wireKey(for:)` writes it.
    static func wireKey(_ property: String, snakeCase: Bool) -> String {
        guard snakeCase else { return property }
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

    static func columnType(_ runtimeType: String) -> ServerColumnType {
        switch runtimeType {
        case "integer": return .integer
        case "double": return .double
        case "decimal": return .decimal
        case "boolean": return .boolean
        case "date": return .date
        case "blob": return .data
        case "json": return .json
        default: return .text
        }
    }
}

enum ServerRenderer {
    static func render(_ schema: ServerSchema, sql: ServerSQL, specs: [String]) -> String {
        var out = """
            // Generated by `modelsync generate --server` from \(specs.joined(separator: ", ")). Do not edit.
            // The sync server's side of these models: the schema, its PostgreSQL SQL, and the routes.

            import Hummingbird
            import ModelSyncServer
            import PostgresNIO

            /// The models of this target as the generated sync server serves them.
            public enum ServerModels {
                /// The models: tables, paths, ID types, columns, foreign keys.
                public static let schema = ServerSchema(models: [

            """
        for model in schema.models {
            out += "        ServerModel(\n"
            out +=
                "            name: \(string(model.name)), table: \(string(model.table)), path: \(string(model.path)),\n"
            out += "            idType: .\(model.idType.rawValue), idGeneration: .\(model.idGeneration.rawValue),\n"
            out += "            columns: [\n"
            for column in model.columns {
                var line = "                ServerColumn(name: \(string(column.name)), type: .\(column.type.rawValue), "
                line += "isOptional: \(column.isOptional)"
                if column.isUnique { line += ", isUnique: true" }
                if !column.allowedValues.isEmpty {
                    line += ", allowedValues: [\(column.allowedValues.map(string).joined(separator: ", "))]"
                }
                if let renamed = column.renamedFrom { line += ", renamedFrom: \(string(renamed))" }
                if let value = column.defaultValue { line += ", defaultValue: \(string(value))" }
                if !column.valueMapping.isEmpty {
                    let pairs = column.valueMapping.sorted { $0.key < $1.key }
                    line +=
                        ", valueMapping: [\(pairs.map { "\(string($0.key)): \(string($0.value))" }.joined(separator: ", "))]"
                }
                out += line + "),\n"
            }
            var history: [String] = []
            if let previous = model.previousTable { history.append("previousTable: \(string(previous))") }
            if let previous = model.previousPath { history.append("previousPath: \(string(previous))") }
            if !model.removedColumns.isEmpty {
                history.append("removedColumns: [\(model.removedColumns.map(string).joined(separator: ", "))]")
            }
            let end = history.isEmpty ? ")" : ",\n            " + history.joined(separator: ", ") + ")"
            out += "            ],\n            foreignKeys: [" + (model.foreignKeys.isEmpty ? "]\(end),\n" : "\n")
            for key in model.foreignKeys {
                out +=
                    "                ServerForeignKey(column: \(string(key.column)), targetTable: \(string(key.targetTable)), "
                out += "isOptional: \(key.isOptional), onDelete: .\(key.onDelete.rawValue)),\n"
            }
            if !model.foreignKeys.isEmpty { out += "            ]\(end),\n" }
        }
        out += "    ]"
        if schema.schemaVersion != 1 || schema.oldestClientSchemaVersion != schema.schemaVersion
            || !schema.removedTables.isEmpty
        {
            out +=
                ",\n    schemaVersion: \(schema.schemaVersion), oldestClientSchemaVersion: \(schema.oldestClientSchemaVersion)"
            out += ", removedTables: [\(schema.removedTables.map(string).joined(separator: ", "))]"
        }
        out += ")\n\n"
        out += "    /// The PostgreSQL schema and each model's statements (the same text `ServerSQL(schema)` builds).\n"
        out += "    public static let sql = ServerSQL(\n        schema: [\n"
        for statement in sql.schema { out += block(statement, indent: 12) + ",\n" }
        out += "        ],\n        models: [\n"
        for model in schema.models {
            guard let statements = sql.models[model.table] else { continue }
            out += "            \(string(model.table)): ServerSQL.ModelStatements(\n"
            let parts: [(String, String)] = [
                ("insert", statements.insert), ("create", statements.create),
                ("createRun", statements.createRun), ("update", statements.update),
                ("selectForUpdate", statements.selectForUpdate), ("select", statements.select),
                ("delete", statements.delete), ("listChanges", statements.listChanges),
                ("listLive", statements.listLive), ("heldBack", statements.heldBack),
            ]
            for (index, part) in parts.enumerated() {
                out += "                \(part.0):\n" + block(part.1, indent: 20)
                out += index == parts.count - 1 ? "),\n" : ",\n"
            }
        }
        out += "        ],\n        constraints: [\n"
        for (name, constraint) in sql.constraints.sorted(by: { $0.key < $1.key }) {
            out += "            \(string(name)): ServerSQL.ConstraintColumn(table: \(string(constraint.table)), "
            out += "column: \(string(constraint.column)), kind: \(string(constraint.kind))),\n"
        }
        out += "        ])\n\n"
        out += """
                /// Mounts the routes of every model on `router` and returns the service behind them; call
                /// `migrate()` on it once before serving (it creates the tables in an empty database, or migrates one
                /// built from an earlier version of the specs).
                public static func addRoutes<Context: RequestContext>(
                    to router: Router<Context>, database: PostgresClient, authenticator: any SyncAuthenticator
                ) -> SyncService {
                    let service = SyncService(schema: schema, sql: sql, database: database, authenticator: authenticator)
                    service.addRoutes(to: router)
                    return service
                }
            }

            """
        return out
    }

    /// A Swift string literal of `text` (raw, with as many `#` as it needs).
    static func string(_ text: String) -> String {
        if !text.contains(where: { $0 == "\"" || $0 == "\\" || $0.isNewline }) { return "\"" + text + "\"" }
        let hashes = delimiter(for: text)
        return hashes + "\"" + text + "\"" + hashes
    }

    /// A multi-line raw string literal of `text`, indented by `indent` spaces.
    static func block(_ text: String, indent: Int) -> String {
        let hashes = delimiter(for: text)
        let pad = String(repeating: " ", count: indent)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.isEmpty ? "" : pad + $0
        }
        return pad + hashes + "\"\"\"\n" + lines.joined(separator: "\n") + "\n" + pad + "\"\"\"" + hashes
    }

    private static func delimiter(for text: String) -> String {
        var count = 1
        while text.contains("\"" + String(repeating: "#", count: count)) { count += 1 }
        return String(repeating: "#", count: count)
    }
}
