// modelsync-reference-server: the in-memory reference sync server as a process, for any spec.
//
//     swift run modelsync-reference-server --spec Models/Notes.modelsync.yaml [--port 8080]
//
// Prints its base URL on the first line of standard output, then serves until killed.

import ChatModels
import Foundation
import ModelSync
import ModelSyncGenerator
import ModelSyncReferenceServer

let help = """
    USAGE: modelsync-reference-server [--spec <path> ...] [--port <port>]

    Serves the models of the given specs over HTTP on 127.0.0.1, in memory, with the conventions of
    the ModelSync sync protocol (Docs/Protocol.md): server IDs, foreign keys, Idempotency-Key, cursor
    listings with tombstones, _version and 409 on stale updates. For tests, demos and trying a client;
    nothing is stored on disk.

    OPTIONS:
      --spec <path>   A *.modelsync.yaml file, or a folder searched for them. Repeat it for several
                      files; all specs form one set of models (as one target's specs do).
                      Without --spec, the server serves the built-in chat example models
                      (Tests/Reference/Chat.modelsync.yaml): User, Thread, Message, Artifact,
                      ThreadArtifact, Draft.
      --port <port>   The port to listen on (default: 0, a free port).
      -h, --help      Shows this help.

    Prints the base URL (http://127.0.0.1:<port>) on the first line of standard output. A spec with
    errors prints them as path:line:column: error: message on standard error and exits with status 1.

    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(1)
}

var specPaths: [String] = []
var port: UInt16 = 0
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "-h", "--help":
        print(help, terminator: "")
        exit(0)
    case "--spec":
        guard let path = arguments.popFirst() else { fail("--spec needs a path to a *.modelsync.yaml file") }
        specPaths.append(path)
    case "--port":
        guard let text = arguments.popFirst(), let value = UInt16(text) else {
            fail("--port needs a port number from 0 to 65535")
        }
        port = value
    default:
        fail("unknown argument '\(argument)'; see --help")
    }
}

let schemas: [ModelSchema]
if specPaths.isEmpty {
    schemas = GeneratedModels.all.map { $0.schema }
} else {
    let sources: [SpecSource]
    do {
        let files = try ModelSyncGenerator.specFiles(in: specPaths)
        guard !files.isEmpty else { fail("no *.modelsync.yaml file in \(specPaths.joined(separator: ", "))") }
        sources = try files.map { try SpecSource(contentsOf: $0) }
    } catch {
        fail("cannot read \(specPaths.joined(separator: ", ")): \(error.localizedDescription)")
    }
    do {
        // Warnings are about generated Swift code (names that shadow Foundation types), not about
        // serving the models: `modelsync validate` shows them.
        schemas = try ModelSyncGenerator.models(sources).models.map(ModelSchema.init(spec:))
    } catch let failure as GenerationFailed {
        FileHandle.standardError.write(Data((failure.description + "\n").utf8))
        exit(1)
    }
}

let server = ReferenceServer(schemas: schemas)
let url = try await server.start(port: port)
FileHandle.standardOutput.write(Data((url.absoluteString + "\n").utf8))
while true { try await Task.sleep(for: .seconds(3600)) }

extension ModelSchema {
    /// The runtime schema of a model read from a spec: what the generated `schema` of its type holds.
    init(spec model: SpecModel) {
        self.init(
            name: model.name, tableName: model.tableName,
            idGeneration: model.idGeneration == .client ? .client : .server,
            idFormat: IDFormat(rawValue: model.idFormat) ?? .uuidv7, idPrefix: model.idPrefix,
            fields: model.fields.map {
                FieldSchema(
                    name: $0.name, type: ColumnType(rawValue: $0.columnType) ?? .text, isOptional: $0.isOptional,
                    isUnique: $0.isUnique)
            },
            foreignKeys: model.foreignKeys.map {
                ForeignKeySchema(
                    column: $0.column, table: $0.targetTable, isOptional: $0.isOptional,
                    onDelete: DeleteRule(rawValue: $0.onDelete.rawValue) ?? .restrict)
            },
            referencedBy: model.referencedBy.map {
                ForeignKeyReference(
                    table: $0.table, column: $0.column,
                    onDelete: DeleteRule(rawValue: $0.onDelete.rawValue) ?? .restrict)
            },
            remote: RemoteSchema(
                path: model.path, idType: model.idType == .int ? .int : .string,
                fieldNaming: model.fieldNaming == .camelCase ? .camelCase : .snakeCase))
    }
}
