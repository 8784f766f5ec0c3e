import EvolutionV1Models
import EvolutionV2Models
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
import ModelSyncTestSupport
import Testing

typealias Memo = EvolutionV2Models.Memo
typealias AuthorV2 = EvolutionV2Models.Author
typealias GadgetV2 = EvolutionV2Models.Gadget

/// Two builds of the same app: version 1 (its own spec and module, run in a child process) makes a
/// database with synced records, a failed create, and offline creates, an update and a delete;
/// version 2 (a renamed model, a renamed field, a new required field with a default, a removed
/// field, Int to Int64, String to an enum, a removed model) opens it.
@Suite("Upgrading a database built by an earlier version of the spec")
struct UpgradeTests {
    @Test(
        "version 2 opens a version 1 database: every record and pending change is there, and each is pushed in version 2's wire shape, temporary IDs replaced, nothing lost or duplicated",
        arguments: [false, true]
    )
    func versionTwoOpensAndPushesVersionOneChanges(payloadsStoredAtSave: Bool) async throws {
        let fixture = try await VersionOneDatabase.make(payloadsStoredAtSave: payloadsStoredAtSave)
        defer { fixture.remove() }
        let ids = fixture.ids

        let store = try SyncStore(
            .file(fixture.database), models: EvolutionV2Models.GeneratedModels.all,
            removedModels: EvolutionV2Models.GeneratedModels.removedModels)
        let memos = store.repository(for: Memo.self)
        let authors = store.repository(for: AuthorV2.self)

        // Every record, in version 2's shape.
        let records = try await memos.all()
        #expect(records.count == 4, "\(records.map(\.text))")
        let first = try #require(records.first { $0.id.rawValue == ids["first"] })
        #expect(first.text == "first, edited" && first.status == .open && first.priority == 3 && !first.pinned)
        let offline = try #require(records.first { $0.id.rawValue == ids["offlineTemporary"] })
        #expect(offline.id.isTemporary && offline.text == "offline" && offline.status == .open)
        let bobs = try #require(records.first { $0.id.rawValue == ids["bobsNoteTemporary"] })
        #expect(bobs.status == .done && bobs.authorId.rawValue == ids["bob"])
        #expect(records.contains { $0.id.rawValue == ids["refusedTemporary"] && $0.priority == 9 })
        #expect(!records.contains { $0.id.rawValue == ids["second"] }, "the deleted note came back")
        let (tables, columns, parents, indexed) = try await store.read { db in
            (
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"),
                try db.columns(in: "memo").map(\.name), try db.foreignKeys(on: "memo").map(\.destinationTable),
                try db.indexes(on: "memo").flatMap(\.columns)
            )
        }
        #expect(!tables.contains("note") && !tables.contains("sketch") && !tables.contains("modelsync_migrating"))
        #expect(columns == ["id", "text", "status", "priority", "pinned", "authorId"])
        #expect(parents == ["author"])
        #expect(indexed.contains("authorId"))

        // Every pending change, in order, with its key; the failed create still failed.
        let entries = try await store.outbox.entries()
        #expect(
            entries.map(\.tableName)
                == fixture.entriesBefore.filter { $0.table != "sketch" }.map { $0.table == "note" ? "memo" : $0.table })
        #expect(entries.map(\.idempotencyKey) == fixture.entriesBefore.filter { $0.table != "sketch" }.map(\.key))
        #expect(entries.filter { $0.state == .failed }.map(\.recordID) == [ids["refusedTemporary"]])
        #expect(entries.filter { $0.payload == nil }.map(\.recordID) == [ids["second"]])
        for entry in entries where entry.tableName == "memo" && entry.payload != nil {
            let payload = try #require(
                entry.payload.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
            #expect(Set(payload.keys) == ["id", "text", "status", "priority", "pinned", "authorId"], "\(payload)")
        }

        // Transforms: T to T?, T? to T with a default, Int to Double, String to an enum, a removed
        // belongsTo, a new optional one; in rows and in the queued create.
        let gadgets = try await store.repository(for: GadgetV2.self).all()
        let synced = try #require(gadgets.first { $0.id.rawValue == ids["gadget"] })
        #expect(synced.label == "g1" && synced.nickname == "none" && synced.weight == 5.0 && synced.kind == .alpha)
        #expect(synced.memoId == nil)
        let queued = try #require(gadgets.first { $0.id.rawValue == ids["offlineGadget"] })
        #expect(queued.nickname == "twin" && queued.weight == 7.0 && queued.kind == .beta)
        let gadgetEntry = try #require(entries.first { $0.tableName == "gadget" })
        let gadgetPayload = try #require(
            gadgetEntry.payload.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(Set(gadgetPayload.keys) == ["id", "label", "nickname", "weight", "kind", "memoId"], "\(gadgetPayload)")
        #expect(gadgetPayload["kind"] as? String == "beta" && gadgetPayload["nickname"] as? String == "twin")
        let gadgetColumns = try await store.read { db in
            (try db.columns(in: "gadget").map(\.name), try db.foreignKeys(on: "gadget").map(\.destinationTable))
        }
        #expect(gadgetColumns.0 == ["id", "label", "nickname", "weight", "kind", "memoId"])
        #expect(gadgetColumns.1 == ["memo"])

        let authorsBefore = try await authors.all()
        #expect(Set(authorsBefore.map(\.id.rawValue)) == [ids["author"], ids["bob"]])
        #expect(Set(authorsBefore.map(\.displayName)) == ["Ada", "Bob"] && authorsBefore.allSatisfy { $0.bio.isEmpty })
        let authorColumns = try await store.read { db in try db.columns(in: "author").map(\.name) }
        #expect(authorColumns == ["id", "displayName", "bio"], "renamed and added in place")
        let bobsEntry = try #require(entries.first { $0.tableName == "author" })
        #expect(bobsEntry.payload.map { $0.contains(#""displayName":"Bob""#) && $0.contains(#""bio":"""#) } == true)
        // Author switched to server IDs: existing authors keep theirs, a new one gets a temporary ID.
        let carol = try await authors.save(AuthorV2(displayName: "Carol"))
        #expect(carol.id.isTemporary)

        // Pushed to a version 2 server holding the synced records (migrated on its side).
        let server = ReferenceServer(models: EvolutionV2Models.GeneratedModels.all, validate: VersionTwoWire.check)
        for author in fixture.serverRecordsBefore["author"] ?? [] {
            try await server.insert(VersionTwoWire.author(fromAuthor: author), into: AuthorV2.self)
        }
        for note in fixture.serverRecordsBefore["note"] ?? [] {
            try await server.insert(VersionTwoWire.memo(fromNote: note), into: Memo.self)
        }
        let url = try await server.start()
        defer { Task { await server.stop() } }
        let engine = SyncEngine(
            store: store,
            remote: RESTRemote(
                configuration: .init(baseURL: url, timeout: 10), models: EvolutionV2Models.GeneratedModels.all))
        #expect(try await store.outbox.retryFailed() == 1)
        let report = try await engine.push()
        #expect(report.failed == 0 && report.conflicts == 0, "\(report)")
        #expect(try await store.outbox.entries().isEmpty)

        let serverMemos = await server.records(of: Memo.self)
        #expect(serverMemos.count == 4, "\(serverMemos)")  // first, offline, bob's, refused; second deleted
        #expect(
            Set(serverMemos.compactMap { $0["text"]?.stringValue }) == [
                "first, edited", "offline", "by bob", "refused by v1",
            ])
        let serverAuthors = await server.records(of: AuthorV2.self)
        #expect(serverAuthors.count == 3)
        let serverIDs = Dictionary(
            uniqueKeysWithValues: serverAuthors.compactMap { record in
                record["display_name"]?.stringValue.flatMap { name in record["id"]?.idString.map { (name, $0) } }
            })
        #expect(serverIDs["Ada"] == ids["author"], "an existing author kept its ID")
        let localAuthors = try await authors.all()
        #expect(Set(localAuthors.map(\.id.rawValue)) == Set(serverIDs.values))
        // Bob's create, queued by version 1 with a client ID, went out; the server answered its own ID,
        // which replaced Bob's everywhere (his memo's foreign key too), and the ID map keeps the old one.
        let serverBob = try #require(serverIDs["Bob"])
        let mapped = try await store.read { db in
            try String.fetchOne(
                db, sql: "SELECT newID FROM modelsync_id_map WHERE tableName = 'author' AND oldID = ?",
                arguments: [ids["bob"]])
        }
        #expect(mapped == serverBob)
        #expect(await server.replayedCreates == 0)
        let serverGadgets = await server.records(of: GadgetV2.self)
        #expect(serverGadgets.count == 1 && serverGadgets.first?["kind"]?.stringValue == "beta")
        let local = try await memos.all()
        #expect(local.allSatisfy { !$0.id.isTemporary })
        #expect(Set(local.map(\.id.rawValue)) == Set(serverMemos.compactMap { $0["id"]?.idString }))
        let bobsNow = try #require(local.first { $0.text == "by bob" })
        #expect(bobsNow.authorId.rawValue == serverBob)
        let serverBobs = try #require(serverMemos.first { $0["text"]?.stringValue == "by bob" })
        #expect(serverBobs["author_id"]?.idString == serverBob && serverBobs["status"]?.stringValue == "done")
    }

    @Test(
        "a process killed with SIGKILL inside the migration leaves the version 1 database intact; the next open migrates"
    )
    func killedDuringMigrationLeavesOldDatabase() async throws {
        let fixture = try await VersionOneDatabase.make()
        defer { fixture.remove() }
        let before = try await VersionOneDatabase.snapshot(fixture.database)

        let output = fixture.directory.appendingPathComponent("v2.out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = Process()
        process.executableURL = try VersionOneDatabase.child()
        process.arguments = ["v2-stop-in-migration", fixture.database.path]
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let reached = try await eventually(timeout: .seconds(60)) {
            ((try? String(contentsOf: output, encoding: .utf8)) ?? "").contains("migrating")
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        try #require(reached, "the child never reached the migration: \(text)")
        #expect(text.contains("migrating author,gadget,memo,sketch"), "\(text)")
        kill(process.processIdentifier, SIGKILL)
        await waitForExit(process)
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL)

        // The old database, as version 1 left it.
        #expect(try await VersionOneDatabase.snapshot(fixture.database) == before)

        // The next open migrates.
        let store = try SyncStore(
            .file(fixture.database), models: EvolutionV2Models.GeneratedModels.all,
            removedModels: EvolutionV2Models.GeneratedModels.removedModels)
        #expect(try await store.repository(for: Memo.self).all().count == 4)
        #expect(try await store.outbox.entries().count == before.outbox.filter { !$0.hasPrefix("sketch") }.count)
    }

    @Test(
        "version 2 opened with GeneratedModels.all alone (no removedModels: argument) drops the removed model and keeps every other record and queued change"
    )
    func removedModelsComeWithTheGeneratedModels() async throws {
        let fixture = try await VersionOneDatabase.make()
        defer { fixture.remove() }
        let store = try SyncStore(.file(fixture.database), models: EvolutionV2Models.GeneratedModels.all)
        let tables = try await store.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        #expect(!tables.contains("sketch") && tables.contains("memo"), "\(tables)")
        #expect(try await store.repository(for: Memo.self).all().count == 4)
        let entries = try await store.outbox.entries()
        #expect(entries.map(\.idempotencyKey) == fixture.entriesBefore.filter { $0.table != "sketch" }.map(\.key))
    }
}

/// What the version 2 server accepts: memos and authors with exactly version 2's wire keys.
enum VersionTwoWire {
    static let memoKeys: Set<String> = ["id", "text", "status", "priority", "pinned", "author_id"]

    @Sendable static func check(_ table: String, _ record: [String: JSONValue]) -> String? {
        let keys = Set(record.keys).subtracting(["_version"])
        switch table {
        case "memo":
            if keys != memoKeys { return "a memo has the keys \(keys.sorted()), not \(memoKeys.sorted())" }
            if let status = record["status"]?.stringValue, !["open", "done", "archived"].contains(status) {
                return "status '\(status)' is no case"
            }
        case "author":
            if keys != ["id", "display_name", "bio"] { return "an author has the keys \(keys.sorted())" }
        case "gadget":
            let expected: Set<String> = ["id", "label", "nickname", "weight", "kind", "memo_id"]
            if keys != expected { return "a gadget has the keys \(keys.sorted()), not \(expected.sorted())" }
        default:
            return "version 2 has no table '\(table)'"
        }
        return nil
    }

    /// A synced author of the version 1 server as the version 2 server holds it.
    static func author(fromAuthor author: [String: JSONValue]) -> [String: JSONValue] {
        ["id": author["id"] ?? .null, "display_name": author["name"] ?? .null, "bio": .string("")]
    }

    /// A synced note of the version 1 server as the version 2 server holds it after its own migration.
    static func memo(fromNote note: [String: JSONValue]) -> [String: JSONValue] {
        var memo = note
        memo["text"] = note["body"]
        memo.removeValue(forKey: "body")
        memo.removeValue(forKey: "legacy_color")
        memo.removeValue(forKey: "_version")
        let mapping = ["todo": "open", "finished": "done"]
        memo["status"] = .string(mapping[note["status"]?.stringValue ?? ""] ?? "open")
        memo["pinned"] = .bool(false)
        return memo
    }
}

/// A database made by version 1 of the app (the child process) against a version 1 server.
struct VersionOneDatabase {
    var directory: URL
    var database: URL
    var ids: [String: String]
    var entriesBefore: [(table: String, key: String?)]
    var serverRecordsBefore: [String: [[String: JSONValue]]]

    func remove() { try? FileManager.default.removeItem(at: directory) }

    static func child() throws -> URL {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        while directory.path.contains(".xctest") { directory = directory.deletingLastPathComponent() }
        let child = directory.appendingPathComponent("modelsync-evolution-child")
        guard FileManager.default.isExecutableFile(atPath: child.path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: child.path])
        }
        return child
    }

    /// - Parameter payloadsStoredAtSave: Stores every pending change's payload in the outbox, as
    ///   releases before payloads were read at send time did (an entry never sent then held the record
    ///   as JSON in version 1's shape, which the upgrade must rewrite and send).
    static func make(payloadsStoredAtSave: Bool = false) async throws -> VersionOneDatabase {
        let directory = try makeTemporaryDirectory("evolution")
        let database = directory.appendingPathComponent("notes.sqlite")
        let server = ReferenceServer(models: EvolutionV1Models.GeneratedModels.all) { table, record in
            table == "note" && record["body"]?.stringValue == "refused by v1" ? "version 1 refuses this note" : nil
        }
        let url = try await server.start()
        let (status, output) = try await runProcess([try child().path, "v1", database.path, url.absoluteString])
        let serverRecords = await server.records()
        await server.stop()
        try #require(status == 0, "version 1 failed: \(output)")
        let line = try #require(output.split(separator: "\n").last.map(String.init))
        let ids = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        if payloadsStoredAtSave {
            let store = try SyncStore(.file(database), models: EvolutionV1Models.GeneratedModels.all)
            let pending = try await store.outbox.entries()
            try await store.writeBypassingSync { db in
                for entry in pending where entry.payload != nil {
                    try db.execute(
                        sql: "UPDATE modelsync_outbox SET payload = ? WHERE sequence = ? AND payload IS NULL",
                        arguments: [entry.payload, entry.sequence])
                }
            }
        }
        let queue = try DatabaseQueue(path: database.path)
        let (entries, unstored) = try queue.read { db in
            (
                try Row.fetchAll(
                    db, sql: "SELECT tableName, idempotencyKey, state FROM modelsync_outbox ORDER BY sequence"),
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM modelsync_outbox WHERE payload IS NULL AND operation <> 'delete'")
            )
        }
        try queue.close()
        if payloadsStoredAtSave {
            #expect(unstored == 0, "every create and update holds version 1's payload")
        } else {
            #expect((unstored ?? 0) >= 5, "changes never sent store no payload")
        }
        // The failed create, then the offline changes: note, author, note, note update, note delete, sketch.
        #expect(
            entries.map { $0["tableName"] as String } == [
                "note", "note", "author", "note", "note", "note", "sketch", "gadget",
            ])
        #expect(entries.map { $0["state"] as String }.filter { $0 == "failed" }.count == 1)
        #expect((serverRecords["note"] ?? []).count == 2 && (serverRecords["sketch"] ?? []).count == 1)
        return VersionOneDatabase(
            directory: directory, database: database, ids: ids,
            entriesBefore: entries.map { (table: $0["tableName"], key: $0["idempotencyKey"]) },
            serverRecordsBefore: serverRecords)
    }

    struct Snapshot: Equatable {
        var tables: [String]
        var rows: [String]
        var outbox: [String]
        var schema: [String]
    }

    /// The tables, every row of the model tables, the outbox and the stored schema.
    static func snapshot(_ database: URL) async throws -> Snapshot {
        let queue = try DatabaseQueue(path: database.path)
        defer { try? queue.close() }
        return try await queue.read { db in
            let tables = try String.fetchAll(
                db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            var rows: [String] = []
            for table in ["author", "note", "sketch", "gadget"] where tables.contains(table) {
                rows += try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY id").map { "\(table) \($0)" }
            }
            let outbox = try Row.fetchAll(
                db,
                sql:
                    "SELECT tableName, recordID, operation, payload, idempotencyKey, state FROM modelsync_outbox ORDER BY sequence"
            ).map { "\($0["tableName"] as String) \($0)" }
            let schema = try String.fetchAll(db, sql: "SELECT schema FROM modelsync_schema ORDER BY tableName")
            return Snapshot(tables: tables, rows: rows, outbox: outbox, schema: schema)
        }
    }
}
