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
        let result = try CLI.run(["generate", spec, "--output", output.path, "--module-name", "ChatModels"])
        #expect(result.status == 0)
        // The chat spec's `Thread` model shadows Foundation.Thread: a warning, which does not stop generation.
        #expect(
            result.stderr
                == "\(spec):19:3: warning: model 'Thread' shadows Foundation.Thread; in code that imports Foundation, "
                + "write ChatModels.Thread (or rename the model)\n")
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
        #expect(result.stdout == "ok: 2 files, 4 models, 6 relationships\n")
        let bad = try CLI.run([
            "validate", fixtures.appending(path: "Diagnostics/51-several-errors-in-one-file.modelsync.yaml").path,
        ])
        #expect(bad.status != 0)
        #expect(bad.stderr.split(separator: "\n").count == 4)
        #expect(bad.stdout.isEmpty)
    }

    @Test func validateSummaryCountsWarnings() throws {
        let spec = packageRoot.appending(path: "Tests/Reference/Chat.modelsync.yaml").path
        let result = try CLI.run(["validate", spec])
        #expect(result.status == 0)
        #expect(result.stdout == "ok: 1 file, 6 models, 9 relationships, 1 warning\n")
        #expect(result.stderr.contains(":19:3: warning: model 'Thread' shadows Foundation.Thread"))
    }

    @Test func initScaffoldsAModelsTargetWhoseSpecValidates() throws {
        let package = FileManager.default.temporaryDirectory.appending(path: "modelsync-init-\(UUID())")
        try FileManager.default.createDirectory(at: package, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: package) }
        let result = try CLI.run(["init", "--package-path", package.path, "--target", "NotesModels"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty)
        let folder = package.appending(path: "Sources/NotesModels")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == ["NotesModels.modelsync.yaml", "NotesModels.swift"])
        // The placeholder is one line: the Swift source SwiftPM needs before it builds the target.
        let placeholder = try String(contentsOf: folder.appending(path: "NotesModels.swift"), encoding: .utf8)
        #expect(placeholder.split(separator: "\n").count == 1)
        #expect(placeholder.hasPrefix("//"))
        // The Package.swift lines: the dependency, the target applying the plugin, the product.
        for line in [
            #".package(url: "https://github.com/your-org/ModelSync", from: "0.1.0"),"#,
            #"dependencies: [.product(name: "ModelSync", package: "ModelSync")]"#,
            #"plugins: [.plugin(name: "ModelSyncPlugin", package: "ModelSync")]"#,
            #".library(name: "NotesModels", targets: ["NotesModels"]),"#,
        ] {
            #expect(result.stdout.contains(line), "missing: \(line)")
        }
        let validated = try CLI.run(["validate", folder.path])
        #expect(validated.status == 0)
        #expect(validated.stderr.isEmpty, "the starter spec has no warning")
        #expect(validated.stdout == "ok: 1 file, 2 models, 2 relationships\n")
    }

    @Test func initRefusesToOverwriteAnExistingFileAndWritesNothing() throws {
        let package = FileManager.default.temporaryDirectory.appending(path: "modelsync-init-\(UUID())")
        let folder = package.appending(path: "Sources/Models")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: package) }
        let existing = folder.appending(path: "Models.swift")
        try Data("// mine\n".utf8).write(to: existing)
        let result = try CLI.run(["init", "--package-path", package.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(existing.path) already exists"))
        #expect(try String(contentsOf: existing, encoding: .utf8) == "// mine\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["Models.swift"])
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

    @Test(arguments: [
        ["--help"], ["generate", "--help"], ["validate", "--help"], ["json-schema", "--help"], ["init", "--help"],
    ])
    func helpIsAvailable(arguments: [String]) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: modelsync"))
    }
}
