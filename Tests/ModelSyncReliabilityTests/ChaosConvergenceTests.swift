import ChatModels
import Foundation
import GRDB
@_spi(OutboxInternals) import ModelSync
import ModelSyncReferenceServer
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

typealias ChatThread = ChatModels.Thread

/// Random creates, updates and deletes across the chat models (client-ID and server-ID), online and
/// offline, against a server that fails 20% of writes before commit, loses 10% of responses after
/// commit and adds latency, with the client restarted (database reopened, engine recreated) at
/// random points. Once the network heals, everything must converge.
///
/// `MODELSYNC_CHAOS_OPERATIONS` sets the number of operations (default 1,000) and
/// `MODELSYNC_CHAOS_SEED` replays a run: the operations and the server's fault rolls follow the
/// seed (the interleaving with network timings does not).
@Suite("Chaos convergence")
struct ChaosConvergenceTests {
    @Test("random operations under failures, lost responses, latency and restarts converge")
    func chaosConvergence() async throws {
        let operations = integer(fromEnvironment: "MODELSYNC_CHAOS_OPERATIONS", default: 1000)
        let seed = seed(fromEnvironment: "MODELSYNC_CHAOS_SEED")
        print("chaos: seed \(seed), \(operations) operations (replay with MODELSYNC_CHAOS_SEED=\(seed))")
        let directory = try makeTemporaryDirectory("chaos")
        defer { try? FileManager.default.removeItem(at: directory) }

        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        let run = ChaosRun(
            seed: seed, databaseURL: directory.appendingPathComponent("chaos.sqlite"), baseURL: baseURL,
            server: server)
        server.setFaults(
            FaultPlan(
                failBeforeCommitRate: 0.2, dropResponseRate: 0.1, latency: 0...15,
                droppedResponseDelay: .milliseconds(Int(chaosTimeout * 1000) + 100), seed: seed))
        let clock = ContinuousClock()
        let started = clock.now
        try await run.perform(operations)
        let chaosTime = clock.now - started

        server.setFaults(.none)
        try await run.settle()
        print("chaos: \(run.statistics.summary), chaos phase \(chaosTime), total \(clock.now - started)")
        try await run.checkConvergence()
    }
}

/// Counts reported at the end of a run.
struct ChaosStatistics {
    var byKind: [String: Int] = [:]
    var restarts = 0
    var crashesWithRequestsInFlight = 0
    var interruptedPushes = 0
    var restrictedDeletes = 0
    var pushRetries = 0

    var summary: String {
        let kinds = byKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return
            "\(kinds); restarts \(restarts) (\(crashesWithRequestsInFlight) with requests in flight), "
            + "interrupted pushes \(interruptedPushes), restricted deletes \(restrictedDeletes), "
            + "retried sends \(pushRetries)"
    }
}

/// One chaos run: a client (store + engine, recreated on restart), an oracle of the last value
/// written to each record, and the idChanged events of every store instance.
final class ChaosRun {
    private var random: SplitMix64
    private let databaseURL: URL
    private let baseURL: URL
    let server: ReferenceServer
    private var store: SyncStore
    private var engine: SyncEngine
    private var online = true
    /// The last text written to each record, by its token (the text before `#`).
    private var oracle: [String: String] = [:]
    private var nextToken = 0
    private var idChangeRecorders: [EventRecorder<(table: String, old: String, new: String)>] = []
    var statistics = ChaosStatistics()
    /// `MODELSYNC_CHAOS_TRACE=1` prints every operation as it starts.
    private let trace = ProcessInfo.processInfo.environment["MODELSYNC_CHAOS_TRACE"] != nil

    init(seed: UInt64, databaseURL: URL, baseURL: URL, server: ReferenceServer) {
        random = SplitMix64(seed: seed)
        self.databaseURL = databaseURL
        self.baseURL = baseURL
        self.server = server
        store = try! SyncStore(.file(databaseURL), models: GeneratedModels.all)
        engine = Self.makeEngine(store: store, baseURL: baseURL)
        recordIDChanges()
    }

    /// One URLSession for the whole run, as an app process has: restarts recreate the store and the
    /// engine, not FoundationNetworking.
    static let sharedSession: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = chaosTimeout
        configuration.httpMaximumConnectionsPerHost = 16
        configuration.urlCache = nil
        return URLSession(configuration: configuration)
    }()

    static func makeEngine(
        store: SyncStore, baseURL: URL, timeout: TimeInterval = chaosTimeout, maximumRetryWait: TimeInterval = 0.3
    ) -> SyncEngine {
        let remote = RESTRemote(
            configuration: .init(baseURL: baseURL, timeout: timeout), models: GeneratedModels.all,
            session: timeout == chaosTimeout ? Self.sharedSession : nil)
        return SyncEngine(
            store: store, remote: remote,
            configuration: .init(
                maximumConcurrentRequests: 4, retry: RetryPolicy(initialDelay: 0.01, maximumDelay: 0.1, jitter: 0.5),
                maximumRetryWait: maximumRetryWait))
    }

    private func recordIDChanges() {
        func recorder<Model: SyncModel>(_: Model.Type) -> EventRecorder<(table: String, old: String, new: String)> {
            EventRecorder(
                store.repository(for: Model.self).changes().compactMap { change in
                    if case .idChanged(let old, let new) = change {
                        return (Model.schema.tableName, old.rawValue, new.rawValue)
                    }
                    return nil
                })
        }
        idChangeRecorders += [recorder(ChatThread.self), recorder(Message.self)]
    }

    // MARK: Operations

    func perform(_ operations: Int) async throws {
        for operation in 0..<operations {
            if operation.isMultiple(of: 100) { progress("chaos: operation \(operation)") }
            let roll = Int.random(in: 0..<100, using: &random)
            if trace { progress("chaos: operation \(operation), roll \(roll)") }
            switch roll {
            case 0..<8: try await createUser()
            case 8..<15: try await createArtifact()
            case 15..<27: try await createThread()
            case 27..<45: try await createMessage()
            case 45..<52: try await createLink()
            case 52..<59: try await saveDraft()
            case 59..<75: try await updateRandomRecord()
            case 75..<83: try await deleteRandomRecord()
            case 83..<86:
                online.toggle()
                count("toggle network")
            case 86..<94: try await pushNow()
            case 94..<96: try await syncNow()
            case 96..<98: try await interruptPush()
            default: try await restart(withRequestsInFlight: random.chance(0.5))
            }
        }
    }

    private func count(_ kind: String) {
        statistics.byKind[kind, default: 0] += 1
    }

    private func token() -> String {
        nextToken += 1
        return "t\(nextToken)"
    }

    /// A new text for the record `token`, remembered as its latest value.
    private func text(for token: String) -> String {
        let value = "\(token)#v\(Int.random(in: 0..<1_000_000, using: &random))"
        oracle[token] = value
        return value
    }

    private func ids(_ table: String, where condition: String = "1", _ arguments: StatementArguments = []) async throws
        -> [String]
    {
        try await store.read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM \(table.quotedDatabaseIdentifier) WHERE \(condition) ORDER BY rowid",
                arguments: arguments)
        }
    }

    private func pick(_ ids: [String]) -> String? {
        ids.isEmpty ? nil : ids[Int.random(in: 0..<ids.count, using: &random)]
    }

    private func createUser() async throws {
        let token = token()
        try await store.users.save(User(name: text(for: token), email: "\(token)@example.com"))
        count("create User")
    }

    private func createArtifact() async throws {
        let token = token()
        try await store.artifacts.save(Artifact(title: text(for: token), kind: random.chance(0.5) ? "doc" : "image"))
        count("create Artifact")
    }

    private func createThread() async throws {
        guard let owner = pick(try await ids("user")) else { return try await createUser() }
        let token = token()
        try await store.threads.save(
            ChatThread(
                title: text(for: token), createdAt: Date(timeIntervalSinceReferenceDate: Double(nextToken)),
                tags: random.chance(0.5) ? ["a", token] : [], ownerId: User.ID(owner)))
        count("create Thread")
    }

    private func createMessage() async throws {
        guard let thread = pick(try await ids("thread")) else { return try await createThread() }
        let replyTo = random.chance(0.4) ? pick(try await ids("message", where: "threadId = ?", [thread])) : nil
        let token = token()
        try await store.messages.save(
            Message(
                role: random.chance(0.5) ? .user : .assistant, body: text(for: token), threadId: ChatThread.ID(thread),
                replyToId: replyTo.map { Message.ID($0) }))
        count("create Message")
    }

    private func createLink() async throws {
        guard let thread = pick(try await ids("thread")), let artifact = pick(try await ids("artifact")) else {
            return try await createArtifact()
        }
        try await store.threadArtifacts.save(
            ThreadArtifact(
                relation: random.chance(0.5) ? .created : .referenced, threadId: ChatThread.ID(thread),
                artifactId: Artifact.ID(artifact)))
        count("create ThreadArtifact")
    }

    private func saveDraft() async throws {
        guard let thread = pick(try await ids("thread")) else { return try await createThread() }
        if let existing = try await store.drafts.query(Draft.filter(Draft.Columns.threadId == thread)).first {
            var draft = existing
            draft.body = text(for: String(draft.body.prefix { $0 != "#" }))
            draft.updatedAt = Date(timeIntervalSinceReferenceDate: Double(nextToken))
            try await store.drafts.save(draft)
            count("update Draft")
        } else {
            let token = token()
            try await store.drafts.save(Draft(body: text(for: token), threadId: ChatThread.ID(thread)))
            count("create Draft")
        }
    }

    private static func token(of text: String) -> String { String(text.prefix { $0 != "#" }) }

    private func updateRandomRecord() async throws {
        switch Int.random(in: 0..<5, using: &random) {
        case 0:
            guard let id = pick(try await ids("user")), var user = try await store.users.find(User.ID(id)) else {
                return
            }
            user.name = text(for: Self.token(of: user.name))
            user.bio = random.chance(0.5) ? "bio \(nextToken)" : nil
            try await store.users.save(user)
            count("update User")
        case 1:
            guard let id = pick(try await ids("thread")), var thread = try await store.threads.find(ChatThread.ID(id))
            else { return }
            thread.title = text(for: Self.token(of: thread.title))
            try await store.threads.save(thread)
            count("update Thread")
        case 2:
            guard let id = pick(try await ids("message")), var message = try await store.messages.find(Message.ID(id))
            else { return }
            message.body = text(for: Self.token(of: message.body))
            message.role = random.chance(0.5) ? .system : .assistant
            try await store.messages.save(message)
            count("update Message")
        case 3:
            guard let id = pick(try await ids("artifact")),
                var artifact = try await store.artifacts.find(Artifact.ID(id))
            else { return }
            artifact.title = text(for: Self.token(of: artifact.title))
            try await store.artifacts.save(artifact)
            count("update Artifact")
        default:
            guard let id = pick(try await ids("thread_artifact")),
                var link = try await store.threadArtifacts.find(ThreadArtifact.ID(id))
            else { return }
            link.relation = link.relation == .created ? .referenced : .created
            try await store.threadArtifacts.save(link)
            count("update ThreadArtifact")
        }
    }

    private func deleteRandomRecord() async throws {
        let tables = ["user", "thread", "message", "artifact", "thread_artifact", "draft"]
        let table = tables[Int.random(in: 0..<tables.count, using: &random)]
        guard let id = pick(try await ids(table)) else { return }
        do {
            let deleted: Bool
            switch table {
            case "user": deleted = try await store.users.delete(User.ID(id))
            case "thread": deleted = try await store.threads.delete(ChatThread.ID(id))
            case "message": deleted = try await store.messages.delete(Message.ID(id))
            case "artifact": deleted = try await store.artifacts.delete(Artifact.ID(id))
            case "thread_artifact": deleted = try await store.threadArtifacts.delete(ThreadArtifact.ID(id))
            default: deleted = try await store.drafts.delete(Draft.ID(id))
            }
            #expect(deleted)
            count("delete \(table)")
        } catch ModelSyncError.deleteRestricted {
            statistics.restrictedDeletes += 1
        }
    }

    private func pushNow() async throws {
        guard online else { return }
        let report = try await engine.push(waitForRetries: random.chance(0.5))
        statistics.pushRetries += report.retried
        count("push")
    }

    private func syncNow() async throws {
        guard online else { return }
        do {
            let report = try await engine.sync()
            statistics.pushRetries += report.push.retried
            count("sync")
        } catch let error as RemoteError where error.isTransient {
            count("sync stopped by a network error")  // a pull is not retried inside sync(): the app syncs again
        }
    }

    /// Starts a push and cancels it after a few milliseconds.
    private func interruptPush() async throws {
        guard online else { return }
        let engine = self.engine
        let push = Task { try await engine.push() }
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...40, using: &random)))
        push.cancel()
        _ = try? await push.value
        statistics.interruptedPushes += 1
    }

    /// Closes the database and opens it again with a new engine. With `withRequestsInFlight`, the
    /// app "dies" after claiming entries and sending them (the server may commit), before recording
    /// any answer.
    private func restart(withRequestsInFlight: Bool) async throws {
        if withRequestsInFlight && online {
            let claimed = try await store.outbox.claimReadyEntries(limit: Int.random(in: 1...3, using: &random))
            let remote = RESTRemote(
                configuration: .init(baseURL: baseURL, timeout: chaosTimeout), models: GeneratedModels.all,
                session: Self.sharedSession)
            for entry in claimed {
                let schema = try #require(GeneratedModels.all.first { $0.schema.tableName == entry.tableName }).schema
                let fields = entry.payload.flatMap { try? JSONValue.parse(Data($0.utf8)).objectValue } ?? [:]
                let key = try #require(entry.idempotencyKey, "a claimed entry has its key")
                switch entry.operation {
                case .create: _ = try? await remote.create(fields, of: schema, idempotencyKey: key)
                case .update: _ = try? await remote.update(fields, of: schema, idempotencyKey: key)
                case .delete: try? await remote.delete(id: entry.recordID, of: schema)
                }
            }
            statistics.crashesWithRequestsInFlight += 1
        }
        store = try SyncStore(.file(databaseURL), models: GeneratedModels.all)
        engine = Self.makeEngine(store: store, baseURL: baseURL)
        recordIDChanges()
        statistics.restarts += 1
    }

    // MARK: Settling and checking

    /// With the network healed: restarts once more, then pushes until the outbox is empty.
    func settle() async throws {
        progress("chaos: settling")
        try await restart(withRequestsInFlight: false)
        engine = Self.makeEngine(store: store, baseURL: baseURL, timeout: 5, maximumRetryWait: 10)
        for _ in 0..<10 {
            try await engine.push()
            if try await store.outbox.entries().isEmpty { break }
        }
    }

    func checkConvergence() async throws {
        progress("chaos: checking")
        // Nothing left to send, nothing refused.
        let leftovers = try await store.outbox.entries()
        #expect(
            leftovers.isEmpty,
            "outbox not empty: \(leftovers.map { "\($0.operation) \($0.tableName) \($0.recordID) \($0.state) \($0.lastError ?? "")" })"
        )

        // Local and server hold the same records (no duplicate on the server, nothing missing).
        let serverRecords = await server.records()
        for model in GeneratedModels.all {
            let table = model.schema.tableName
            let localIDs = try await ids(table)
            let serverIDs = (serverRecords[table] ?? []).compactMap { $0["id"]?.idString }
            #expect(Set(serverIDs).count == serverIDs.count, "\(table): duplicate IDs on the server")
            #expect(Set(localIDs) == Set(serverIDs), "\(table): local and server IDs differ")
            #expect(localIDs.allSatisfy { !TemporaryID.isTemporary($0) }, "\(table): a temporary ID remains")
            // One server copy per created record: each record's token appears once.
            let textKey = ["user": "name", "thread": "title", "message": "body", "artifact": "title", "draft": "body"]
            if let key = textKey[table] {
                let tokens = (serverRecords[table] ?? []).compactMap { $0[key]?.stringValue.map(Self.token(of:)) }
                #expect(Set(tokens).count == tokens.count, "\(table): a record was created twice on the server")
            }
            // No dangling foreign key on the server.
            for foreignKey in model.schema.foreignKeys {
                let parents = Set((serverRecords[foreignKey.table] ?? []).compactMap { $0["id"]?.idString })
                for record in serverRecords[table] ?? [] {
                    guard let parent = record[FieldNaming.snakeCase.wireKey(for: foreignKey.column)], !parent.isNull
                    else { continue }
                    #expect(
                        parents.contains(parent.idString ?? "?"), "\(table).\(foreignKey.column) dangles on the server")
                }
            }
        }
        let serialized = String(
            decoding: try JSONValue.object(serverRecords.mapValues { .array($0.map(JSONValue.object)) }).serialized(),
            as: UTF8.self)
        #expect(!serialized.contains(TemporaryID.prefix), "a temporary ID reached the server")

        // No dangling foreign key locally, and the database is sound.
        let (violations, integrity) = try await store.read { db in
            (
                try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count,
                try String.fetchOne(db, sql: "PRAGMA integrity_check")
            )
        }
        #expect(violations == 0)
        #expect(integrity == "ok")

        // No lost write: every local record holds the last value written to it...
        var checked = 0
        for user in try await store.users.all() { checked += expectLatest(user.name) }
        for thread in try await store.threads.all() { checked += expectLatest(thread.title) }
        for message in try await store.messages.all() { checked += expectLatest(message.body) }
        for artifact in try await store.artifacts.all() { checked += expectLatest(artifact.title) }
        for draft in try await store.drafts.all() { checked += expectLatest(draft.body) }
        // ...and the server's copy of every record equals the local one: a fresh client that pulls
        // everything from the server ends up with exactly the same records.
        let mirror = try SyncStore(.inMemory, models: GeneratedModels.all)
        try await Self.makeEngine(store: mirror, baseURL: baseURL, timeout: 5).sync()
        try await expectSameRecords(User.self, mirror)
        try await expectSameRecords(ChatThread.self, mirror)
        try await expectSameRecords(Message.self, mirror)
        try await expectSameRecords(Artifact.self, mirror)
        try await expectSameRecords(ThreadArtifact.self, mirror)
        try await expectSameRecords(Draft.self, mirror)
        // A pull by the client itself finds nothing it did not already have.
        let pull = try await engine.sync().pull
        #expect(pull.inserted == 0 && pull.deleted == 0 && pull.updated == 0, "\(pull)")

        // One idChanged per replaced temporary ID, each ID replaced once.
        let replacements = try await store.read { db in
            try Row.fetchAll(db, sql: "SELECT tableName, oldID, newID FROM modelsync_id_map").map {
                "\($0["tableName"] as String) \($0["oldID"] as String) \($0["newID"] as String)"
            }
        }
        let converged = try await eventually {
            idChangeRecorders.reduce(0) { $0 + $1.elements.count } >= replacements.count
        }
        #expect(converged)
        let events = idChangeRecorders.flatMap(\.elements).map { "\($0.table) \($0.old) \($0.new)" }
        #expect(events.count == replacements.count)
        #expect(Set(events) == Set(replacements))
        #expect(Set(events).count == events.count, "an idChanged was delivered twice")
        #expect(replacements.count > 0)
        print(
            "chaos: converged with \(checked) records checked against the oracle, \(replacements.count) temporary IDs "
                + "replaced, \(await server.replayedCreates) creates replayed by idempotency key, requests "
                + "\(server.requestCounts.sorted { $0.key < $1.key })")
        for recorder in idChangeRecorders { recorder.stop() }
    }

    private func expectLatest(_ text: String) -> Int {
        let token = Self.token(of: text)
        #expect(
            oracle[token] == text, "lost write: record \(token) holds '\(text)', last written '\(oracle[token] ?? "-")'"
        )
        return 1
    }

    private func expectSameRecords<Model: SyncModel>(_: Model.Type, _ mirror: SyncStore) async throws {
        let local = try await store.repository(for: Model.self).all().sorted { $0.id.rawValue < $1.id.rawValue }
        let remote = try await mirror.repository(for: Model.self).all().sorted { $0.id.rawValue < $1.id.rawValue }
        #expect(
            local.count == remote.count, "\(Model.schema.name): \(local.count) local, \(remote.count) on the server")
        let remoteByID = Dictionary(uniqueKeysWithValues: remote.map { ($0.id.rawValue, $0) })
        for record in local where remoteByID[record.id.rawValue] != record {
            Issue.record(
                "\(Model.schema.name) \(record.id.rawValue): local \(record), server \(String(describing: remoteByID[record.id.rawValue]))"
            )
        }
    }
}

/// The client's request timeout during the chaos phase (`MODELSYNC_CHAOS_TIMEOUT`, seconds); lost
/// responses are held 0.1 s longer than this.
let chaosTimeout = ProcessInfo.processInfo.environment["MODELSYNC_CHAOS_TIMEOUT"].flatMap(Double.init) ?? 1
