import ChatModels
import Foundation
import ModelSync
import ModelSyncReferenceServer
import Testing

/// Batched push and units (issue 14): many changes in one request to a server that takes batches,
/// units applied all together or not at all.
@Suite("Changes go in batches to a server that takes them; a unit is applied whole or not at all")
struct BatchPushTests {
    private static func batchHarness() async throws -> SyncHarness {
        let harness = try await SyncHarness.start()
        harness.server.setAcceptingBatches(true)
        return harness
    }

    /// Pushes the chat of `makeChat`, with request logging on; the push must send all 9 changes.
    private static func pushChat(batches: Bool) async throws -> (SyncHarness, ChatThread) {
        let harness = try await SyncHarness.start()
        harness.server.setAcceptingBatches(batches)
        harness.server.setRequestLogging(true)
        let chat = try await makeChat(in: harness.store)
        let report = try await harness.engine.push()
        #expect(report.sent == 9)
        #expect(report.failed == 0)
        return (harness, chat.thread)
    }

    @Test("a server without batches gets every change in a request of its own")
    func serverWithoutBatches() async throws {
        let (harness, thread) = try await Self.pushChat(batches: false)
        defer { Task { await harness.server.stop() } }
        #expect(await harness.server.batchCounts.batches == 0)
        let posts = harness.server.loggedRequests.filter { $0.method == "POST" }
        // Nine creates, each in a request of its own (a request that timed out on a loaded machine is
        // sent again with its key: more requests, never more keys).
        #expect(Set(posts.compactMap(\.idempotencyKey)).count == 9)
        #expect(posts.allSatisfy { $0.idempotencyKey != nil })
        #expect(!posts.contains { $0.path.hasPrefix("/_modelsync") })
        #expect(try await harness.store.threads.syncStatus(of: thread.id) == .synced)
    }

    @Test("queued changes go in a few batches, in dependency layers, and all arrive")
    func changesGoInBatches() async throws {
        let (harness, chatThread) = try await Self.pushChat(batches: true)
        defer { Task { await harness.server.stop() } }
        // Layers: user and artifacts; thread; first message and the two links; each reply after the message it replies to.
        let counts = await harness.server.batchCounts
        #expect(counts.operations == 9)
        #expect(counts.batches == 5)
        #expect(!harness.server.loggedRequests.contains { $0.method == "POST" && $0.path != "/_modelsync/batch" })
        let serverThreads = await harness.serverRecords(ChatThread.self)
        #expect(serverThreads.count == 1)
        let thread = try #require(try await harness.store.threads.find(chatThread.id))
        #expect(!thread.id.isTemporary)
        let messages = await harness.serverRecords(Message.self)
        #expect(messages.count == 3)
        #expect(messages.values.allSatisfy { $0["thread_id"]?.idString == thread.id.rawValue })
    }

    @Test("a refused operation fails alone with what depends on it; the rest of its batch is applied")
    func oneFailingOperation() async throws {
        let harness = try await Self.batchHarness()
        defer { Task { await harness.server.stop() } }
        try await harness.server.insert(
            ["id": .string("usr_other"), "name": .string("Other"), "email": .string("taken@example.com")],
            into: User.self)
        // Ada's create is refused (her email is taken): her thread, its messages and links depend on it.
        let chat = try await makeChat(in: harness.store, email: "taken@example.com")
        let grace = try await harness.store.users.save(User(name: "Grace", email: "grace@example.com"))
        let report = try await harness.engine.push()

        #expect(report.failed == 1)
        #expect(report.sent == 3)  // Grace and the two artifacts, in the batch with Ada's create
        let batches = await harness.server.batchCounts
        #expect(batches.batches == 1)
        #expect(batches.operations == 4)
        guard case .failed(let reason) = try await harness.store.users.syncStatus(of: chat.user.id) else {
            Issue.record("Ada's create should have failed")
            return
        }
        #expect(reason.contains("email"))
        guard case .pending(_, let waiting?, _) = try await harness.store.threads.syncStatus(of: chat.thread.id) else {
            Issue.record("the thread should wait for its owner")
            return
        }
        #expect(waiting.contains("refused"))
        #expect(try await harness.store.users.syncStatus(of: grace.id) == .synced)
        #expect(await harness.serverRecords(User.self).keys.sorted() == [grace.id.rawValue, "usr_other"].sorted())
        #expect(await harness.serverRecords(Artifact.self).count == 2)
        #expect(await harness.serverRecords(ChatThread.self).isEmpty)
    }

    @Test("a batch whose answer was lost is sent again and duplicates nothing")
    func lostBatchAnswer() async throws {
        let harness = try await Self.batchHarness()
        defer { Task { await harness.server.stop() } }
        harness.server.setFaults(FaultPlan(script: [.failAfterCommit(status: 503)]))
        let chat = try await makeChat(in: harness.store)
        let report = try await harness.engine.push()

        #expect(report.failed == 0)
        #expect(report.retried == 3)  // the first batch: the user and the two artifacts
        #expect(await harness.serverRecords(User.self).count == 1)
        #expect(await harness.serverRecords(Artifact.self).count == 2)
        #expect(await harness.serverRecords(ChatThread.self).count == 1)
        #expect(await harness.server.replayedCreates == 3)
        #expect(try await harness.store.threads.syncStatus(of: chat.thread.id) == .synced)
    }

    /// A user and an artifact on the server, and, offline, a thread, its first message and the link
    /// to the artifact saved as one unit.
    private static func saveUnit(in harness: SyncHarness, body: String = "Have a look") async throws
        -> (thread: ChatThread, message: Message, link: ThreadArtifact)
    {
        let (user, artifact) = try await harness.store.write { tx in
            (
                try tx.save(User(name: "Ada", email: "ada@example.com")),
                try tx.save(Artifact(title: "Plan", kind: "doc"))
            )
        }
        try await harness.engine.push()
        return try await harness.store.writeAsOneUnit { tx in
            let thread = try tx.save(
                ChatThread(title: "About the plan", createdAt: Date(), tags: [], ownerId: user.id))
            let message = try tx.save(Message(role: .user, body: body, threadId: thread.id))
            let link = try tx.save(ThreadArtifact(relation: .referenced, threadId: thread.id, artifactId: artifact.id))
            return (thread, message, link)
        }
    }

    @Test("a unit goes as one atomic batch; its records reference each other without temporary IDs")
    func unitGoesAsOneBatch() async throws {
        let harness = try await Self.batchHarness()
        defer { Task { await harness.server.stop() } }
        let unit = try await Self.saveUnit(in: harness)
        let entries = try await harness.store.outbox.entries()
        #expect(entries.count == 3)
        #expect(Set(entries.map(\.unitID)).count == 1)
        #expect(entries.first?.unitID != nil)
        let before = await harness.server.batchCounts

        let report = try await harness.engine.push()
        #expect(report.sent == 3)
        let after = await harness.server.batchCounts
        #expect(after.batches - before.batches == 1)
        #expect(after.operations - before.operations == 3)
        let thread = try #require(try await harness.store.threads.find(unit.thread.id))
        #expect(!thread.id.isTemporary)
        let message = try #require(await harness.serverRecords(Message.self).values.first)
        #expect(message["thread_id"]?.idString == thread.id.rawValue)
        let link = try #require(await harness.serverRecords(ThreadArtifact.self)[unit.link.id.rawValue])
        #expect(link["thread_id"]?.idString == thread.id.rawValue)
    }

    @Test("a unit whose answer was lost is sent again and applied once: one thread, not two")
    func lostUnitAnswer() async throws {
        let harness = try await Self.batchHarness()
        defer { Task { await harness.server.stop() } }
        let unit = try await Self.saveUnit(in: harness)
        harness.server.setFaults(FaultPlan(script: [.failAfterCommit(status: 503)]))

        let report = try await harness.engine.push()
        #expect(report.retried == 3)
        #expect(report.sent == 3)
        #expect(report.failed == 0)
        #expect(await harness.serverRecords(ChatThread.self).count == 1)
        #expect(await harness.serverRecords(Message.self).count == 1)
        #expect(await harness.serverRecords(ThreadArtifact.self).count == 1)
        #expect(try await harness.store.threads.syncStatus(of: unit.thread.id) == .synced)
        #expect(try await harness.store.messages.syncStatus(of: unit.message.id) == .synced)
    }

    @Test("a unit one of whose changes the server refuses applies nothing and fails whole")
    func refusedUnit() async throws {
        let server = ReferenceServer(models: GeneratedModels.all) { table, record in
            table == Message.schema.tableName && record["body"] == .string("forbidden") ? "this body is refused" : nil
        }
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        server.setAcceptingBatches(true)
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let harness = SyncHarness(
            server: server, baseURL: baseURL, store: store,
            engine: SyncHarness.makeEngine(store: store, baseURL: baseURL))
        let unit = try await Self.saveUnit(in: harness, body: "forbidden")

        let report = try await harness.engine.push()
        #expect(report.failed == 3)
        #expect(report.sent == 0)
        #expect(await harness.serverRecords(ChatThread.self).isEmpty)
        #expect(await harness.serverRecords(Message.self).isEmpty)
        #expect(await harness.serverRecords(ThreadArtifact.self).isEmpty)
        guard case .failed(let refused) = try await store.messages.syncStatus(of: unit.message.id),
            case .failed(let threadReason) = try await store.threads.syncStatus(of: unit.thread.id),
            case .failed = try await store.threadArtifacts.syncStatus(of: unit.link.id)
        else {
            Issue.record("every change of the unit should have failed")
            return
        }
        #expect(refused.contains("this body is refused"))
        #expect(threadReason.contains("not applied"))

        // Retrying one record of the unit queues the whole unit again.
        #expect(try await store.threads.retry(unit.thread.id) == 3)
    }

    @Test("the changes of a unit stay one unit after the store is closed and opened again")
    func unitSurvivesRestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("store.sqlite")
        var unitID: String?
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            try await store.writeAsOneUnit { tx in
                let user = try tx.save(User(name: "Ada", email: "ada@example.com"))
                try tx.save(ChatThread(title: "t", createdAt: Date(), tags: [], ownerId: user.id))
            }
            unitID = try await store.outbox.entries().first?.unitID
        }
        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        let entries = try await reopened.outbox.entries()
        #expect(entries.count == 2)
        #expect(unitID != nil)
        #expect(entries.allSatisfy { $0.unitID == unitID })
    }

    @Test("a store made before units opens with its queued changes, gains the unit column, and takes units")
    func storeFromBeforeUnitsMigrates() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("store.sqlite")
        do {
            // A store as the version before units left it: no unitID column, no record of its migration.
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            try await store.users.save(User(name: "Ada", email: "ada@example.com"))
            try await store.writeBypassingSync { db in
                try db.execute(
                    sql: """
                        DROP INDEX modelsync_outbox_unit;
                        ALTER TABLE modelsync_outbox DROP COLUMN unitID;
                        DELETE FROM grdb_migrations WHERE identifier = 'modelsync-outbox-units-v1';
                        """)
            }
        }
        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        let before = try await reopened.outbox.entries()
        #expect(before.count == 1)
        #expect(before.first?.unitID == nil)
        let owner = try #require(try await reopened.users.all().first)
        _ = try await reopened.writeAsOneUnit { tx in
            try tx.save(ChatThread(title: "t", createdAt: Date(), tags: [], ownerId: owner.id))
        }
        let after = try await reopened.outbox.entries()
        #expect(after.count == 2)
        #expect(after.last?.unitID != nil)
    }
}
