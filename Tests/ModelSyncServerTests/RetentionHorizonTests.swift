import ChatModels
import Foundation
import GRDB
import ModelSyncServer
import Testing

@testable import ModelSync

/// The generated server's retention horizon seen by a plain pull, and a pull beside the live
/// stream: a listing never silently misses deletions, and a model's cursor never moves backwards.
@Suite("Retention horizon and cursors")
struct RetentionHorizonTests {
    /// The device of ``LiveChangesTests``: a store and an engine of `acme`, and the engine's remote.
    static func device(_ url: URL) async throws -> (SyncStore, SyncEngine, RESTRemote) {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let remote = try await LiveChangesTests.remote(url)
        return (store, SyncEngine(store: store, remote: remote), remote)
    }

    /// Prunes every tombstone of the server so far: the horizon is the cursor after every change.
    static func pruneEverything(_ server: GeneratedServer, _ client: ProtocolClient) async throws -> String {
        let listing = try await client.send("GET", "/artifacts?cursor=0-0&limit=1000")
        let horizon = try #require(listing.object["next_cursor"]?.idString)
        _ = try await server.service.pruneTombstones(through: horizon)
        return horizon
    }

    @Test(
        "a listing from a cursor older than the retention horizon answers 410 naming the horizon; from the horizon on it lists"
    )
    func listingBeforeTheHorizonIsGone() async throws {
        let (server, acme) = try await GeneratedServer.startWithClient()
        defer { Task { await server.stop() } }
        try await LiveChangesTests.create(acme, 0..<3)
        let before = try #require(try await acme.send("GET", "/artifacts?cursor=0-0").object["next_cursor"]?.idString)
        #expect(try await acme.send("DELETE", "/artifacts/a0").status == 204)
        let horizon = try await Self.pruneEverything(server, acme)

        let refused = try await acme.send("GET", "/artifacts?cursor=\(before)")
        #expect(refused.status == 410)
        #expect(refused.error.contains("older than what this server keeps"))
        #expect(refused.object["horizon"]?.idString == horizon)
        #expect(try await acme.send("GET", "/artifacts?cursor=\(horizon)").status == 200)
        #expect(try await acme.send("GET", "/artifacts").status == 200)
    }

    @Test(
        "a pull whose cursor is older than the retention horizon lists the model from scratch: records deleted meanwhile go, records with queued changes and unsent records stay"
    )
    func pullAfterPruningNoticesDeletions() async throws {
        let (server, acme) = try await GeneratedServer.startWithClient()
        defer { Task { await server.stop() } }
        try await LiveChangesTests.create(acme, 0..<5)
        let (store, engine, _) = try await Self.device(server.url)
        try await engine.pull(Artifact.self)
        #expect(try await store.artifacts.all().count == 5)

        // Offline: the device edits a1 and creates one; meanwhile a0 and a1 are deleted on the server,
        // a5 is created, and the server prunes the tombstones.
        let edited = try await store.write { tx in
            guard var record: Artifact = try tx.find("a1") else { throw TestFailure(description: "a1 is missing") }
            record.title = "edited offline"
            return try tx.save(record)
        }
        let unsent = try await store.write { tx in try tx.save(Artifact(title: "made offline", kind: "note")) }
        for id in ["a0", "a1"] { #expect(try await acme.send("DELETE", "/artifacts/\(id)").status == 204) }
        try await LiveChangesTests.create(acme, [5])
        _ = try await Self.pruneEverything(server, acme)

        let report = try await engine.pull(Artifact.self)
        let ids = Set(try await store.artifacts.all().map(\.id.rawValue))
        #expect(ids == ["a1", "a2", "a3", "a4", "a5", unsent.id.rawValue])
        #expect(report.deleted == 1)
        #expect(try await store.artifacts.find(edited.id)?.title == "edited offline")
        // The queued edit and create are still there, and go on the next push.
        try await engine.push()
        let onServer = try await acme.records("/artifacts")
        #expect(onServer[unsent.id.rawValue]?["title"] == .string("made offline"))
        #expect(try await engine.pull(Artifact.self).deleted == 0)
    }
}

/// A remote that holds the answer of its first listing of `table` until the test releases it:
/// a pull paused between the server's answer and storing it, by explicit synchronisation.
final class PausedListingRemote: SyncRemote {
    let base: RESTRemote
    let table: String
    /// Yields once the held listing was answered by the server.
    let answered = AsyncStream<Void>.makeStream()
    private let release = AsyncStream<Void>.makeStream()
    private let held = Mutex(false)

    init(_ base: RESTRemote, holding table: String) {
        self.base = base
        self.table = table
    }

    /// Lets the held listing go on.
    func releaseListing() { release.continuation.yield() }

    func list(_ model: ModelSchema, after cursor: String?) async throws -> RemotePage {
        let page = try await base.list(model, after: cursor)
        let holds =
            model.tableName == table
            && held.withLock { held in
                defer { held = true }
                return !held
            }
        if holds {
            answered.continuation.yield()
            var releases = release.stream.makeAsyncIterator()
            _ = await releases.next()
        }
        return page
    }

    func create(_ fields: RecordFields, of model: ModelSchema, idempotencyKey: String) async throws -> RecordFields {
        try await base.create(fields, of: model, idempotencyKey: idempotencyKey)
    }

    func update(_ fields: RecordFields, of model: ModelSchema, idempotencyKey: String) async throws -> RecordFields? {
        try await base.update(fields, of: model, idempotencyKey: idempotencyKey)
    }

    func fetch(id: String, of model: ModelSchema) async throws -> RecordFields? {
        try await base.fetch(id: id, of: model)
    }

    func delete(id: String, of model: ModelSchema) async throws {
        try await base.delete(id: id, of: model)
    }
}

extension RetentionHorizonTests {
    @Test(
        "a live change applied while a pull holds an older page: the pull never stores that page over it, the model's cursor never moves back, and the change is applied once"
    )
    func pullBesideTheLiveStream() async throws {
        let (server, acme) = try await GeneratedServer.startWithClient()
        defer { Task { await server.stop() } }
        try await LiveChangesTests.create(acme, [0])
        let (store, _, rest) = try await Self.device(server.url)
        let paused = PausedListingRemote(rest, holding: Artifact.schema.tableName)
        let engine = SyncEngine(store: store, remote: paused)
        try await SyncEngine(store: store, remote: rest).pull(Artifact.self)
        // Every write of the cursor and of a0's title, in order.
        try await store.writeBypassingSync { db in
            try db.execute(
                sql: """
                    CREATE TABLE test_log (kind TEXT, value TEXT);
                    CREATE TRIGGER test_cursor_insert AFTER INSERT ON modelsync_pull_state
                    WHEN NEW.tableName = 'artifact' BEGIN INSERT INTO test_log VALUES ('cursor', NEW.cursor); END;
                    CREATE TRIGGER test_cursor_update AFTER UPDATE ON modelsync_pull_state
                    WHEN NEW.tableName = 'artifact' BEGIN INSERT INTO test_log VALUES ('cursor', NEW.cursor); END;
                    CREATE TRIGGER test_title AFTER UPDATE OF title ON artifact
                    BEGIN INSERT INTO test_log VALUES ('title', NEW.title); END;
                    """)
        }
        let start = try #require(try await PullState.cursor(store, table: "artifact"))

        // The pull lists a0 at v1 and is held before storing it; a0 then becomes v2, which the
        // stream delivers.
        #expect(try await acme.send("PUT", "/artifacts/a0", LiveChangesTests.artifact("a0", title: "v1")).status == 200)
        let pull = Task { try await engine.pull(Artifact.self) }
        var answered = paused.answered.stream.makeAsyncIterator()
        _ = await answered.next()
        #expect(try await acme.send("PUT", "/artifacts/a0", LiveChangesTests.artifact("a0", title: "v2")).status == 200)
        // What the stream delivers: a0 at v2, with the token after it.
        let page = try await rest.list(Artifact.schema, after: start)
        let record: RecordFields = try #require(page.records.first)
        let token: String = try #require(page.nextCursor)
        #expect(record["title"] == .string("v2"))
        let change = LiveChange(table: "artifact", token: token, record: record)
        // The stream's change either is applied now or waits for the pull; either way the pull is
        // released only after that happened.
        let (decided, decide) = AsyncStream<Void>.makeStream()
        engine.pullOrLiveApply.onWait { decide.yield() }
        let live = Task {
            defer { decide.yield() }
            return try await engine.applyLiveChanges([change])
        }
        var decisions = decided.makeAsyncIterator()
        _ = await decisions.next()
        paused.releaseListing()
        _ = try await pull.value
        let (applied, skipped) = try await live.value

        let log = try await store.read { db in
            try Row.fetchAll(db, sql: "SELECT kind, value FROM test_log ORDER BY rowid").map {
                (kind: $0["kind"] as String, value: $0["value"] as String)
            }
        }
        let cursors = log.filter { $0.kind == "cursor" }.map(\.value)
        let positions = cursors.compactMap(LivePosition.init)
        #expect(zip(positions, positions.dropFirst()).allSatisfy { $0 <= $1 }, "cursors written: \(cursors)")
        let titles = log.filter { $0.kind == "title" }.map(\.value)
        #expect(titles == ["v1", "v2"], "titles written: \(titles)")
        #expect(applied == 0 && skipped == 1, "applied \(applied), already applied \(skipped)")
        #expect(try await store.artifacts.find("a0")?.title == "v2")
        #expect(try await PullState.cursor(store, table: "artifact") == change.token)
    }
}
