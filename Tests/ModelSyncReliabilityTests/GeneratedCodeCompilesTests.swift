import Foundation
import ModelSyncGenerator
import Testing

/// Accepted random specs and keyword-laden specs must produce code that compiles, and models named
/// with Swift and SQL keywords must round-trip through a real `SyncStore`. All outputs go into ONE
/// throwaway package (one module per spec, depending on ModelSync by path) built once, with its
/// own scratch folder `.build-fuzz` kept between runs so that rebuilds are incremental.
///
/// `MODELSYNC_COMPILE_SPECS` sets how many accepted random specs are compiled (default 20).
@Suite("Generated code compiles")
struct GeneratedCodeCompilesTests {
    static let keywordSpec = """
        version: 1
        options: { accessModifier: public }
        models:
          Select:
            fields:
              order: String
              group: Int
              where: String?
              default: { type: String, default: "a \\"quoted\\" \\\\ value */ -- ;" }
              class: { enum: [default, public, select, table], default: select }
              table: Double
              protocol: Bool
            relationships:
              from: { belongsTo: Table, optional: true, onDelete: nullify }
          Table:
            idGeneration: server
            fields:
              join: String
              self_: Int64?
              # The names of init(fields:)'s parameter and local.
              reader: Int
              fields: String?
        """

    static let roundTrip = """
        import Foundation
        import Keywords
        import ModelSync

        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let table = try await store.repository(for: Table.self).save(Table(join: "inner", self_: 7, reader: 2, fields: "f"))
        let record = Select(
            order: "asc", group: 3, where: "x = 1", default: "drop table \\"select\\"; --", class: .table,
            table: 1.5, protocol: true, fromId: table.id)
        try await store.repository(for: Select.self).save(record)
        let read = try await store.repository(for: Select.self).find(record.id)
        guard read == record, try await store.repository(for: Table.self).find(table.id) == table else {
            print("round-trip FAILED: \\(String(describing: read)) != \\(record)")
            exit(1)
        }
        let queued = try await store.outbox.entries().count
        guard queued == 2 else {
            print("round-trip FAILED: \\(queued) outbox entries")
            exit(1)
        }
        print("round-trip ok")
        """

    @Test("accepted random specs and keyword specs compile; keyword models round-trip through SyncStore")
    func acceptedSpecsCompile() async throws {
        let wanted = integer(fromEnvironment: "MODELSYNC_COMPILE_SPECS", default: 20)
        let seed = seed(fromEnvironment: "MODELSYNC_COMPILE_SEED")
        print("compile: seed \(seed), \(wanted) accepted random specs (replay with MODELSYNC_COMPILE_SEED=\(seed))")
        var random = SplitMix64(seed: seed)
        let corpus = try SpecFuzzTests.corpus()
        var modules: [(name: String, files: [GeneratedFile])] = []
        var attempts = 0
        while modules.count < wanted && attempts < 20_000 {
            attempts += 1
            let base = corpus[Int.random(in: 0..<corpus.count, using: &random)]
            let text = SpecMutator.mutate(base.text, using: &random)
            // Templates of a fixture folder are relative to it: keep the original path.
            guard !text.contains("templates:"),
                let result = try? ModelSyncGenerator.generate([SpecSource(path: base.path, text: text)])
            else { continue }
            modules.append(("Fuzz\(modules.count)", result.files))
        }
        #expect(modules.count == wanted, "only \(modules.count) accepted specs in \(attempts) attempts")
        let keywords = try ModelSyncGenerator.generate([
            SpecSource(path: "Keywords.modelsync.yaml", text: Self.keywordSpec)
        ])
        modules.append(("Keywords", keywords.files))

        let package = packageRoot.appendingPathComponent(".build-fuzz/package")
        try? FileManager.default.removeItem(at: package.appendingPathComponent("Sources"))
        for module in modules {
            let folder = package.appendingPathComponent("Sources/\(module.name)")
            try ModelSyncGenerator.write(module.files, to: folder.path)
        }
        let roundTripFolder = package.appendingPathComponent("Sources/RoundTrip")
        try FileManager.default.createDirectory(at: roundTripFolder, withIntermediateDirectories: true)
        try Self.roundTrip.write(
            to: roundTripFolder.appendingPathComponent("main.swift"), atomically: true, encoding: .utf8)
        // A path dependency's identity is its folder name.
        let identity = packageRoot.lastPathComponent.lowercased()
        let targets = modules.map {
            "        .target(name: \"\($0.name)\", dependencies: [.product(name: \"ModelSync\", package: \"\(identity)\")]),"
        }
        let manifest = """
            // swift-tools-version: 6.1
            import PackageDescription

            let package = Package(
                name: "FuzzOutputs",
                platforms: [.macOS(.v14)],
                dependencies: [.package(path: "\(packageRoot.path)")],
                targets: [
            \(targets.joined(separator: "\n"))
                    .executableTarget(
                        name: "RoundTrip",
                        dependencies: ["Keywords", .product(name: "ModelSync", package: "\(identity)")]),
                ]
            )

            """
        try manifest.write(to: package.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)

        let (status, output) = try await Self.run(
            [
                "swift", "run", "--package-path", package.path, "--scratch-path",
                packageRoot.appendingPathComponent(".build-fuzz/scratch").path, "RoundTrip",
            ])
        let errors = output.split(separator: "\n").filter { $0.contains("error:") }
        #expect(status == 0, "the generated code did not build or run:\n\(errors.prefix(20).joined(separator: "\n"))")
        #expect(output.contains("round-trip ok"), "\(output.suffix(2000))")
        print("compile: \(modules.count - 1) accepted random specs (of \(attempts) tried) and the keyword spec built")
    }

    /// Runs a command without blocking a thread of the test pool (see `runProcess`).
    static func run(_ arguments: [String]) async throws -> (Int32, String) {
        try await runProcess(arguments)
    }
}
