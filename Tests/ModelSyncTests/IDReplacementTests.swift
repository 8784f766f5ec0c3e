import ChatModels
import Foundation
import GRDB
import ModelSync
import Testing

@Suite("Replacing a temporary ID by the server's ID")
struct IDReplacementTests {
    @Test("replaces the thread's temporary ID in its row, every foreign key, every queued entry and the ID map")
    func replacesEverywhere() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 3)
        let artifact = Artifact(title: "Plan", kind: "doc")
        try await store.write { tx in
            try tx.save(artifact)
            try tx.save(ThreadArtifact(relation: .created, threadId: fixture.thread.id, artifactId: artifact.id))
            try tx.save(Draft(body: "draft", threadId: fixture.thread.id))
        }
        let oldID = fixture.thread.id
        #expect(oldID.isTemporary)
        let changes = store.threads.changes()

        let replaced = try await store.threads.replaceTemporaryID(oldID, with: "1001")
        #expect(replaced)
        let newID: ChatThread.ID = "1001"

        // The row.
        #expect(try await store.threads.all().map(\.id) == [newID])
        // Every foreign key: messages, join rows, the draft.
        #expect(try await store.messages.all().allSatisfy { $0.threadId == newID })
        #expect(try await store.threadArtifacts.all().map(\.threadId) == [newID])
        #expect(try await store.drafts.all().map(\.threadId) == [newID])
        // Replies between messages are untouched (their own IDs are still temporary).
        let messages = try await store.messages.all()
        #expect(messages[1].replyToId == fixture.messages[0].id)
        // Every queued entry: the thread's own create, and each child's payload.
        let entries = try await store.outbox.entries()
        let threadEntry = try #require(entries.first { $0.tableName == "thread" })
        #expect(threadEntry.recordID == "1001")
        #expect(try payloadObject(threadEntry)["id"] as? String == "1001")
        for entry in entries where ["message", "thread_artifact", "draft"].contains(entry.tableName) {
            #expect(try payloadObject(entry)["threadId"] as? String == "1001")
        }
        #expect(
            try await store.read { db in
                try String.fetchAll(db, sql: "SELECT payload FROM modelsync_outbox WHERE payload IS NOT NULL")
            }.allSatisfy { !$0.contains(oldID.rawValue) })
        // The old ID still resolves, for lookups and relationship resolvers.
        #expect(try await store.threads.find(oldID)?.id == newID)
        #expect(try await fixture.messages[0].thread(in: store)?.id == newID)
        #expect(try await fixture.thread.messages(in: store).count == 3)
        // Exactly one idChanged event.
        let events = try await collect(1, from: changes)
        guard case .idChanged(let old, let new) = events[0] else {
            Issue.record("expected idChanged, got \(events)")
            return
        }
        #expect(old == oldID && new == newID)
        // Foreign keys are consistent.
        let violations = try await store.read { db in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count }
        #expect(violations == 0)
    }

    @Test("replacing a self-referencing record rewrites the replies that point at it")
    func selfReference() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 3)
        try await store.threads.replaceTemporaryID(fixture.thread.id, with: "7")
        try await store.messages.replaceTemporaryID(fixture.messages[0].id, with: "m-1")
        let reply = try #require(try await store.messages.find(fixture.messages[1].id))
        #expect(reply.replyToId == "m-1")
        let replyEntry = try #require(
            try await store.outbox.entries().first { $0.recordID == fixture.messages[1].id.rawValue })
        #expect(try payloadObject(replyEntry)["replyToId"] as? String == "m-1")
    }

    @Test("replacing again with the same server ID does nothing and emits no second event")
    func idempotent() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 1)
        let changes = store.threads.changes()
        #expect(try await store.threads.replaceTemporaryID(fixture.thread.id, with: "5"))
        #expect(try await store.threads.replaceTemporaryID(fixture.thread.id, with: "5") == false)
        var thread = try #require(try await store.threads.find("5"))
        thread.title = "after"
        try await store.threads.save(thread)  // an update after the replacement ends the collection
        let events = try await collect(2, from: changes)
        guard case .idChanged = events[0], case .updated = events[1] else {
            Issue.record("expected one idChanged then one updated, got \(events)")
            return
        }
    }

    @Test("replacing with a different server ID than before is refused")
    func conflictingReplacement() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 0)
        try await store.threads.replaceTemporaryID(fixture.thread.id, with: "5")
        await #expect(throws: ModelSyncError.self) {
            try await store.threads.replaceTemporaryID(fixture.thread.id, with: "6")
        }
        #expect(try await store.threads.find("5") != nil)
        #expect(try await store.threads.find("6") == nil)
    }

    @Test("a server ID already used by another record is refused and nothing changes")
    func idInUse() async throws {
        let store = try makeStore()
        let first = try await ChatFixture.make(in: store, messageCount: 1)
        let second = try await ChatFixture.make(in: store, messageCount: 1)
        try await store.threads.replaceTemporaryID(first.thread.id, with: "5")
        let error = await #expect(throws: ModelSyncError.self) {
            try await store.threads.replaceTemporaryID(second.thread.id, with: "5")
        }
        #expect(
            error
                == .serverIDHeldByAnotherRecord(table: "thread", temporaryID: second.thread.id.rawValue, serverID: "5"))
        #expect(try await store.threads.find(second.thread.id)?.id == second.thread.id)
        #expect(try await store.messages.find(second.messages[0].id)?.threadId == second.thread.id)
    }

    @Test("a stale copy holding the old ID saves onto the replaced record, not a new one")
    func staleCopySaves() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 1)
        try await store.threads.replaceTemporaryID(fixture.thread.id, with: "9")
        var stale = fixture.thread
        stale.title = "Renamed offline"
        let saved = try await store.threads.save(stale)
        #expect(saved.id == "9")
        #expect(try await store.threads.count() == 1)
        #expect(try await store.threads.find("9")?.title == "Renamed offline")

        // A new child created with the parent's old ID is stored with the new one.
        let message = try await store.messages.save(Message(role: .user, body: "late", threadId: fixture.thread.id))
        #expect(message.threadId == "9")
    }

    @Test("an observer of a record follows it when its temporary ID is replaced")
    func observerFollows() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 0)
        let observation = store.threads.observe(fixture.thread.id)
        let initial = try await collect(1, from: observation)
        #expect(initial.first??.id == fixture.thread.id)
        let after = store.threads.observe(fixture.thread.id)
        try await store.threads.replaceTemporaryID(fixture.thread.id, with: "77")
        let followed = try await firstElement(of: after) { $0?.id == "77" }
        #expect(followed??.title == fixture.thread.title)
    }

    @Test("a file-backed store reopened keeps the outbox and the ID map")
    func survivesReopen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("chat.sqlite")
        let fixture: ChatFixture
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            fixture = try await ChatFixture.make(in: store, messageCount: 3)
            try await store.threads.replaceTemporaryID(fixture.thread.id, with: "42")
        }
        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        let summary = try await outboxSummary(reopened)
        #expect(summary.count == 5)  // user, thread, 3 messages
        #expect(summary.contains("thread create 42"))
        #expect(try await reopened.threads.find(fixture.thread.id)?.id == "42")
        #expect(try await reopened.messages.all().allSatisfy { $0.threadId == "42" })
        let integrity = try await reopened.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
    }
}
