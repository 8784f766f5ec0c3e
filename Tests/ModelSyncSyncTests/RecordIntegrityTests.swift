import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
import Testing

/// Server answers that used to merge, lose or strand records (issue 9, items 1, 5, 7, 8, 13, 14 and
/// the batched push bookkeeping), over real loopback HTTP against the reference server.
@Suite("Records stay whole whatever the server answers")
struct RecordIntegrityTests {
    /// A user synced, and a thread of another client pulled with server ID 1.
    private func harnessWithPulledThread() async throws -> (SyncHarness, user: User, theirs: ChatThread) {
        let harness = try await SyncHarness.start()
        let user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await harness.engine.push()
        let created = try await harness.server.insert(
            [
                "title": .string("Theirs"),
                "created_at": .string(RESTRemote.iso8601(Date(timeIntervalSinceReferenceDate: 1))),
                "tags": .array([]), "owner_id": .string(user.id.rawValue),
            ], into: ChatThread.self)
        try await harness.engine.pull(ChatThread.self)
        let theirs = try #require(try await harness.store.threads.find(ChatThread.ID(created["id"]!.idString!)))
        return (harness, user, theirs)
    }

    @Test("a create answered with an ID another local record holds keeps both records apart and fails, naming both")
    func serverIDHeldByAnotherRecord() async throws {
        let (harness, user, theirs) = try await harnessWithPulledThread()
        defer { Task { await harness.server.stop() } }
        // The server's ID sequence is reset: our new thread will be answered with ID 1 again.
        await harness.server.resetIDSequence()
        let mine = try await harness.store.threads.save(
            ChatThread(title: "Mine", createdAt: Date(), tags: [], ownerId: user.id))
        let reply = try await harness.store.messages.save(Message(role: .user, body: "hi", threadId: mine.id))
        let unrelated = try await harness.store.users.save(User(name: "Bob", email: "bob@example.com"))

        let report = try await harness.engine.push(waitForRetries: false)

        #expect(report.failed == 1)
        #expect(try await harness.store.threads.find(theirs.id)?.title == "Theirs")
        let stillMine = try #require(try await harness.store.threads.find(mine.id))
        #expect(stillMine.id == mine.id && stillMine.title == "Mine")
        #expect(try await harness.store.messages.find(reply.id)?.threadId == mine.id)
        guard case .failed(let reason) = try await harness.store.threads.syncStatus(of: mine.id) else {
            Issue.record("the create should have failed")
            return
        }
        #expect(reason.contains(mine.id.rawValue) && reason.contains("'\(theirs.id.rawValue)'"), "\(reason)")
        // The rest of the push went on, and nothing is left in flight.
        #expect(try await harness.store.users.syncStatus(of: unrelated.id) == .synced)
        #expect(try await harness.store.outbox.counts()[.inFlight] == nil)
        // A later push in the same process still runs (and sends nothing new: the reply waits), and
        // the reply's status says what it waits for.
        #expect(try await harness.engine.push(waitForRetries: false).sent == 0)
        guard case .pending(_, let waiting?, _) = try await harness.store.messages.syncStatus(of: reply.id) else {
            Issue.record("the reply should say what it waits for")
            return
        }
        #expect(waiting.contains(mine.id.rawValue), "\(waiting)")
    }

    @Test("a lost create answer followed by a pull converges on one record: the listing echoes the create's key")
    func lostAnswerThenPullWithKeyEcho() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await harness.engine.push()
        let thread = try await harness.store.threads.save(
            ChatThread(title: "Mine", createdAt: Date(), tags: [], ownerId: user.id))
        harness.server.setFaults(FaultPlan(script: [.failAfterCommit(status: 503)]))
        let first = try await harness.engine.push(waitForRetries: false)
        #expect(first.retried == 1)

        let pulled = try await harness.engine.pull(ChatThread.self)
        #expect(pulled.inserted == 0 && pulled.rejected.isEmpty)
        let threads = try await harness.store.threads.all()
        #expect(threads.count == 1)
        let serverIDs = Array(await harness.serverRecords(ChatThread.self).keys)
        #expect(threads.map(\.id.rawValue) == serverIDs)
        #expect(try await harness.store.threads.find(thread.id)?.title == "Mine")
        #expect(try await harness.store.outbox.entries().isEmpty)
    }

    /// A client that does not read the server's key echo (as with a server that sends none), whose
    /// failed creates are retried 2 s later (not within the first push, even on a loaded machine),
    /// and a synced user.
    private static func harnessWithoutKeyEcho() async throws -> (SyncHarness, User) {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = SyncEngine(
            store: store,
            remote: RESTRemote(
                configuration: .init(baseURL: baseURL, creationKeyKey: nil), models: GeneratedModels.all),
            configuration: .init(retry: RetryPolicy(initialDelay: 2, maximumDelay: 2, jitter: 0)))
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await engine.push()
        return (SyncHarness(server: server, baseURL: baseURL, store: store, engine: engine), user)
    }

    @Test("without a key echo, a pulled copy equal to what the create sent is merged into the record")
    func lostAnswerThenPullWithoutKeyEcho() async throws {
        let (harness, user) = try await Self.harnessWithoutKeyEcho()
        let (server, store, engine) = (harness.server, harness.store, harness.engine)
        defer { Task { await server.stop() } }
        let thread = try await store.threads.save(
            ChatThread(
                title: "Mine", createdAt: Date(timeIntervalSinceReferenceDate: 800_000_000.25), tags: ["a"],
                ownerId: user.id))
        server.setFaults(FaultPlan(script: [.failAfterCommit(status: 503)]))
        try await engine.push(waitForRetries: false)
        try await engine.pull(ChatThread.self)
        #expect(try await store.threads.count() == 2)  // not yet known to be the same record

        let report = try await engine.push()  // the retried create is replayed: same server ID
        #expect(report.failed == 0)
        let threads = try await store.threads.all()
        #expect(threads.count == 1)
        #expect(threads.first?.title == "Mine")
        #expect(try await store.threads.find(thread.id)?.id == threads.first?.id)
    }

    @Test("without a key echo, a pulled copy that differs from what was sent stays apart and the create fails")
    func differentPulledCopyIsNotMerged() async throws {
        let (harness, user) = try await Self.harnessWithoutKeyEcho()
        let (server, store, engine) = (harness.server, harness.store, harness.engine)
        defer { Task { await server.stop() } }
        let thread = try await store.threads.save(
            ChatThread(
                title: "Mine", createdAt: Date(timeIntervalSinceReferenceDate: 800_000_000), tags: [], ownerId: user.id)
        )
        server.setFaults(FaultPlan(script: [.failAfterCommit(status: 503)]))
        try await engine.push(waitForRetries: false)
        // Another client renames the server's copy before this device pulls it.
        let serverCopy = try #require(await server.records(of: ChatThread.self).first)
        var renamed = serverCopy
        renamed["title"] = .string("Renamed elsewhere")
        try await server.update(renamed, in: ChatThread.self, id: serverCopy["id"]!.idString!)
        try await engine.pull(ChatThread.self)

        let report = try await engine.push()
        #expect(report.failed == 1)
        #expect(try await store.threads.count() == 2)
        #expect(try await store.threads.find(thread.id)?.title == "Mine")
        #expect(
            try await store.threads.find(ChatThread.ID(serverCopy["id"]!.idString!))?.title == "Renamed elsewhere")
    }

    @Test("an update held by the network past the client timeout does not overwrite a newer one")
    func lateUpdateDoesNotWin() async throws {
        let harness = try await SyncHarness.start(timeout: 2)
        defer { Task { await harness.server.stop() } }
        var user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await harness.engine.push()
        // The first update is held 6 s before the server handles it; the client gives up at 2 s
        // and retries; then a second update follows.
        harness.server.setFaults(FaultPlan(script: [.delay(milliseconds: 6000)]))
        user.name = "first"
        try await harness.store.users.save(user)
        try await harness.engine.push()
        user.name = "second"
        try await harness.store.users.save(user)
        try await harness.engine.push()
        // The held request reaches the server now: it is answered from the idempotency store.
        #expect(try await eventually(timeout: .seconds(20)) { await harness.server.replayedUpdates >= 1 })

        #expect(await harness.serverRecords(User.self)[user.id.rawValue]?["name"] == .string("second"))
        try await harness.engine.pull(User.self)
        #expect(try await harness.store.users.find(user.id)?.name == "second")
        #expect(try await harness.store.users.syncStatus(of: user.id) == .synced)
    }

    @Test("an update based on an old version meets the newer server copy and the conflict policy decides")
    func staleUpdateGoesThroughTheConflictPolicy() async throws {
        for policy in ["keep local", "accept remote"] {
            let harness = try await SyncHarness.start(
                conflictPolicy: policy == "keep local" ? .keepLocalChanges : .acceptRemote)
            defer { Task { await harness.server.stop() } }
            var user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
            try await harness.engine.push()
            var elsewhere = try #require(await harness.serverRecords(User.self)[user.id.rawValue])
            elsewhere["name"] = .string("renamed elsewhere")
            try await harness.server.update(elsewhere, in: User.self, id: user.id.rawValue)
            user.name = "renamed here"
            try await harness.store.users.save(user)

            let report = try await harness.engine.push()
            #expect(report.conflicts == 1, "\(policy)")
            let expected = policy == "keep local" ? "renamed here" : "renamed elsewhere"
            #expect(await harness.serverRecords(User.self)[user.id.rawValue]?["name"] == .string(expected))
            #expect(try await harness.store.users.find(user.id)?.name == expected)
            #expect(try await harness.store.outbox.entries().isEmpty)
        }
    }

    @Test("one dangling reference does not fail the pull: the rest is applied, the orphan reported, then applied")
    func danglingReferenceIsKeptAside() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let (user, thread) = try await harness.seedServerThread()
        try await harness.server.insert(
            ["role": .string("user"), "body": .string("fine"), "thread_id": thread["id"]!], into: Message.self)
        let orphan = try await harness.server.insert(
            ["role": .string("user"), "body": .string("orphan"), "thread_id": .integer(999)], into: Message.self,
            checkingReferences: false)
        let orphanID = try #require(orphan["id"]?.idString)

        let report = try await harness.engine.sync().pull
        #expect(report.inserted == 3)
        #expect(report.rejected.count == 1)
        #expect(report.rejected.first?.model == "Message" && report.rejected.first?.id == orphanID)
        #expect(report.rejected.first?.reason.contains("999") == true)
        #expect(try await harness.store.messages.count() == 1)

        // The thread it points at appears on the server: the next pull applies the orphan.
        try await harness.server.insert(
            [
                "id": .integer(999), "title": .string("late"), "created_at": .string(RESTRemote.iso8601(Date())),
                "tags": .array([]), "owner_id": user["id"]!,
            ], into: ChatThread.self)
        let later = try await harness.engine.sync().pull
        #expect(later.rejected.isEmpty)
        #expect(try await harness.store.messages.find(Message.ID(orphanID))?.threadId.rawValue == "999")
    }

    @Test("a pulled record colliding with an unsent local one on a unique field is kept aside, the rest applied")
    func uniqueCollisionIsKeptAside() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        try await harness.server.insert(
            ["id": .string("usr_theirs"), "name": .string("Theirs"), "email": .string("same@example.com")],
            into: User.self)
        try await harness.server.insert(
            ["id": .string("usr_other"), "name": .string("Other"), "email": .string("other@example.com")],
            into: User.self)
        let mine = try await harness.store.users.save(User(name: "Mine", email: "same@example.com"))

        let report = try await harness.engine.pull(User.self)
        #expect(report.inserted == 1)
        #expect(report.rejected.map(\.id) == ["usr_theirs"])
        #expect(try await harness.store.users.find("usr_other") != nil)
        // Once the local record changes its email, the next pull applies the kept record.
        var changed = mine
        changed.email = "mine@example.com"
        try await harness.store.users.save(changed)
        let later = try await harness.engine.pull(User.self)
        #expect(later.rejected.isEmpty)
        #expect(try await harness.store.users.find("usr_theirs")?.email == "same@example.com")
    }

    @Test(
        "a listed page whose new record takes the email a stored record gives up later in the page stores every record"
    )
    func uniqueValueMovingWithinAPage() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let first = try await harness.server.insert(
            ["id": .string("usr_first"), "name": .string("First"), "email": .string("same@example.com")],
            into: User.self)
        try await harness.engine.pull(User.self)
        // Listed after the cursor, in this order: a new user, the stored user moving to a new email,
        // and a new user taking the email it gave up. Stored in listing order, nothing collides;
        // the new users inserted before the move would.
        var taker = try await harness.server.insert(
            ["id": .string("usr_taker"), "name": .string("Taker"), "email": .string("taker@example.com")],
            into: User.self)
        try await harness.server.insert(
            ["id": .string("usr_other"), "name": .string("Other"), "email": .string("other@example.com")],
            into: User.self)
        var moved = first
        moved["email"] = .string("moved@example.com")
        try await harness.server.update(moved, in: User.self, id: "usr_first")
        taker["email"] = .string("same@example.com")
        try await harness.server.update(taker, in: User.self, id: "usr_taker")

        let report = try await harness.engine.pull(User.self)
        #expect(report.inserted == 2)
        #expect(report.updated == 1)
        #expect(report.rejected.isEmpty)
        #expect(try await harness.store.users.find("usr_taker")?.email == "same@example.com")
        #expect(try await harness.store.users.find("usr_other")?.email == "other@example.com")
        #expect(try await harness.store.users.find("usr_first")?.email == "moved@example.com")
        let keptAside = try await harness.store.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM modelsync_pulled_orphan")
        }
        #expect(keptAside == 0)
    }

    @Test("a full pull keeps the local copy of a record the server lists but this device cannot read")
    func unreadableListedRecordIsNotDeleted() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await harness.engine.push()
        var broken = try #require(await harness.serverRecords(User.self)[user.id.rawValue])
        broken["name"] = .integer(5)
        try await harness.server.update(broken, in: User.self, id: user.id.rawValue)

        let report = try await harness.engine.pull(User.self)  // the first pull lists everything
        #expect(report.rejected.map(\.id) == [user.id.rawValue])
        #expect(try await harness.store.users.find(user.id)?.name == "Ada")
    }

    @Test("a tombstone whose ID looks temporary deletes no local record")
    func temporaryLookingTombstoneDeletesNothing() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 0)
        try await harness.engine.push()
        try await harness.engine.pull(Message.self)  // stores the cursor: later pulls list tombstones
        let unsent = try await harness.store.messages.save(
            Message(
                role: .user, body: "not sent yet",
                threadId: try #require(try await harness.store.threads.find(chat.thread.id)).id))
        // A buggy server lists a record under this device's temporary ID, then deletes it.
        try await harness.server.insert(
            [
                "id": .string(unsent.id.rawValue), "role": .string("user"), "body": .string("x"),
                "thread_id": .integer(Int64(try #require(try await harness.store.threads.all().first).id.rawValue)!),
            ], into: Message.self)
        try await harness.server.delete(in: Message.self, id: unsent.id.rawValue)

        let report = try await harness.engine.pull(Message.self)
        #expect(report.deleted == 0)
        #expect(report.rejected.map(\.id) == [unsent.id.rawValue])
        #expect(try await harness.store.messages.find(unsent.id)?.body == "not sent yet")
    }

    @Test("a cursor holding '&', '=', '+' and '#' comes back to the server exactly")
    func cursorIsEscaped() async throws {
        let cursor = "a&b=c+d#e f"
        let server = try LoopbackHTTPServer { request, connection in
            let body =
                request.target.contains("cursor=")
                ? #"{"data": [], "next_cursor": null}"#
                : #"{"data": [{"id": "usr_1", "name": "A", "email": "a@example.com"}], "next_cursor": "a&b=c+d#e f"}"#
            connection.respond(status: 200, body: body)
        }
        defer { server.stop() }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = SyncHarness.makeEngine(store: store, baseURL: server.baseURL)
        try await engine.pull(User.self)
        let second = try #require(server.requests.last?.target)
        let query = try #require(URLComponents(string: "http://host" + second)?.queryItems)
        #expect(query == [URLQueryItem(name: "cursor", value: cursor)], "\(second)")
    }

    @Test("a create whose answer has a field this device cannot read still completes with the server's ID")
    func createAnswerWithUnreadableField() async throws {
        let server = try LoopbackHTTPServer { request, connection in
            connection.respond(
                status: 201, body: #"{"id": 41, "title": "t", "created_at": "not a date", "_version": 3}"#)
        }
        defer { server.stop() }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let user = User(id: "usr_known", name: "Ada", email: "ada@example.com")
        try await store.write { tx in
            try tx.databaseBypassingSync.execute(
                sql: "INSERT INTO user (id, name, email) VALUES (?, ?, ?)",
                arguments: [user.id.rawValue, user.name, user.email])
        }
        let thread = try await store.threads.save(ChatThread(createdAt: Date(), tags: [], ownerId: user.id))
        let engine = SyncHarness.makeEngine(store: store, baseURL: server.baseURL)
        let report = try await engine.push()
        #expect(report.sent == 1 && report.failed == 0)
        #expect(try await store.threads.find(thread.id)?.id.rawValue == "41")
    }

    @Test("a listing whose cursor cycles stops with an error naming the cursor instead of looping")
    func cyclingCursorStops() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        for index in 1...2 {
            try await harness.server.insert(
                ["id": .string("usr_\(index)"), "name": .string("Ada"), "email": .string("\(index)@example.com")],
                into: User.self)
        }
        await harness.server.setCyclingCursors(true)
        let done = Mutex(false)
        let pull = Task {
            defer { done.withLock { $0 = true } }
            return try await harness.engine.pull(User.self)
        }
        // A pull that loops would make hundreds of requests in this time (checked below); one that stops
        // takes three. The bound only keeps a looping pull from hanging the suite: in the full suite on
        // two loaded cores, these three requests once took more than 10 s.
        let returned = try await eventually(timeout: .seconds(60)) { done.withLock { $0 } }
        #expect(returned, "the pull kept listing: \(harness.server.requestCounts["GET", default: 0]) GETs")
        if !returned { pull.cancel() }
        let result = await pull.result
        #expect(throws: RemoteError.self) { try result.get() }
        #expect(harness.server.requestCounts["GET", default: 0] <= 3)
    }

    @Test("a pending record's status carries the attempts, the last error and the next retry time")
    func pendingStatusDetails() async throws {
        let harness = try await SyncHarness.start(
            retry: RetryPolicy(initialDelay: 30, maximumDelay: 30, jitter: 0))
        defer { Task { await harness.server.stop() } }
        let user = try await harness.store.users.save(User(name: "Ada", email: "ada@example.com"))
        harness.server.setFaults(FaultPlan(script: [.status(503)]))
        let before = Date()
        try await harness.engine.push(waitForRetries: false)
        guard
            case .pending(let attempts, let lastError, let nextAttempt) = try await harness.store.users.syncStatus(
                of: user.id)
        else {
            Issue.record("expected pending")
            return
        }
        #expect(attempts == 1)
        #expect(lastError?.contains("503") == true, "\(String(describing: lastError))")
        let next = try #require(nextAttempt)
        #expect(next > before.addingTimeInterval(25) && next < Date().addingTimeInterval(31))
    }

    @Test("an update answered 404 for a record deleted here since is dropped, and the delete goes through")
    func updateOfRecordDeletedOnBothSides() async throws {
        // The failed update is retried 2 s later: not within the first push, even on a loaded machine.
        let harness = try await SyncHarness.start(retry: RetryPolicy(initialDelay: 2, maximumDelay: 2, jitter: 0))
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 0)
        try await harness.engine.push()
        let thread = try #require(try await harness.store.threads.find(chat.thread.id))
        var draft = try await harness.store.drafts.save(Draft(body: "v1", threadId: thread.id))
        try await harness.engine.push()
        // The update fails once (it will be retried), another client deletes the thread on the
        // server (its drafts go with it), and this device deletes the draft too.
        draft.body = "v2"
        try await harness.store.drafts.save(draft)
        harness.server.setFaults(FaultPlan(script: [.status(503)]))
        try await harness.engine.push(waitForRetries: false)
        try await harness.server.delete(in: ChatThread.self, id: thread.id.rawValue)
        try await harness.store.drafts.delete(draft.id)

        let report = try await harness.engine.push()
        #expect(report.failed == 0)
        #expect(try await harness.store.outbox.entries().isEmpty)
    }

    @Test("observers of a table see the answers of a push in batches, not one change per record")
    func observersSeeBatches() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 0)
        try await harness.engine.push()
        try await harness.store.write { tx in
            for index in 0..<300 { try tx.save(Message(role: .user, body: "m\(index)", threadId: chat.thread.id)) }
        }
        let changes = Mutex(0)
        let observation = Task {
            for try await _ in harness.store.outbox.observeCounts() { changes.withLock { $0 += 1 } }
        }
        try await Task.sleep(for: .milliseconds(100))
        let baseline = changes.withLock { $0 }
        let report = try await harness.engine.push()
        #expect(report.sent == 300)
        try await Task.sleep(for: .milliseconds(200))
        observation.cancel()
        let seen = changes.withLock { $0 } - baseline
        // 300 answers, at most 64 per transaction, plus the claims: far fewer than 300 changes.
        #expect(seen <= 20, "observers saw \(seen) changes for 300 answers")
    }
}
