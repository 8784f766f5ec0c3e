import Foundation
import Logging
import ModelSync
import ModelSyncGenerator
import ModelSyncServer
import PostgresNIO
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Version 1 and version 2 of the notes app (Tests/Evolution): the server side of issue 12.
enum NotesSpecs {
    static let version1 = "Tests/Evolution/V1Models/Notes.modelsync.yaml"
    static let version2 = "Tests/Evolution/V2Models/Notes.modelsync.yaml"

    static func schema(_ spec: String) throws -> ServerSchema {
        try ModelSyncGenerator.serverSchema([SpecSource(contentsOf: packageRoot.appending(path: spec).path)])
    }

    static func schema(text: String) throws -> ServerSchema {
        try ModelSyncGenerator.serverSchema([SpecSource(path: "Notes.modelsync.yaml", text: text)])
    }
}

/// What version 1 left on its server: records, a tombstone, history, stored idempotent answers, and
/// the cursor of a client that pulled before the upgrade.
struct Version1Data {
    var noteID: String
    var noteCreate: JSONValue
    var cursorBeforeUpgrade: String
    var deletedNoteID: String
}

/// A database built by the version 1 server, with data; the server is stopped.
func version1Database(tenant: String = "acme") async throws -> (url: String, data: Version1Data) {
    let server = try await GeneratedServer.start(
        databaseURL: try await PostgresCluster.shared().createDatabase("evolve"),
        schema: try NotesSpecs.schema(NotesSpecs.version1))
    let api = ProtocolClient(
        baseURL: server.url, headers: ["Authorization": "Bearer " + (try await token(tenant: tenant))])
    let author = try await api.send(
        "POST", "/authors", .object(["id": .string("aut_1"), "name": .string("Ada")]),
        headers: ["Idempotency-Key": "k-author"])
    #expect(author.status == 201, "\(author.text)")
    let noteCreate = JSONValue.object([
        "body": .string("hello"), "status": .string("todo"), "priority": .integer(3),
        "legacy_color": .string("red"), "author_id": .string("aut_1"),
    ])
    let note = try await api.send("POST", "/notes", noteCreate, headers: ["Idempotency-Key": "k-note"])
    #expect(note.status == 201, "\(note.text)")
    let noteID = try #require(note.object["id"]?.idString)
    let second = try await api.send(
        "POST", "/notes",
        .object([
            "body": .string("bye"), "status": .string("finished"), "priority": .integer(1),
            "author_id": .string("aut_1"),
        ]))
    let secondID = try #require(second.object["id"]?.idString)
    // A client pulls here: the changes after this cursor are an update and a delete.
    let listing = try await api.send("GET", "/notes?cursor=0-0")
    let cursor = try #require(listing.object["next_cursor"].flatMap { if case .string(let c) = $0 { c } else { nil } })
    var updated = noteCreate.objectValue!
    updated["body"] = .string("hello again")
    let update = try await api.send(
        "PUT", "/notes/\(noteID)", .object(updated), headers: ["If-Match": "\"1\"", "Idempotency-Key": "k-update"])
    #expect(update.status == 200, "\(update.text)")
    #expect(try await api.send("DELETE", "/notes/\(secondID)").status == 204)
    let sketch = try await api.send("POST", "/sketches", .object(["id": .string("s1"), "caption": .string("c")]))
    #expect(sketch.status == 201, "\(sketch.text)")
    let gadget = try await api.send(
        "POST", "/gadgets",
        .object([
            "id": .string("g1"), "label": .string("L"), "weight": .integer(5), "kind": .string("a"),
            "owner_id": .string("aut_1"),
        ]))
    #expect(gadget.status == 201, "\(gadget.text)")
    await server.stop()
    return (
        server.databaseURL,
        Version1Data(
            noteID: noteID, noteCreate: noteCreate, cursorBeforeUpgrade: cursor, deletedNoteID: secondID)
    )
}

func databaseName(_ url: String) -> String {
    String(url.split(separator: "/").last!)
}

/// The value `sql` selects in `database` (psql's unaligned output, trimmed).
func selectValue(_ database: String, _ sql: String) async throws -> String {
    try await PostgresCluster.shared().psql(database, sql).trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite("The generated server's schema migration (issue 12)")
struct ServerMigrationTests {
    @Test(
        "the spec's history (renamedFrom, removed, default, mapping, oldestClientSchemaVersion) reaches the server schema"
    )
    func specHistoryReachesTheServerSchema() throws {
        let schema = try NotesSpecs.schema(NotesSpecs.version2)
        #expect(schema.schemaVersion == 2)
        #expect(schema.oldestClientSchemaVersion == 2)
        #expect(schema.removedTables == ["sketch"])
        let memo = try #require(schema.model(table: "memo"))
        #expect(memo.previousTable == "note")
        #expect(memo.previousPath == "/notes")
        #expect(memo.removedColumns.contains("legacy_color"))
        #expect(memo.columns.first { $0.name == "text" }?.renamedFrom == "body")
        #expect(memo.columns.first { $0.name == "pinned" }?.defaultValue == "false")
        #expect(memo.columns.first { $0.name == "status" }?.defaultValue == "\"open\"")
        #expect(memo.columns.first { $0.name == "status" }?.valueMapping == ["todo": "open", "finished": "done"])
        #expect(try #require(schema.model(table: "gadget")).removedColumns.contains("owner_id"))
        #expect(try #require(schema.model(table: "author")).columns.first?.renamedFrom == "name")

        let text = try String(contentsOf: packageRoot.appending(path: NotesSpecs.version2), encoding: .utf8)
        let graceful = try NotesSpecs.schema(
            text: text.replacingOccurrences(
                of: "schemaVersion: 2", with: "schemaVersion: 2\n  oldestClientSchemaVersion: 1"))
        #expect(graceful.oldestClientSchemaVersion == 1)
        #expect(graceful.shape == schema.shape)
        do {
            _ = try NotesSpecs.schema(
                text: text.replacingOccurrences(
                    of: "schemaVersion: 2", with: "schemaVersion: 2\n  oldestClientSchemaVersion: 3"))
            Issue.record("an oldestClientSchemaVersion newer than the schemaVersion must be an error")
        } catch let failure as GenerationFailed {
            #expect(
                "\(failure.diagnostics)".contains("'oldestClientSchemaVersion' is 3, newer than the schemaVersion 2"))
        }
    }

    @Test(
        "a version 2 server migrates a version 1 database: every row in v2's shape, v1's idempotent answers replayed, the cursor continuous"
    )
    func version2MigratesVersion1Database() async throws {
        let (url, data) = try await version1Database()
        let server = try await GeneratedServer.start(
            databaseURL: url, schema: try NotesSpecs.schema(NotesSpecs.version2))
        let api = ProtocolClient(
            baseURL: server.url,
            headers: [
                "Authorization": "Bearer " + (try await token(tenant: "acme")), "ModelSync-Schema-Version": "2",
            ])

        let memo = try await api.send("GET", "/memos/\(data.noteID)")
        #expect(memo.status == 200, "\(memo.text)")
        #expect(memo.object["text"] == .string("hello again"))
        #expect(memo.object["body"] == nil)
        #expect(memo.object["status"] == .string("open"))
        #expect(memo.object["pinned"] == .bool(false))
        #expect(memo.object["priority"] == .integer(3))
        #expect(memo.object["legacy_color"] == nil)
        #expect(memo.object["_version"] == .integer(2), "the migration must not bump versions")
        let author = try await api.send("GET", "/authors/aut_1")
        #expect(author.object["display_name"] == .string("Ada"))
        #expect(author.object["bio"] == .string(""))
        let gadget = try await api.send("GET", "/gadgets/g1")
        #expect(gadget.object["nickname"] == .string("none"))
        #expect(gadget.object["kind"] == .string("alpha"))
        #expect(gadget.object["owner_id"] == nil)
        #expect(gadget.object["memo_id"] == .null)
        #expect(try await api.send("GET", "/sketches").status == 404)
        let database = databaseName(url)
        #expect(
            try await selectValue(
                database,
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'gadget'::regclass "
                    + "AND attname = 'weight'") == "double precision")
        #expect(
            try await selectValue(database, "SELECT to_regclass('note') IS NULL AND to_regclass('sketch') IS NULL")
                == "t")

        // A retry of version 1's create, now in version 2's shape: the stored answer, in v2's shape.
        let retry = try await api.send(
            "POST", "/memos",
            .object([
                "text": .string("hello"), "status": .string("open"), "priority": .integer(3),
                "pinned": .bool(false), "author_id": .string("aut_1"),
            ]), headers: ["Idempotency-Key": "k-note"])
        #expect(retry.status == 201, "\(retry.text)")
        #expect(retry.object["id"]?.idString == data.noteID)
        #expect(retry.object["text"] == .string("hello"))
        #expect(retry.object["body"] == nil)

        // The cursor of a client that pulled before the upgrade: the update and the delete, nothing else.
        let changes = try await api.send("GET", "/memos?cursor=\(data.cursorBeforeUpgrade)")
        guard case .array(let items)? = changes.object["data"] else {
            throw TestFailure(description: "no data: \(changes.text)")
        }
        #expect(items.count == 2, "\(changes.text)")
        #expect(items.first?.objectValue?["text"] == .string("hello again"))
        #expect(items.last?.objectValue?["id"]?.idString == data.deletedNoteID)
        #expect(items.last?.objectValue?["deleted"] == .bool(true))

        // History follows the renamed model and field.
        let history = try await api.send("GET", "/memos/\(data.noteID)/history")
        guard case .array(let entries)? = history.object["data"] else {
            throw TestFailure(description: "no history: \(history.text)")
        }
        #expect(entries.count == 2)
        #expect(entries.last?.objectValue?["after"]?.objectValue?["text"] == .string("hello again"))
        #expect(entries.last?.objectValue?["after"]?.objectValue?["body"] == nil)

        // Author switched to server IDs: a new author gets one; the old one kept its own.
        let newAuthor = try await api.send(
            "POST", "/authors", .object(["display_name": .string("Bo"), "bio": .string("b")]))
        #expect(newAuthor.status == 201, "\(newAuthor.text)")
        #expect(newAuthor.object["id"]?.idString.map { !$0.isEmpty && $0 != "aut_1" } == true)
        // A new memo, and a new relationship to it.
        let newMemo = try await api.send(
            "POST", "/memos",
            .object([
                "text": .string("new"), "status": .string("done"), "priority": .integer(1), "pinned": .bool(true),
                "author_id": .string("aut_1"),
            ]))
        #expect(newMemo.status == 201, "\(newMemo.text)")
        let link = try await api.send(
            "PUT", "/gadgets/g1",
            .object([
                "label": .null, "nickname": .string("n"), "weight": .number(5.5), "kind": .string("beta"),
                "memo_id": newMemo.object["id"]!,
            ]))
        #expect(link.status == 200, "\(link.text)")
        let dangling = try await api.send(
            "PUT", "/gadgets/g1",
            .object([
                "nickname": .string("n"), "weight": .number(5.5), "kind": .string("beta"), "memo_id": .string("nope"),
            ]))
        #expect(dangling.status == 422, "the new foreign key is enforced: \(dangling.text)")
        await server.stop()

        // The next start finds the schema it built: nothing to do.
        let again = try await GeneratedServer.start(
            databaseURL: url, schema: try NotesSpecs.schema(NotesSpecs.version2))
        await again.stop()
    }

    @Test("a change the spec does not explain is refused with the stored schema named, and nothing is changed")
    func unexplainedChangeIsRefused() async throws {
        let (url, _) = try await version1Database()
        let text = try String(contentsOf: packageRoot.appending(path: NotesSpecs.version2), encoding: .utf8)
            .replacingOccurrences(of: "displayName: { type: String, renamedFrom: name }", with: "displayName: String")
        let schema = try NotesSpecs.schema(text: text)
        do {
            let server = try await GeneratedServer.start(databaseURL: url, schema: schema)
            await server.stop()
            Issue.record("the migration should have been refused")
        } catch let error as ServerMigrationError {
            #expect(error.message.contains("model 'Author' had field 'name'"), "\(error.message)")
            #expect(error.message.contains("renamedFrom: name"))
            #expect(error.message.contains("removed: [name]"))
            #expect(error.message.contains("schema version 1, stored in its table 'modelsync_schema'"))
            #expect(error.message.contains("note(id, body: text"))
        }
        #expect(
            try await selectValue(
                databaseName(url), "SELECT to_regclass('note') IS NOT NULL AND to_regclass('memo') IS NULL") == "t")
        // Version 1 still serves it.
        let server = try await GeneratedServer.start(
            databaseURL: url, schema: try NotesSpecs.schema(NotesSpecs.version1))
        await server.stop()
    }

    @Test("a record the enum mapping does not cover stops the migration with its value, and nothing is changed")
    func unmappedEnumValueIsRefused() async throws {
        let (url, _) = try await version1Database()
        _ = try await selectValue(databaseName(url), "UPDATE gadget SET kind = 'zeta'")
        do {
            let server = try await GeneratedServer.start(
                databaseURL: url, schema: try NotesSpecs.schema(NotesSpecs.version2))
            await server.stop()
            Issue.record("the migration should have been refused")
        } catch let error as ServerMigrationError {
            #expect(error.message.contains("field 'kind' of model 'Gadget' is now an enum"), "\(error.message)")
            #expect(error.message.hasSuffix("'zeta'"))
        }
        #expect(try await selectValue(databaseName(url), "SELECT to_regclass('note') IS NOT NULL") == "t")
    }

    @Test("an older client inside the grace period sends and receives version 1's shape; outside it gets 426")
    func olderClientsDuringTheGracePeriod() async throws {
        let (url, data) = try await version1Database()
        var schema = try NotesSpecs.schema(NotesSpecs.version2)
        schema.oldestClientSchemaVersion = 1
        let server = try await GeneratedServer.start(databaseURL: url, schema: schema)
        let authorization = "Bearer " + (try await token(tenant: "acme"))
        let old = ProtocolClient(baseURL: server.url, headers: ["Authorization": authorization])
        let current = ProtocolClient(
            baseURL: server.url, headers: ["Authorization": authorization, "ModelSync-Schema-Version": "2"])

        // A version 1 create at version 1's path: renamed keys, a mapped value, the default filled.
        let created = try await old.send(
            "POST", "/notes",
            .object([
                "body": .string("from v1"), "status": .string("finished"), "priority": .integer(2),
                "legacy_color": .string("blue"), "author_id": .string("aut_1"),
            ]), headers: ["Idempotency-Key": "k-old"])
        #expect(created.status == 201, "\(created.text)")
        #expect(created.object["body"] == .string("from v1"))
        #expect(created.object["text"] == nil)
        let id = try #require(created.object["id"]?.idString)
        let seen = try await current.send("GET", "/memos/\(id)")
        #expect(seen.object["text"] == .string("from v1"))
        #expect(seen.object["status"] == .string("done"))
        #expect(seen.object["pinned"] == .bool(false))
        // A version 2 client pins it; a version 1 update keeps the pin it does not know about.
        var pinned = seen.object.filter { !$0.key.hasPrefix("_") && $0.key != "id" }
        pinned["pinned"] = .bool(true)
        #expect(try await current.send("PUT", "/memos/\(id)", .object(pinned)).status == 200)
        let edited = try await old.send(
            "PUT", "/notes/\(id)",
            .object([
                "body": .string("edited by v1"), "status": .string("todo"), "priority": .integer(2),
                "author_id": .string("aut_1"),
            ]))
        #expect(edited.status == 200, "\(edited.text)")
        let after = try await current.send("GET", "/memos/\(id)")
        #expect(after.object["text"] == .string("edited by v1"))
        #expect(after.object["status"] == .string("open"))
        #expect(after.object["pinned"] == .bool(true))
        // Its listing, in its shape.
        let listing = try await old.send("GET", "/notes?cursor=\(data.cursorBeforeUpgrade)")
        guard case .array(let items)? = listing.object["data"] else {
            throw TestFailure(description: "no data: \(listing.text)")
        }
        #expect(items.contains { $0.objectValue?["body"] == .string("edited by v1") })
        #expect(!items.contains { $0.objectValue?["text"] != nil })
        await server.stop()

        // Without a grace period, version 1 is too old: 426, and nothing is stored.
        let strict = try await GeneratedServer.start(
            databaseURL: url, schema: try NotesSpecs.schema(NotesSpecs.version2))
        let refusedClient = ProtocolClient(baseURL: strict.url, headers: ["Authorization": authorization])
        let refused = try await refusedClient.send(
            "POST", "/memos",
            .object([
                "body": .string("lost?"), "status": .string("todo"), "priority": .integer(1),
                "author_id": .string("aut_1"),
            ]))
        #expect(refused.status == 426, "\(refused.text)")
        #expect(refused.object["code"] == .string("client_too_old"))
        #expect(refused.object["minimum_schema_version"] == .integer(2))
        #expect(refused.error.contains("this app version is too old"))
        #expect(try await selectValue(databaseName(url), "SELECT count(*) FROM memo") == "2")
        await strict.stop()
    }
}

@Suite("The server's schema migration across processes (issue 12)")
struct ServerMigrationProcessTests {
    /// A session of its own on `url`, for locks the test holds.
    static func withSession<T: Sendable>(
        _ url: String, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: try DatabaseURL.configuration(url))
        let task = Task { await client.run() }
        defer { task.cancel() }
        return try await client.withConnection { try await body($0) }
    }

    static func count(_ database: String, _ sql: String) async throws -> Int {
        Int(try await selectValue(database, sql)) ?? -1
    }

    /// Waits until `sql` counts `expected` (the state another process reaches), with a generous bound.
    static func waitUntil(_ database: String, _ sql: String, is expected: Int) async throws {
        for _ in 0..<1200 {
            if try await count(database, sql) == expected { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure(description: "never reached \(expected): \(sql)")
    }

    @Test("a migration SIGKILLed half way leaves version 1 intact, and the next start migrates")
    func killedMigrationLeavesVersion1Intact() async throws {
        let (url, _) = try await version1Database()
        let database = databaseName(url)
        let waiting =
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'modelsync_idempotency'::regclass"
        try await Self.withSession(url) { session in
            // Holding the idempotency table stops the migration after it changed the first table.
            try await session.query("BEGIN", logger: Logger(label: "test"))
            try await session.query(
                "LOCK TABLE modelsync_idempotency IN ACCESS EXCLUSIVE MODE", logger: Logger(label: "test"))
            let child = try await ServerProcess.start(
                database: url, port: try freeLoopbackPort(), spec: NotesSpecs.version2, waitUntilListening: false)
            // Whatever happens, the child goes: left waiting on the lock, its open transaction would hold
            // back the change cursor of every database of the shared cluster (other tests' listings).
            defer { child.kill() }
            try await Self.waitUntil(database, waiting, is: 1)
            let pid = try await Self.count(
                database,
                "SELECT pid FROM pg_locks WHERE NOT granted AND relation = 'modelsync_idempotency'::regclass")
            // It is in the middle: it holds the table it altered.
            #expect(
                try await Self.count(
                    database,
                    "SELECT count(*) FROM pg_locks WHERE pid = \(pid) AND granted AND relation = 'author'::regclass "
                        + "AND mode = 'AccessExclusiveLock'") == 1)
            child.kill()
            await child.waitForExit()
            try await session.query("ROLLBACK", logger: Logger(label: "test"))
            try await Self.waitUntil(database, "SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid)", is: 0)
        }
        #expect(
            try await selectValue(
                database,
                "SELECT to_regclass('note') IS NOT NULL AND to_regclass('memo') IS NULL AND "
                    + "(SELECT count(*) FROM information_schema.columns WHERE table_name = 'author' AND "
                    + "column_name IN ('name', 'bio')) = 1") == "t")
        #expect(
            try await selectValue(database, "SELECT \"schema\"::jsonb ->> 'schemaVersion' FROM modelsync_schema")
                == "1")

        let server = try await ServerProcess.start(
            database: url, port: try freeLoopbackPort(), spec: NotesSpecs.version2)
        let api = ProtocolClient(
            baseURL: server.url,
            headers: ["Authorization": "Bearer " + (try await token(tenant: "acme")), "ModelSync-Schema-Version": "2"])
        #expect(try await api.send("GET", "/authors/aut_1").object["display_name"] == .string("Ada"))
        #expect(try await api.records("/memos").count == 1)
        await server.waitForExitAfterKill()
    }

    @Test("two version 2 servers starting at once on a version 1 database: one migrates, both serve")
    func twoServersStartingAtOnce() async throws {
        let (url, data) = try await version1Database()
        let database = databaseName(url)
        let servers = try await Self.withSession(url) { session in
            // Both wait on the migration lock, then race for it.
            try await session.query("SELECT pg_advisory_lock(7150209011)", logger: Logger(label: "test"))
            let servers = [
                try await ServerProcess.start(
                    database: url, port: try freeLoopbackPort(), spec: NotesSpecs.version2, waitUntilListening: false),
                try await ServerProcess.start(
                    database: url, port: try freeLoopbackPort(), spec: NotesSpecs.version2, waitUntilListening: false),
            ]
            try await Self.waitUntil(
                database, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", is: 2)
            try await session.query("SELECT pg_advisory_unlock(7150209011)", logger: Logger(label: "test"))
            return servers
        }
        for server in servers { try await server.waitUntilListening() }
        let authorization = "Bearer " + (try await token(tenant: "acme"))
        for server in servers {
            let api = ProtocolClient(
                baseURL: server.url, headers: ["Authorization": authorization, "ModelSync-Schema-Version": "2"])
            let memo = try await api.send("GET", "/memos/\(data.noteID)")
            #expect(memo.object["text"] == .string("hello again"), "\(memo.text)")
        }
        let logs = servers.map { (try? String(contentsOf: $0.log, encoding: .utf8)) ?? "" }
        #expect(logs.filter { $0.contains("migrated the database from schema version 1") }.count == 1, "\(logs)")
        for server in servers { await server.waitForExitAfterKill() }
    }
}
