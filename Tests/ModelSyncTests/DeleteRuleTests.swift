import ChatModels
import Foundation
import GRDB
@_spi(OutboxInternals) import ModelSync
import Testing

@Suite("Delete rules: cascade, nullify, restrict")
struct DeleteRuleTests {
    @Test("deleting a thread cascades to its messages, join rows and draft, with an event for each")
    func cascade() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 3)
        let artifact = Artifact(title: "a", kind: "doc")
        try await store.write { tx in
            try tx.save(artifact)
            try tx.save(ThreadArtifact(relation: .created, threadId: fixture.thread.id, artifactId: artifact.id))
            try tx.save(Draft(body: "d", threadId: fixture.thread.id))
        }
        let messageChanges = store.messages.changes()
        #expect(try await store.threads.delete(fixture.thread.id))
        #expect(try await store.messages.count() == 0)
        #expect(try await store.threadArtifacts.count() == 0)
        #expect(try await store.drafts.count() == 0)
        #expect(try await store.artifacts.count() == 1)
        #expect(try await store.users.count() == 1)
        let events = try await collect(3, from: messageChanges)
        let deleted = events.compactMap { event -> Message.ID? in
            if case .deleted(let id) = event { return id }
            return nil
        }
        #expect(Set(deleted) == Set(fixture.messages.map(\.id)))
    }

    @Test("deleting a synced thread queues deletes for the synced children before the parent")
    func cascadeQueuesDeletes() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 1)
        // Sync everything: user, thread (server ID 1), message (server ID 2).
        for _ in 0..<3 {
            for entry in try await store.outbox.claimReadyEntries(limit: 10) {
                let serverID = entry.tableName == "thread" ? "1" : entry.tableName == "message" ? "2" : nil
                try await store.outbox.markSucceeded(entry, serverID: serverID)
            }
        }
        #expect(try await store.outbox.entries().isEmpty)
        try await store.threads.delete(fixture.thread.id)  // the old temporary ID still resolves
        #expect(try await outboxSummary(store) == ["message delete 2", "thread delete 1"])
    }

    @Test("deleting a message nullifies the replies that pointed at it and queues their update")
    func nullify() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 3)
        let changes = store.messages.changes()
        try await store.messages.delete(fixture.messages[0].id)
        let reply = try #require(try await store.messages.find(fixture.messages[1].id))
        #expect(reply.replyToId == nil)
        #expect(try await store.messages.find(fixture.messages[2].id)?.replyToId == fixture.messages[1].id)
        let entry = try #require(
            try await store.outbox.entries().first { $0.recordID == fixture.messages[1].id.rawValue })
        #expect(entry.operation == .create)
        #expect(try payloadObject(entry)["replyToId"] is NSNull)
        #expect(try payloadObject(entry)["body"] as? String == "message 1")
        let events = try await collect(2, from: changes)
        guard case .updated(let updated) = events[0], case .deleted(let deletedID) = events[1] else {
            Issue.record("expected updated then deleted, got \(events)")
            return
        }
        #expect(updated.id == fixture.messages[1].id && updated.replyToId == nil)
        #expect(deletedID == fixture.messages[0].id)
    }

    @Test("deleting an artifact still linked to a thread is refused and changes nothing")
    func restrict() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 0)
        let artifact = Artifact(title: "a", kind: "doc")
        let link = ThreadArtifact(relation: .created, threadId: fixture.thread.id, artifactId: artifact.id)
        try await store.write { tx in
            try tx.save(artifact)
            try tx.save(link)
        }
        let before = try await outboxSummary(store)
        let error = await #expect(throws: ModelSyncError.self) { try await store.artifacts.delete(artifact.id) }
        #expect(
            error
                == .deleteRestricted(
                    model: "Artifact", id: artifact.id.rawValue, referencingTable: "thread_artifact",
                    column: "artifactId", count: 1))
        #expect(try await store.artifacts.count() == 1)
        #expect(try await outboxSummary(store) == before)

        try await store.threadArtifacts.delete(link.id)
        #expect(try await store.artifacts.delete(artifact.id))
    }

    @Test("a restrict deeper in a cascade refuses the whole delete")
    func restrictInsideCascade() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 2)
        let artifact = Artifact(title: "a", kind: "doc")
        try await store.write { tx in
            try tx.save(artifact)
            try tx.save(ThreadArtifact(relation: .created, threadId: fixture.thread.id, artifactId: artifact.id))
        }
        // Deleting the thread cascades to the join row; the restrict is on the artifact side only,
        // so this delete succeeds.
        try await store.threads.delete(fixture.thread.id)
        #expect(try await store.threadArtifacts.count() == 0)
        #expect(try await store.artifacts.count() == 1)
    }

    @Test("deleting a missing record returns false")
    func deleteMissing() async throws {
        let store = try makeStore()
        #expect(try await store.users.delete("usr_nope") == false)
    }

    @Test("delete rules live in the store alone: a raw delete of a parent fails at commit instead of cascading unseen")
    func rawDeleteDoesNotCascade() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 2)
        let queuedBefore = try await outboxSummary(store)
        await #expect(throws: DatabaseError.self) {
            try await store.writeBypassingSync { db in
                try db.execute(sql: "DELETE FROM thread WHERE id = ?", arguments: [fixture.thread.id.rawValue])
            }
        }
        // Nothing was deleted behind the outbox's back: the thread, its messages and the queue stand.
        #expect(try await store.threads.count() == 1)
        #expect(try await store.messages.count() == 2)
        #expect(try await outboxSummary(store) == queuedBefore)
    }
}
