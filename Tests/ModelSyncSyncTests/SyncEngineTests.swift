import ChatModels
import Foundation
import GRDB
@_spi(OutboxInternals) import ModelSync
import ModelSyncReferenceServer
import ModelSyncTestSupport
import Testing

@Suite("Sync over real HTTP against the reference server")
struct SyncEngineTests {
    @Test("the chat created offline syncs: one server copy each, local IDs equal server IDs, one idChanged per record")
    func chatScenario() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 3)
        let threadChanges = EventRecorder(harness.store.threads.changes())
        let messageChanges = EventRecorder(harness.store.messages.changes())

        let report = try await harness.engine.push()
        #expect(report.sent == 9)  // user, thread, 3 messages, 2 artifacts, 2 links
        #expect(report.failed == 0)
        #expect(try await harness.store.outbox.entries().isEmpty)

        // Exactly one server copy of each record.
        let serverThreads = await harness.serverRecords(ChatThread.self)
        let serverMessages = await harness.serverRecords(Message.self)
        #expect(serverThreads.count == 1)
        #expect(serverMessages.count == 3)
        #expect(await harness.server.records(of: ThreadArtifact.self).count == 2)
        #expect(await harness.server.records(of: Artifact.self).count == 2)
        #expect(await harness.server.records(of: User.self).count == 1)

        // Every local ID equals the server's, and references agree on both sides.
        let localThread = try #require(try await harness.store.threads.all().first)
        #expect(!localThread.id.isTemporary)
        #expect(serverThreads[localThread.id.rawValue] != nil)
        #expect(serverThreads[localThread.id.rawValue]?["id"] == .integer(Int64(localThread.id.rawValue)!))
        for message in try await harness.store.messages.all() {
            #expect(!message.id.isTemporary)
            let serverMessage = try #require(serverMessages[message.id.rawValue])
            #expect(serverMessage["thread_id"] == .integer(Int64(localThread.id.rawValue)!))
            #expect(serverMessage["reply_to_id"]?.idString == message.replyToId?.rawValue)
        }
        for link in try await harness.store.threadArtifacts.all() {
            #expect(link.threadId == localThread.id)
        }
        // The old temporary IDs still find the records.
        #expect(try await harness.store.threads.find(chat.thread.id)?.id == localThread.id)
        #expect(try await chat.messages[2].replyTo(in: harness.store)?.id.isTemporary == false)

        // One idChanged per replaced record, and nothing else for the thread.
        #expect(try await eventually { messageChanges.elements.count >= 3 && threadChanges.elements.count >= 1 })
        let threadReplacements = threadChanges.elements.filter {
            if case .idChanged = $0 { return true } else { return false }
        }
        let messageReplacements = messageChanges.elements.filter {
            if case .idChanged = $0 { return true } else { return false }
        }
        #expect(threadReplacements.count == 1)
        #expect(messageReplacements.count == 3)
        for status in [
            try await harness.store.threads.syncStatus(of: localThread.id),
            try await harness.store.users.syncStatus(of: chat.user.id),
        ] {
            #expect(status == .synced)
        }
        threadChanges.stop()
        messageChanges.stop()
    }

    @Test("three threads created rapidly get three distinct server IDs and no duplicates")
    func rapidCreates() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<3 {
                group.addTask {
                    try await harness.store.threads.save(
                        ChatThread(title: "t\(index)", createdAt: Date(), tags: [], ownerId: user.id))
                }
            }
            try await group.waitForAll()
        }
        try await harness.engine.push()
        let ids = try await harness.store.threads.all().map(\.id.rawValue)
        #expect(Set(ids).count == 3)
        #expect(ids.allSatisfy { Int($0) != nil })
        #expect(Set(await harness.serverRecords(ChatThread.self).keys) == Set(ids))
    }

    @Test("a response lost after the server committed is retried with the same key and creates no duplicate")
    func lostResponse() async throws {
        let harness = try await SyncHarness.start(timeout: 1.5)
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 1)
        // The user goes first (client ID); the thread's create commits but its answer is lost.
        harness.server.setFaults(
            FaultPlan(script: [.delay(milliseconds: 0), .dropResponseAfterCommit], droppedResponseDelay: .seconds(4)))
        let report = try await harness.engine.push()
        #expect(report.failed == 0)
        #expect(report.retried >= 1)
        #expect(await harness.server.records(of: ChatThread.self).count == 1)
        #expect(await harness.server.replayedCreates >= 1)
        let thread = try #require(try await harness.store.threads.find(chat.thread.id))
        #expect(await harness.serverRecords(ChatThread.self)[thread.id.rawValue] != nil)
        #expect(await harness.server.records(of: Message.self).count == 1)
    }

    @Test("an app restart between create and sync still converges (database reopened, new engine)")
    func restartBeforeSync() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }

        let chat: (user: User, thread: ChatThread, messages: [Message], artifacts: [Artifact])
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            chat = try await makeChat(in: store, messageCount: 2)
            // The first push dies mid-way: two entries are in flight when the app stops.
            let claimed = try await store.outbox.claimReadyEntries(limit: 2)
            #expect(claimed.contains { $0.tableName == "user" })
        }
        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        let engine = SyncHarness.makeEngine(store: reopened, baseURL: baseURL)
        let report = try await engine.push()
        #expect(report.failed == 0)
        #expect(try await reopened.outbox.entries().isEmpty)
        #expect(await server.records(of: ChatThread.self).count == 1)
        #expect(await server.records(of: Message.self).count == 2)
        #expect(try await reopened.threads.find(chat.thread.id)?.id.isTemporary == false)
        let integrity = try await reopened.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
    }

    @Test("a create the server stored before the app died is not duplicated after restart")
    func restartAfterServerCommit() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        // The app that dies: its store is released with the thread's entry still claimed.
        let chat = try await Self.sendAndDieBeforeRecordingThread(url: url, baseURL: harness.baseURL)

        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        let engine = SyncHarness.makeEngine(store: reopened, baseURL: harness.baseURL)
        try await engine.push()
        #expect(await harness.server.records(of: ChatThread.self).count == 1)
        #expect(await harness.server.replayedCreates == 1)
        let thread = try #require(try await reopened.threads.find(chat.thread.id))
        #expect(await harness.serverRecords(ChatThread.self)[thread.id.rawValue] != nil)
    }

    /// Creates a chat in the store at `url`, sends the user and the thread by hand, as an engine
    /// would, records the user's answer and "dies" (releases the store) before recording the thread's.
    private static func sendAndDieBeforeRecordingThread(url: URL, baseURL: URL) async throws
        -> (user: User, thread: ChatThread, messages: [Message], artifacts: [Artifact])
    {
        let store = try SyncStore(.file(url), models: GeneratedModels.all)
        let chat = try await makeChat(in: store, messageCount: 0)
        let remote = RESTRemote(configuration: .init(baseURL: baseURL), models: GeneratedModels.all)
        let claimed = try await store.outbox.claimReadyEntries(limit: 10)
        let userEntry = try #require(claimed.first { $0.tableName == "user" })
        _ = try await remote.create(
            try JSONValue.parse(Data(userEntry.payload!.utf8)).objectValue!, of: User.schema,
            idempotencyKey: try #require(userEntry.idempotencyKey))
        try await store.outbox.markSucceeded(userEntry)
        let threadEntry = try #require(
            try await store.outbox.claimReadyEntries(limit: 10).first { $0.tableName == "thread" })
        _ = try await remote.create(
            try JSONValue.parse(Data(threadEntry.payload!.utf8)).objectValue!, of: ChatThread.schema,
            idempotencyKey: try #require(threadEntry.idempotencyKey))
        return chat
    }

    @Test("a 4xx leaves that record failed with the server's message and the rest synced")
    func permanentFailure() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        try await harness.server.insert(
            ["id": .string("usr_other"), "name": .string("Other"), "email": .string("taken@example.com")],
            into: User.self)
        let rejected = try await harness.store.users.save(User(name: "Eve", email: "taken@example.com"))
        let chat = try await makeChat(in: harness.store, messageCount: 1, email: "ada@example.com")
        let report = try await harness.engine.push()
        let errors = try await harness.store.outbox.entries().compactMap(\.lastError)
        #expect(report.failed == 1, "\(errors)")
        let status = try await harness.store.users.syncStatus(of: rejected.id)
        guard case .failed(let reason) = status else {
            Issue.record("expected failed, got \(status)")
            return
        }
        #expect(reason.contains("422"))
        #expect(reason.contains("email"))
        #expect(try await harness.store.users.syncStatus(of: chat.user.id) == .synced)
        #expect(await harness.server.records(of: Message.self).count == 1)
        #expect(try await harness.engine.currentProgress().failed == 1)
    }

    @Test("429 with Retry-After is honoured, and a 500 is retried until it succeeds")
    func transientFailures() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        harness.server.setFaults(FaultPlan(script: [.rateLimit(retryAfter: 1), .status(500), .status(503)]))
        let clock = ContinuousClock()
        let started = clock.now
        let report = try await harness.engine.push()
        let elapsed = clock.now - started
        #expect(report.sent == 1)
        #expect(report.retried == 3)
        #expect(elapsed >= .seconds(1))
        #expect(await harness.server.records(of: User.self).count == 1)
        #expect(harness.server.requestCounts["POST"] == 4)
    }

    @Test("pull merges remote changes, applies remote deletes, and keeps pending local edits")
    func pullMerges() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 2)
        try await harness.engine.push()
        let thread = try #require(try await harness.store.threads.all().first)
        let messages = try await harness.store.messages.all()

        // Another client: renames the thread, edits message 0, deletes message 1, adds a message.
        var serverThread = try #require(await harness.serverRecords(ChatThread.self)[thread.id.rawValue])
        serverThread["title"] = .string("Renamed on the server")
        try await harness.server.update(serverThread, in: ChatThread.self, id: thread.id.rawValue)
        var serverMessage = try #require(await harness.serverRecords(Message.self)[messages[0].id.rawValue])
        serverMessage["body"] = .string("edited on the server")
        try await harness.server.update(serverMessage, in: Message.self, id: messages[0].id.rawValue)
        try await harness.server.delete(in: Message.self, id: messages[1].id.rawValue)
        let added = try await harness.server.insert(
            [
                "role": .string("assistant"), "body": .string("from elsewhere"),
                "thread_id": .integer(Int64(thread.id.rawValue)!),
            ],
            into: Message.self)

        // Meanwhile, locally: the thread is renamed too (pending), message 0 untouched.
        var local = thread
        local.title = "Renamed locally"
        try await harness.store.threads.save(local)

        let threadReport = try await harness.engine.pull(ChatThread.self)
        let messageReport = try await harness.engine.pull(Message.self)
        #expect(threadReport.keptLocal == 1)
        #expect(try await harness.store.threads.find(thread.id)?.title == "Renamed locally")
        #expect(messageReport.updated == 1)
        #expect(messageReport.deleted == 1)
        #expect(messageReport.inserted == 1)
        #expect(try await harness.store.messages.find(messages[0].id)?.body == "edited on the server")
        #expect(try await harness.store.messages.find(messages[1].id) == nil)
        #expect(try await harness.store.messages.find(Message.ID(added["id"]!.idString!))?.body == "from elsewhere")
        // Pulled records are not echoed back to the server; the local rename is still queued.
        #expect(try await harness.store.outbox.entries().map(\.tableName) == ["thread"])
        // A second pull is incremental: nothing new.
        #expect(try await harness.engine.pull(Message.self) == PullReport())
        // The local rename reaches the server.
        try await harness.engine.push()
        #expect(
            await harness.serverRecords(ChatThread.self)[thread.id.rawValue]?["title"] == .string("Renamed locally"))
        _ = chat
    }

    @Test("a pull stores records that reference others listed on a later page (one transaction)")
    func pullAcrossPages() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let (_, thread) = try await harness.seedServerThread()
        var messages: [[String: JSONValue]] = []
        for index in 0..<150 {  // the server lists 100 per page, oldest change first
            var fields: [String: JSONValue] = [
                "role": .string("user"), "body": .string("m\(index)"), "thread_id": thread["id"]!,
            ]
            if index == 5 { fields["reply_to_id"] = messages[4]["id"]! }
            messages.append(try await harness.server.insert(fields, into: Message.self))
        }
        // Editing message 4 moves it to the end of the listing (page 2); message 5, on page 1,
        // still replies to it.
        var edited = messages[4]
        edited["body"] = .string("edited")
        try await harness.server.update(edited, in: Message.self, id: edited["id"]!.idString!)

        let report = try await harness.engine.sync().pull
        #expect(report.inserted == 152)
        #expect(try await harness.store.messages.count() == 150)
        let replying = try await harness.store.messages.query(Message.filter(Message.Columns.replyToId != nil))
        #expect(replying.map(\.replyToId?.rawValue) == [messages[4]["id"]!.idString])
    }

    @Test("a custom conflict hook can merge the server's and the local record")
    func customConflictResolution() async throws {
        let harness = try await SyncHarness.start(
            conflictPolicy: .custom { conflict in
                var merged = conflict.local
                let local = conflict.local["title"]?.stringValue ?? ""
                let remote = conflict.remote["title"]?.stringValue ?? ""
                merged["title"] = .string("\(remote) + \(local)")
                return .merged(merged)
            })
        defer { Task { await harness.server.stop() } }
        _ = try await makeChat(in: harness.store, messageCount: 0)
        try await harness.engine.push()
        var thread = try #require(try await harness.store.threads.all().first)
        var serverThread = try #require(await harness.serverRecords(ChatThread.self)[thread.id.rawValue])
        serverThread["title"] = .string("server")
        try await harness.server.update(serverThread, in: ChatThread.self, id: thread.id.rawValue)
        thread.title = "local"
        try await harness.store.threads.save(thread)
        try await harness.engine.pull(ChatThread.self)
        #expect(try await harness.store.threads.find(thread.id)?.title == "server + local")
        try await harness.engine.push()
        #expect(await harness.serverRecords(ChatThread.self)[thread.id.rawValue]?["title"] == .string("server + local"))
    }

    @Test("a server that was never told about a record receives its children only with real IDs")
    func noTemporaryIDReachesTheServer() async throws {
        let harness = try await SyncHarness.start(concurrency: 8)
        defer { Task { await harness.server.stop() } }
        for index in 0..<5 {
            _ = try await makeChat(in: harness.store, messageCount: 4, email: "user\(index)@example.com")
        }
        let report = try await harness.engine.push()
        #expect(report.failed == 0)  // the server answers 422 to any temporary ID
        let all = await harness.server.records()
        let serialized = String(
            decoding: try JSONValue.object(all.mapValues { .array($0.map(JSONValue.object)) }).serialized(),
            as: UTF8.self)
        #expect(!serialized.contains(TemporaryID.prefix))
        #expect(all["message"]?.count == 20)
    }

    @Test("remote-first save stores the server's permanent ID; offline it falls back to local-first")
    func remoteFirst() async throws {
        let harness = try await SyncHarness.start()
        let user = try await harness.engine.save(
            User(name: "Ada", email: "a@example.com"), policy: .remoteFirst(fallBackToLocal: true))
        #expect(try await harness.store.outbox.entries().isEmpty)
        let thread = try await harness.engine.save(
            ChatThread(createdAt: Date(), tags: [], ownerId: user.id), policy: .remoteFirst(fallBackToLocal: true))
        #expect(!thread.id.isTemporary)
        #expect(try await harness.store.threads.find(thread.id) != nil)
        #expect(try await harness.store.outbox.entries().isEmpty)

        await harness.server.stop()
        // Offline: an address that refuses for as long as the test holds it (a stopped server's port
        // could be taken by another process meanwhile).
        let unreachable = try RefusingLoopbackAddress()
        defer { unreachable.close() }
        let offlineEngine = SyncHarness.makeEngine(store: harness.store, baseURL: unreachable.baseURL)
        let offline = try await offlineEngine.save(
            ChatThread(createdAt: Date(), tags: [], ownerId: user.id), policy: .remoteFirst(fallBackToLocal: true))
        #expect(offline.id.isTemporary)
        #expect(try await harness.store.outbox.entries().map(\.operation) == [.create])
        await #expect(throws: RemoteError.self) {
            try await offlineEngine.save(
                ChatThread(createdAt: Date(), tags: [], ownerId: user.id), policy: .remoteFirst(fallBackToLocal: false))
        }
    }

    @Test("a remote-first create whose answer is lost is queued with the same idempotency key: no duplicate")
    func remoteFirstLostResponse() async throws {
        let harness = try await SyncHarness.start(timeout: 1.5)
        defer { Task { await harness.server.stop() } }
        // The owner goes through the outbox, which retries until it is on the server.
        let user = try await harness.store.users.save(User(name: "Ada", email: "a@example.com"))
        #expect(try await harness.engine.push().failed == 0)
        // The server stores the thread, but its answer comes after the client gave up.
        harness.server.setFaults(FaultPlan(script: [.dropResponseAfterCommit], droppedResponseDelay: .seconds(4)))
        let thread = try await harness.engine.save(
            ChatThread(title: "sent once", createdAt: Date(), tags: [], ownerId: user.id),
            policy: .remoteFirst(fallBackToLocal: true))
        #expect(thread.id.isTemporary)
        #expect(await harness.server.records(of: ChatThread.self).count == 1)
        let queued = try await harness.store.outbox.entries()
        #expect(queued.map(\.operation) == [.create])

        let report = try await harness.engine.push()
        #expect(report.failed == 0)
        #expect(await harness.server.replayedCreates >= 1)  // more when a retry also timed out
        let serverThreads = await harness.serverRecords(ChatThread.self)
        #expect(serverThreads.count == 1)
        let stored = try #require(try await harness.store.threads.find(thread.id))
        #expect(!stored.id.isTemporary)
        #expect(serverThreads[stored.id.rawValue]?["title"] == .string("sent once"))
        #expect(try await harness.store.outbox.entries().isEmpty)
    }

    @Test("a remote-first create whose answer is lost, edited before the push: one record on the server, with the edit")
    func remoteFirstLostResponseThenEdited() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let user = try await harness.store.users.save(User(name: "Ada", email: "a@example.com"))
        #expect(try await harness.engine.push().failed == 0)
        // The server stores the thread, then answers 503: the client cannot know it was stored.
        harness.server.setFaults(FaultPlan(script: [.failAfterCommit(status: 503)]))
        let thread = try await harness.engine.save(
            ChatThread(title: "sent once", createdAt: Date(), tags: [], ownerId: user.id),
            policy: .remoteFirst(fallBackToLocal: true))
        #expect(thread.id.isTemporary)
        var edited = thread
        edited.title = "edited offline"
        try await harness.store.threads.save(edited)

        let report = try await harness.engine.push()
        #expect(report.failed == 0)
        let serverThreads = await harness.serverRecords(ChatThread.self)
        #expect(serverThreads.count == 1)
        #expect(serverThreads.values.first?["title"] == .string("edited offline"))
        let stored = try #require(try await harness.store.threads.find(thread.id))
        #expect(!stored.id.isTemporary)
        #expect(stored.title == "edited offline")
        #expect(try await harness.store.outbox.entries().isEmpty)
    }

    @Test("cancelling a push puts in-flight entries back in the queue, and a later push finishes")
    func cancellation() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        _ = try await makeChat(in: harness.store, messageCount: 2)
        harness.server.setFaults(FaultPlan(latency: 300...300))
        let engine = harness.engine
        let push = Task { try await engine.push() }
        try await Task.sleep(for: .milliseconds(100))
        push.cancel()
        _ = try? await push.value
        let states = Set(try await harness.store.outbox.entries().map(\.state))
        #expect(!states.contains(.inFlight))
        harness.server.setFaults(.none)
        let report = try await harness.engine.push()
        #expect(report.failed == 0)
        #expect(try await harness.store.outbox.entries().isEmpty)
        #expect(await harness.server.records(of: User.self).count == 1)
    }

    @Test("the progress stream reports queued, sent and failed counts")
    func progress() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        _ = try await makeChat(in: harness.store, messageCount: 1)
        let recorder = EventRecorder(harness.engine.progress())
        try await harness.engine.push()
        #expect(try await eventually { recorder.elements.last?.sent == 7 })
        let values = recorder.elements
        #expect(values.contains { $0.queued > 0 || $0.inFlight > 0 })
        #expect(values.last == SyncProgress(queued: 0, inFlight: 0, sent: 7, failed: 0))
        recorder.stop()
    }
}
