import ChatModels
import Foundation
import ModelSync
import ModelSyncReferenceServer
import Testing

/// The ways out of a failed change: retry, discard, re-create (issue 9, item 15).
@Suite("A failed change can be retried, discarded or re-created")
struct FailedChangeTests {
    @Test("a refused create is retried once its cause is gone, and syncs")
    func retryAfterTheCauseIsFixed() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        try await harness.server.insert(
            ["id": .string("usr_other"), "name": .string("Other"), "email": .string("taken@example.com")],
            into: User.self)
        let user = try await harness.store.users.save(User(name: "Eve", email: "taken@example.com"))
        try await harness.engine.push()
        #expect(try await harness.store.users.syncStatus(of: user.id).isPending == false)
        try await harness.server.delete(in: User.self, id: "usr_other")

        #expect(try await harness.store.users.retry(user.id) == 1)
        try await harness.engine.push()
        #expect(try await harness.store.users.syncStatus(of: user.id) == .synced)
        #expect(await harness.serverRecords(User.self)[user.id.rawValue]?["email"] == .string("taken@example.com"))
    }

    @Test("discarding a refused update puts the server's copy back")
    func discardRestoresTheServerCopy() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        try await harness.server.insert(
            ["id": .string("usr_other"), "name": .string("Other"), "email": .string("taken@example.com")],
            into: User.self)
        var user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await harness.engine.push()
        user.email = "taken@example.com"
        user.name = "Ada L."
        try await harness.store.users.save(user)
        try await harness.engine.push()
        guard case .failed = try await harness.store.users.syncStatus(of: user.id) else {
            Issue.record("the update should have been refused")
            return
        }

        #expect(try await harness.engine.discardChanges(of: User.self, id: user.id))
        let restored = try #require(try await harness.store.users.find(user.id))
        #expect(restored.email == "ada@example.com" && restored.name == "Ada")
        #expect(try await harness.store.users.syncStatus(of: user.id) == .synced)
        #expect(try await harness.store.outbox.entries().isEmpty)
    }

    @Test("discarding a record the server never created deletes it locally with its children")
    func discardNeverCreatedRecord() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await harness.engine.push()
        let thread = try await harness.store.threads.save(ChatThread(createdAt: Date(), tags: [], ownerId: user.id))
        let message = try await harness.store.messages.save(Message(role: .user, body: "hi", threadId: thread.id))
        harness.server.setFaults(FaultPlan(script: [.status(422)]))
        try await harness.engine.push()
        guard case .failed = try await harness.store.threads.syncStatus(of: thread.id) else {
            Issue.record("the create should have been refused")
            return
        }

        #expect(try await harness.engine.discardChanges(of: ChatThread.self, id: thread.id) == false)
        #expect(try await harness.store.threads.find(thread.id) == nil)
        #expect(try await harness.store.messages.find(message.id) == nil)
        #expect(try await harness.store.outbox.entries().isEmpty)
        #expect(await harness.server.records(of: ChatThread.self).isEmpty)
    }

    @Test("a record the server lost (its update answered 404) is re-created with a new server ID")
    func recreateLostRecord() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 0)
        try await harness.engine.push()
        var thread = try #require(try await harness.store.threads.find(chat.thread.id))
        let lostID = thread.id
        try await harness.server.delete(in: ChatThread.self, id: lostID.rawValue)
        thread.title = "Still here"
        try await harness.store.threads.save(thread)
        try await harness.engine.push()
        guard case .failed(let reason) = try await harness.store.threads.syncStatus(of: lostID) else {
            Issue.record("the update should have failed")
            return
        }
        #expect(reason.contains("404"))

        try await harness.engine.recreate(ChatThread.self, id: lostID)
        let report = try await harness.engine.push()
        #expect(report.failed == 0)
        let recreated = try #require(try await harness.store.threads.find(lostID))
        #expect(recreated.id != lostID && recreated.title == "Still here")
        #expect(await harness.serverRecords(ChatThread.self)[recreated.id.rawValue]?["title"] == .string("Still here"))
        #expect(try await harness.store.threads.syncStatus(of: recreated.id) == .synced)
    }
}
