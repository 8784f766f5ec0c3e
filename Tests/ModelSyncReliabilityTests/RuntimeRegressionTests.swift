import ChatModels
import Foundation
import GRDB
@_spi(OutboxInternals) import ModelSync
import ModelSyncReferenceServer
import Testing

/// The runtime bugs the chaos test found, each pinned by a small deterministic test.
@Suite("Runtime regressions found by the reliability suite")
struct RuntimeRegressionTests {
    @Test("a push returns when a past-due retry waits behind a parent that failed for good")
    func pushDoesNotSpinOnBlockedRetries() async throws {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        let thread = try await store.threads.save(ChatThread(createdAt: Date(), tags: [], ownerId: user.id))
        try await store.messages.save(Message(role: .user, body: "hi", threadId: thread.id))
        // The user is sent; the thread is refused for good; the message had a retry scheduled in
        // the past and now waits for its thread forever.
        let claimed = try await store.outbox.claimReadyEntries(limit: 10)
        for entry in claimed where entry.tableName == "user" { try await store.outbox.markSucceeded(entry) }
        let threadEntry = try #require(try await store.outbox.claimReadyEntries(limit: 10).first)
        #expect(threadEntry.tableName == "thread")
        try await store.outbox.markFailed(threadEntry, reason: "HTTP 422: refused")
        try await store.write { tx in
            try tx.databaseBypassingSync.execute(
                sql: "UPDATE modelsync_outbox SET attempts = 1, nextAttemptAt = ? WHERE tableName = 'message'",
                arguments: [Date().addingTimeInterval(-10).timeIntervalSinceReferenceDate])
        }
        let engine = SyncEngine(
            store: store,
            remote: RESTRemote(configuration: .init(baseURL: baseURL, timeout: 5), models: GeneratedModels.all))
        let done = Mutex(false)
        let push = Task {
            defer { done.withLock { $0 = true } }
            return try await engine.push()
        }
        // With the bug, push() waits for the blocked retry until `maximumRetryWait` (300 s by default).
        // It returns in about 40 ms alone, but took 3.3 s and then over 5 s with the whole suite in
        // this process (the cooperative pool shared with CPU-bound suites), so the guard is 60 s:
        // still far below what the bug would take.
        let returned = try await eventually(timeout: .seconds(60)) { done.withLock { $0 } }
        #expect(returned, "push() kept waiting for an entry that cannot be sent")
        if !returned { push.cancel() }
        let report = try await push.value
        #expect(report.remaining == 1)
    }

    @Test("a server ID already held by the pulled copy of the same create is merged when the copy equals what was sent")
    func pulledCopyIsMergedOnReplacement() async throws {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = SyncEngine(
            store: store,
            remote: RESTRemote(configuration: .init(baseURL: baseURL, timeout: 5), models: GeneratedModels.all))
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await engine.push()
        let created = Date(timeIntervalSinceReferenceDate: 800_000_000)
        let thread = try await store.threads.save(
            ChatThread(title: "local title", createdAt: created, tags: [], ownerId: user.id))
        let message = try await store.messages.save(Message(role: .user, body: "hi", threadId: thread.id))
        // The thread's create reached the server but its answer was lost; a pull then brought the
        // server's copy in under the server ID.
        let serverCopy = try await server.insert(
            [
                "title": .string("local title"), "created_at": .string(RESTRemote.iso8601(created)),
                "tags": .array([]), "owner_id": .string(user.id.rawValue),
            ], into: ChatThread.self)
        let serverID = try #require(serverCopy["id"]?.idString)
        try await engine.pull(ChatThread.self)
        #expect(try await store.threads.count() == 2)
        let changes = EventRecorder(store.threads.changes())

        // The retried create is answered with that ID: the pulled copy equals what the create sent,
        // so it is the same record (a bare `replaceTemporaryID` without that evidence refuses).
        await #expect(throws: ModelSyncError.self) {
            try await store.threads.replaceTemporaryID(thread.id, with: ChatThread.ID(serverID))
        }
        let threadEntry = try #require(
            try await store.outbox.claimReadyEntries(limit: 10).first { $0.tableName == "thread" })
        try await store.outbox.markSucceeded(threadEntry, serverID: serverID)
        let threads = try await store.threads.all()
        #expect(threads.map(\.id.rawValue) == [serverID])
        #expect(threads.first?.title == "local title")
        #expect(try await store.messages.find(message.id)?.threadId.rawValue == serverID)
        #expect(try await store.threads.find(thread.id)?.id.rawValue == serverID)
        #expect(
            try await eventually {
                changes.elements.contains {
                    if case .idChanged(let old, let new) = $0 { return old == thread.id && new.rawValue == serverID }
                    return false
                }
            })
        let violations = try await store.read { db in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count }
        #expect(violations == 0)
        changes.stop()
    }
}
