import Foundation
import Testing

@testable import ModelSyncGenerator

@Suite struct JSONSchemaTests {
    static let schemaFile = packageRoot.appending(path: "Schemas/modelsync.schema.json")

    static func properties(_ object: Any?, _ path: [String]) -> [String] {
        var current = object
        for key in path { current = (current as? [String: Any])?[key] }
        return ((current as? [String: Any])?["properties"] as? [String: Any])?.keys.sorted() ?? []
    }

    @Test func checkedInSchemaMatchesTheGeneratorSchema() throws {
        let checkedIn = try String(contentsOf: Self.schemaFile, encoding: .utf8)
        #expect(checkedIn == SpecJSONSchema.text, "run `modelsync json-schema > Schemas/modelsync.schema.json`")
    }

    @Test func schemaDeclaresExactlyTheKeysTheParserAccepts() throws {
        let schema = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.schemaFile))
        let modelObject =
            ((((schema as? [String: Any])?["properties"] as? [String: Any])?["models"] as? [String: Any])?[
                "additionalProperties"] as? [String: Any])?["anyOf"] as? [Any]
        let modelSchema = modelObject?.last
        let field =
            (((modelSchema as? [String: Any])?["properties"] as? [String: Any])?["fields"] as? [String: Any])?[
                "additionalProperties"] as? [String: Any]
        let relationship =
            (((modelSchema as? [String: Any])?["properties"] as? [String: Any])?["relationships"]
            as? [String: Any])?["additionalProperties"]
        let levels: [String: [String]] = [
            "file": Self.properties(schema, []),
            "options": Self.properties(schema, ["properties", "options"]),
            "defaults": Self.properties(schema, ["properties", "defaults"]),
            "remote": Self.properties(schema, ["properties", "remote"]),
            "model": Self.properties(modelSchema, []),
            "modelRemote": Self.properties(modelSchema, ["properties", "remote"]),
            "field": Self.properties((field?["oneOf"] as? [Any])?.last, []),
            "relationship": Self.properties(relationship, []),
        ]
        for (level, keys) in SpecJSONSchema.keysByLevel {
            #expect(levels[level] == keys.sorted(), "schema level \(level)")
        }
    }

    /// Every key the schema declares is accepted by the parser (no "unknown key" diagnostic), and a
    /// key it does not declare is rejected, at each level.
    @Test func parserAcceptsEverySchemaKeyAndRejectsOthers() {
        let spec = """
            version: 1
            options: { accessModifier: public, templates: . }
            defaults: { idGeneration: client, idFormat: ulid }
            remote: { fieldNaming: snake_case }
            models:
              User:
                idGeneration: client
                idFormat: uuid4
                idPrefix: usr_
                remote: { path: /users, idType: int }
                fields:
                  name: { type: String, unique: true, default: x, optional: true }
                  kind: { enum: [a, b] }
                relationships:
                  posts: { hasMany: Post, inverse: author }
                  profile: { hasOne: Profile, inverse: user }
                  groups: { manyToMany: Group, through: Membership }
              Post:
                relationships:
                  author: { belongsTo: User, optional: true, onDelete: nullify }
              Profile:
                relationships:
                  user: { belongsTo: User, onDelete: cascade }
              Group: {}
              Membership:
                relationships:
                  user: { belongsTo: User }
                  group: { belongsTo: Group }
            """
        let path = packageRoot.appending(path: "Tests/ModelSyncGeneratorTests/Fixtures/Accepted.modelsync.yaml").path
        let diagnostics = ModelSyncGenerator.validate([SpecSource(path: path, text: spec)])
        #expect(diagnostics.filter { $0.severity == .error }.isEmpty, "\(diagnostics)")
        let allKeys = Set(SpecJSONSchema.keysByLevel.values.joined())
        for level in ["options", "defaults", "remote"] {
            let bad = "version: 1\n\(level): { notAKey: 1 }\nmodels: { A: {} }\n"
            let messages = ModelSyncGenerator.validate([SpecSource(path: "x", text: bad)]).map(\.message)
            #expect(messages.contains { $0.hasPrefix("unknown key 'notAKey'") }, "\(level)")
        }
        #expect(!allKeys.contains("notAKey"))
    }
}

/// Runs the built `modelsync` executable.
struct CLI {
    static let executable: URL = {
        var folder = Bundle.main.bundleURL
        while folder.path != "/" {
            let candidate = folder.appending(path: "modelsync")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: "/nonexistent/modelsync")
    }()

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self)
        )
    }
}

@Suite struct CLITests {
    @Test func generateWritesTheReferenceFiles() throws {
        let output = FileManager.default.temporaryDirectory.appending(path: "modelsync-cli-\(UUID())")
        defer { try? FileManager.default.removeItem(at: output) }
        let spec = packageRoot.appending(path: "Tests/Reference/Chat.modelsync.yaml").path
        let result = try CLI.run(["generate", spec, "--output", output.path])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        for name in ["Chat.modelsync.swift", "ModelSyncRegistry.swift"] {
            let generated = try String(contentsOf: output.appending(path: name), encoding: .utf8)
            let reference = try String(
                contentsOf: packageRoot.appending(path: "Tests/Reference/Chat/\(name)"), encoding: .utf8)
            #expect(generated == reference)
        }
    }

    @Test func generateWithErrorsExitsNonZeroAndWritesNothing() throws {
        let output = FileManager.default.temporaryDirectory.appending(path: "modelsync-cli-\(UUID())")
        defer { try? FileManager.default.removeItem(at: output) }
        let folder = fixtures.appending(path: "Diagnostics")
        let spec = folder.appending(path: "14-misspelled-type.modelsync.yaml").path
        let result = try CLI.run(["generate", spec, "--output", output.path])
        #expect(result.status != 0)
        #expect(result.stderr == "\(spec):5:13: error: unknown type 'Strng'; did you mean 'String'?\n")
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    @Test func validateReportsEveryDiagnosticOfAFolder() throws {
        let result = try CLI.run(["validate", fixtures.appending(path: "MultiFile").path])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        let bad = try CLI.run([
            "validate", fixtures.appending(path: "Diagnostics/51-several-errors-in-one-file.modelsync.yaml").path,
        ])
        #expect(bad.status != 0)
        #expect(bad.stderr.split(separator: "\n").count == 4)
    }

    @Test func aFolderWithoutSpecsIsAnError() throws {
        let empty = FileManager.default.temporaryDirectory.appending(path: "modelsync-empty-\(UUID())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let result = try CLI.run(["validate", empty.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("no *.modelsync.yaml file in \(empty.path)"))
    }

    @Test func jsonSchemaPrintsTheSchema() throws {
        let result = try CLI.run(["json-schema"])
        #expect(result.status == 0)
        #expect(result.stdout == SpecJSONSchema.text)
    }

    @Test(arguments: [["--help"], ["generate", "--help"], ["validate", "--help"], ["json-schema", "--help"]])
    func helpIsAvailable(arguments: [String]) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: modelsync"))
    }
}
