import Foundation
import Testing

/// App code cannot write a synced table without queuing the change: the public API offers no
/// writer, models are not GRDB `PersistableRecord`s, and the hooks of generated code and the
/// outbox's bookkeeping are SPI. Checked by typechecking app-like code against the modules this
/// test run was built with: the allowed code compiles, and each way around the outbox fails.
@Suite("Sync cannot be bypassed by accident")
struct SyncBypassTests {
    /// Code an app writes; it must compile (this keeps the forbidden cases honest).
    static let allowed = """
        import ChatModels
        import ModelSync
        func allowed(_ store: SyncStore, _ user: User) async throws {
            try await store.users.save(user)
            try await store.write { tx in try tx.save(user) }
            _ = try await store.read { db in try User.fetchAll(db) }
            _ = try await store.users.query(User.filter(User.Columns.name == "Ada"))
            try await store.writeBypassingSync { db in try db.execute(sql: "CREATE TABLE IF NOT EXISTS mine (x)") }
        }
        """

    /// Ways around the outbox, each with the error it must meet.
    static let forbidden: [(name: String, code: String, error: String)] = [
        ("the store's writer", "try await store.database.write { _ in }", "'database' is inaccessible"),
        (
            "GRDB's insert on a read connection", "try await store.reader.read { db in try user.insert(db) }",
            "has no member 'insert'"
        ),
        (
            "GRDB's update in a transaction", "try await store.write { tx in try user.update(tx.database) }",
            "has no member 'update'"
        ),
        ("a generated hook", "_ = try user.databaseValues()", "'databaseValues' is inaccessible"),
        ("a column encoding", "_ = StoredDate(Date())", "cannot find 'StoredDate' in scope"),
        (
            "the outbox's bookkeeping", "_ = try await store.outbox.claimReadyEntries(limit: 1)",
            "'claimReadyEntries' is inaccessible"
        ),
    ]

    @Test("app code compiles with the public API, and every way around the outbox does not")
    func bypassingSyncDoesNotCompile() async throws {
        let build = try BuildProducts.locate()
        let allowed = try await build.typecheck(Self.allowed)
        #expect(allowed.status == 0, "allowed code failed to compile:\n\(allowed.output)")
        for forbidden in Self.forbidden {
            let source = """
                import ChatModels
                import Foundation
                import GRDB
                import ModelSync
                func forbidden(_ store: SyncStore, _ user: User) async throws {
                    \(forbidden.code)
                }
                """
            let result = try await build.typecheck(source)
            #expect(result.status != 0, "\(forbidden.name) compiled: \(forbidden.code)")
            #expect(result.output.contains(forbidden.error), "\(forbidden.name):\n\(result.output)")
        }
    }
}

/// Where this test run's modules are: the test bundle sits in `<scratch>/<triple>/<config>/`, beside
/// `Modules/`, and the packages' sources in `<scratch>/checkouts/`.
struct BuildProducts {
    var modules: URL
    var grdbModuleMap: URL

    static func locate() throws -> BuildProducts {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var modules: URL?
        for _ in 0..<4 {
            directory.deleteLastPathComponent()
            let candidate = directory.appendingPathComponent("Modules")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("ModelSync.swiftmodule").path) {
                modules = candidate
                break
            }
        }
        let found = try #require(
            modules, "no Modules folder with ModelSync.swiftmodule above \(CommandLine.arguments[0])")
        // Modules is in <scratch>/<triple>/<config>/: the checkouts are in <scratch>.
        let scratch = found.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let moduleMap = scratch.appendingPathComponent("checkouts/GRDB.swift/Sources/GRDBSQLite/module.modulemap")
        try #require(
            FileManager.default.fileExists(atPath: moduleMap.path), "no GRDBSQLite module map at \(moduleMap.path)")
        return BuildProducts(modules: found, grdbModuleMap: moduleMap)
    }

    /// Typechecks `source` as a file of its own against the built modules.
    func typecheck(_ source: String) async throws -> (status: Int32, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "modelsync-bypass-\(UUID().uuidString).swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        return try await runProcess([
            "swiftc", "-typecheck", "-swift-version", "6", file.path, "-I", modules.path,
            "-Xcc", "-fmodule-map-file=\(grdbModuleMap.path)",
        ])
    }
}
