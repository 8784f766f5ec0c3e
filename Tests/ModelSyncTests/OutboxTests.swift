import ChatModels
import Foundation
import GRDB
import Testing

@_spi(OutboxInternals) @testable import ModelSync

@Suite("Outbox: queuing, coalescing, claiming and outcomes")
struct OutboxTests {
    @Test("a create followed by updates is sent as one create with the latest state")
    func createThenUpdates() async throws {
        let store = try makeStore()
        var user = try await store.users.save(User(name: "v1", email: "a@example.com"))
        user.name = "v2"
        try await store.users.save(user)
        user.name = "v3"
        try await store.users.save(user)
        let entries = try await store.outbox.entries()
        #expect(entries.count == 1)
        #expect(entries[0].operation == .create)
        #expect(try payloadObject(entries[0])["name"] as? String == "v3")
    }

    @Test("a change never sent whose parent the server refused names that parent in its status (read from its row)")
    func neverSentChildNamesRefusedParent() async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        let thread = try await store.threads.save(
            ChatModels.Thread(
                title: "t", createdAt: Date(timeIntervalSinceReferenceDate: 0), tags: [], ownerId: user.id))
        let claimed = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(claimed.map(\.tableName) == ["user"])  // the thread waits for its owner
        try await store.outbox.markFailed(try #require(claimed.first), reason: "email taken")
        #expect(
            try await store.threads.syncStatus(of: thread.id)
                == .pending(
                    attempts: 0,
                    lastError: "waiting for user '\(user.id.rawValue)', whose change the server refused: email taken",
                    nextAttempt: nil))
    }

    @Test("a create followed by a delete before sync sends nothing")
    func createThenDelete() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 2)
        try await store.users.delete(fixture.user.id)  // cascades to the thread and its messages
        #expect(try await store.outbox.entries().isEmpty)
        #expect(try await store.messages.count() == 0)
    }

    @Test("updates of a synced record coalesce into one update with the latest state")
    func updatesCoalesce() async throws {
        let store = try makeStore()
        var user = try await store.users.save(User(name: "v1", email: "a@example.com"))
        let create = try await store.outbox.claimReadyEntries(limit: 10)
        try await store.outbox.markSucceeded(create[0])
        user.name = "v2"
        try await store.users.save(user)
        user.name = "v3"
        try await store.users.save(user)
        let entries = try await store.outbox.entries()
        #expect(entries.map(\.operation) == [.update])
        #expect(try payloadObject(entries[0])["name"] as? String == "v3")
        #expect(try await store.users.syncStatus(of: user.id) == .queued)
    }

    @Test("an update then a delete of a synced record sends only the delete")
    func updateThenDelete() async throws {
        let store = try makeStore()
        var user = try await store.users.save(User(name: "v1", email: "a@example.com"))
        try await store.outbox.markSucceeded(try await store.outbox.claimReadyEntries(limit: 1)[0])
        user.name = "v2"
        try await store.users.save(user)
        try await store.users.delete(user.id)
        #expect(try await outboxSummary(store) == ["user delete \(user.id)"])
    }

    @Test("a change made while an entry is in flight queues behind it instead of rewriting it")
    func inFlightIsNotRewritten() async throws {
        let store = try makeStore()
        var user = try await store.users.save(User(name: "v1", email: "a@example.com"))
        let claimed = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(claimed.map(\.state) == [.inFlight])
        user.name = "v2"
        try await store.users.save(user)
        let entries = try await store.outbox.entries()
        #expect(entries.map(\.operation) == [.create, .update])
        #expect(try payloadObject(entries[0])["name"] as? String == "v1")
        // The update waits for the in-flight create.
        #expect(try await store.outbox.claimReadyEntries(limit: 10).isEmpty)
        try await store.outbox.markSucceeded(claimed[0])
        #expect(try await store.outbox.claimReadyEntries(limit: 10).map(\.operation) == [.update])
    }

    @Test("a child waits for its parent's server ID, then goes out carrying it; unrelated records go ahead")
    func dependencyOrder() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 2)
        let unrelated = try await store.artifacts.save(Artifact(title: "free", kind: "doc"))

        // Only the user and the unrelated artifact are ready: the thread waits until the server has
        // its owner (a client ID, but not yet sent), and the messages wait for the thread.
        let first = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(Set(first.map(\.tableName)) == ["user", "artifact"])
        #expect(first.contains { $0.recordID == unrelated.id.rawValue })
        for entry in first { try await store.outbox.markSucceeded(entry) }
        let ready = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(ready.map(\.tableName) == ["thread"])
        let threadEntry = try #require(ready.first)
        #expect(try await store.outbox.claimReadyEntries(limit: 10).isEmpty)

        // The server answers the thread's create: its ID is replaced and the first message is ready.
        try await store.outbox.markSucceeded(threadEntry, serverID: "500")
        let second = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(second.map(\.recordID) == [fixture.messages[0].id.rawValue])
        #expect(try payloadObject(second[0])["threadId"] as? String == "500")
        // The reply waits for the message it replies to.
        try await store.outbox.markSucceeded(second[0], serverID: "m-1")
        let third = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(try payloadObject(third[0])["replyToId"] as? String == "m-1")
        #expect(try payloadObject(third[0])["threadId"] as? String == "500")
    }

    @Test("a create gets its idempotency key at its first claim and keeps it across retries and a restart")
    func stableIdempotencyKey() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("outbox.sqlite")
        let key: String
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            var user = try await store.users.save(User(name: "v1", email: "a@example.com"))
            #expect(try await store.outbox.entries().map(\.idempotencyKey) == [nil])
            user.name = "v2"
            try await store.users.save(user)
            #expect(try await store.outbox.entries().map(\.idempotencyKey) == [nil])
            let claimed = try await store.outbox.claimReadyEntries(limit: 1)
            #expect(claimed.map(\.operation) == [.create])
            key = try #require(claimed.first?.idempotencyKey)
            #expect(key.count == 36)
            #expect(try await store.outbox.entries().map(\.idempotencyKey) == [key])
            try await store.outbox.scheduleRetry(claimed[0], at: Date(), reason: "timeout")
            #expect(try await store.outbox.entries().map(\.idempotencyKey) == [key])
            _ = try await store.outbox.claimReadyEntries(limit: 1)  // in flight when the app "dies"
        }
        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        let entries = try await reopened.outbox.entries()
        #expect(entries.count == 1)
        #expect(entries[0].state == .pending)
        #expect(entries[0].attempts == 2)
        #expect(entries[0].idempotencyKey == key)
        #expect(try await reopened.outbox.claimReadyEntries(limit: 1).map(\.idempotencyKey) == [key])
    }

    @Test("a change already sent outside the outbox keeps that request's key and body; later saves queue behind it")
    func givenIdempotencyKey() async throws {
        let store = try makeStore()
        var user = try await store.users.save(User(name: "v1", email: "a@example.com"))
        #expect(try await store.outbox.entries().map(\.idempotencyKey) == [nil])
        // A remote-first save whose answer never came: its key and body replace the never-sent entry.
        user.name = "v2"
        let sentKey = "key-of-the-lost-request"
        let edited = user
        try await store.write { tx in _ = try tx.save(edited, idempotencyKey: sentKey) }
        var entries = try await store.outbox.entries()
        #expect(entries.map(\.operation) == [.create])
        #expect(entries.map(\.idempotencyKey) == [sentKey])
        #expect(entries.map(\.attempts) == [1])
        // A later ordinary save does not change what was sent under that key: it queues an update.
        user.name = "v3"
        try await store.users.save(user)
        entries = try await store.outbox.entries()
        #expect(entries.map(\.operation) == [.create, .update])
        #expect(entries.map(\.idempotencyKey) == [sentKey, nil])
        #expect(try payloadObject(entries[0])["name"] as? String == "v2")
        #expect(try payloadObject(entries[1])["name"] as? String == "v3")
        // The entry sent once is claimed under that key.
        #expect(try await store.outbox.claimReadyEntries(limit: 10).map(\.idempotencyKey) == [sentKey])
    }

    @Test("a retry waits for its backoff time")
    func backoff() async throws {
        let store = try makeStore()
        try await store.users.save(User(name: "a", email: "a@example.com"))
        let claimed = try await store.outbox.claimReadyEntries(limit: 1)
        let retryAt = Date().addingTimeInterval(60)
        try await store.outbox.scheduleRetry(claimed[0], at: retryAt, reason: "HTTP 503")
        #expect(try await store.outbox.claimReadyEntries(limit: 1).isEmpty)
        #expect(try await store.outbox.claimReadyEntries(limit: 1, now: retryAt.addingTimeInterval(1)).count == 1)
    }

    @Test("sync status is pending while queued, failed with the server's reason, synced once accepted")
    func syncStatus() async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: "a", email: "a@example.com"))
        let statuses = store.users.observeSyncStatus(of: user.id)
        #expect(try await store.users.syncStatus(of: user.id) == .queued)
        let claimed = try await store.outbox.claimReadyEntries(limit: 1)
        try await store.outbox.markFailed(claimed[0], reason: "422: email is invalid")
        #expect(try await store.users.syncStatus(of: user.id) == .failed(reason: "422: email is invalid"))
        #expect(try await store.outbox.counts() == [.failed: 1])
        #expect(try await store.outbox.retryFailed() == 1)
        let again = try await store.outbox.claimReadyEntries(limit: 1)
        try await store.outbox.markSucceeded(again[0])
        #expect(try await store.users.syncStatus(of: user.id) == .synced)
        let seen = try await firstElement(of: statuses) { $0 == .synced }
        #expect(seen == .synced)
    }

    @Test("a record whose create failed for good is deleted without sending anything")
    func deleteAfterPermanentFailure() async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: "a", email: "a@example.com"))
        try await store.outbox.markFailed(try await store.outbox.claimReadyEntries(limit: 1)[0], reason: "400")
        try await store.users.delete(user.id)
        #expect(try await store.outbox.entries().isEmpty)
    }

    @Test("deleting a record whose create may have reached the server queues a delete after it")
    func deleteAfterAttempt() async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: "a", email: "a@example.com"))
        _ = try await store.outbox.claimReadyEntries(limit: 1)
        try await store.users.delete(user.id)
        #expect(try await outboxSummary(store) == ["user create \(user.id)", "user delete \(user.id)"])
    }

    @Test("a parent's delete waits until no queued change of a child still references it")
    func parentDeleteWaitsForChildren() async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: "a", email: "a@example.com"))
        let userCreate = try #require(try await store.outbox.claimReadyEntries(limit: 10).first)
        try await store.outbox.markSucceeded(userCreate)
        // The thread's create was sent once and will be retried: it may or may not be on the server.
        let thread = try await store.threads.save(ChatThread(createdAt: Date(), tags: [], ownerId: user.id))
        let threadCreate = try #require(try await store.outbox.claimReadyEntries(limit: 10).first)
        try await store.outbox.scheduleRetry(threadCreate, at: Date(), reason: "timed out")
        // Deleting the user cascades to the thread: a delete queued for each.
        try await store.users.delete(user.id)
        #expect(
            try await outboxSummary(store) == [
                "thread create \(thread.id)", "thread delete \(thread.id)", "user delete \(user.id)",
            ])
        // The thread's create goes first; the user's delete would make it fail with an unknown owner.
        let first = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(first.map(\.operation) == [.create])
        try await store.outbox.markSucceeded(first[0], serverID: "500")
        let second = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(second.map { "\($0.tableName) \($0.operation.rawValue)" } == ["thread delete", "user delete"])
    }

    @Test(
        "a queued change stores no copy of the record until it is first sent, then keeps what it sent for its retries")
    func payloadReadWhenFirstSent() async throws {
        let store = try makeStore()
        var user = try await store.users.save(User(name: "v1", email: "a@example.com"))
        let storedPayloads = { @Sendable () async throws -> [String?] in
            try await store.read { db in
                try String?.fetchAll(db, sql: "SELECT payload FROM modelsync_outbox ORDER BY sequence")
            }
        }
        #expect(try await storedPayloads() == [nil], "the save queues the change without writing the record again")
        user.name = "v2"
        try await store.users.save(user)
        let claimed = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(try payloadObject(claimed[0])["name"] as? String == "v2", "the create sends the latest saved state")
        user.name = "v3"
        try await store.users.save(user)
        // The claim kept what it sends; the edit made meanwhile queues an update behind it, with no copy.
        let afterClaim = try await storedPayloads()
        #expect(afterClaim.count == 2 && afterClaim[1] == nil)
        #expect(afterClaim[0] == claimed[0].payload)
        // Given back unsent (the answer never came), the create sends what it sent the first time.
        try await store.outbox.releaseClaims(claimed)
        let retried = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(retried.map(\.sequence) == claimed.map(\.sequence))
        #expect(retried[0].payload == claimed[0].payload)
        try await store.outbox.markSucceeded(retried[0])
        let update = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(update.map(\.operation) == [.update])
        #expect(try payloadObject(update[0])["name"] as? String == "v3")
    }

    @Test("a queued create whose record was deleted around the store's API fails with the reason instead of being sent")
    func queuedChangeOfVanishedRecordFails() async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: "Ada", email: "a@example.com"))
        try await store.writeBypassingSync { db in
            try db.execute(sql: "DELETE FROM user WHERE id = ?", arguments: [user.id.rawValue])
        }
        #expect(try await store.outbox.claimReadyEntries(limit: 10).isEmpty)
        guard case .failed(let reason) = try await store.users.syncStatus(of: user.id) else {
            Issue.record("the create should have failed")
            return
        }
        #expect(reason.contains("no longer in the store"), "\(reason)")
    }

    /// The outcomes a push records for a claim, by name.
    enum ClaimOutcome: String, CaseIterable, Sendable {
        case succeeded, retry, failed
    }

    @Test(
        "the outcome of a claim whose entry was removed in flight leaves a later entry with the same sequence alone",
        arguments: ClaimOutcome.allCases)
    func outcomeOfRemovedClaimLeavesNewEntryAlone(_ outcome: ClaimOutcome) async throws {
        let store = try makeStore()
        var user = try await store.users.save(User(name: "v1", email: "a@example.com"))
        let claimed = try #require(try await store.outbox.claimReadyEntries(limit: 10).first)
        // Removed while in flight (as a pulled server delete removes it), then a new change is queued.
        try await store.writeBypassingSync { db in
            try db.execute(sql: "DELETE FROM modelsync_outbox WHERE sequence = ?", arguments: [claimed.sequence])
        }
        user.name = "v2"
        try await store.users.save(user)
        let queued = try #require(try await store.outbox.entries().first)
        // The late answer names the claim's sequence number, which the new entry may reuse.
        var late = claimed
        late.sequence = queued.sequence
        switch outcome {
        case .succeeded: try await store.outbox.markSucceeded(late)
        case .retry: try await store.outbox.scheduleRetry(late, at: Date.distantFuture, reason: "HTTP 503")
        case .failed: try await store.outbox.markFailed(late, reason: "HTTP 422")
        }
        let after = try await store.outbox.entries()
        #expect(after.map(\.sequence) == [queued.sequence])
        #expect(after.first?.state == .pending)
        #expect(after.first?.lastError == nil)
        #expect(after.first?.nextAttemptAt == nil)
    }
}
