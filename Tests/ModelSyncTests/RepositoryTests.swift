import ChatModels
import Foundation
import GRDB
import ModelSync
import Testing

@Suite("Repositories: save, find, query, delete, observe, relationships")
struct RepositoryTests {
    @Test("an ID that is empty or holds a NUL is refused at save time, naming the model and the field")
    func invalidIDsAreRefused() async throws {
        let store = try makeStore()
        for id in ["", "usr_a\u{0}b"] {
            await #expect(throws: ModelSyncError.self) {
                try await store.users.save(User(id: User.ID(id), name: "Ada", email: "ada\(id.count)@example.com"))
            }
            do {
                try await store.users.save(User(id: User.ID(id), name: "Ada", email: "ada\(id.count)@example.com"))
            } catch let error as ModelSyncError {
                #expect(error.description.contains("User.id"), "\(error)")
            }
        }
        #expect(try await store.users.count() == 0)
        #expect(try await store.outbox.entries().isEmpty)
    }

    @Test("a saved record reads back equal, and an update replaces it")
    func saveAndFind() async throws {
        let store = try makeStore()
        var user = try await store.users.save(User(name: "Ada", email: "ada@example.com", bio: nil))
        #expect(try await store.users.find(user.id) == user)

        user.bio = "Mathematician"
        try await store.users.save(user)
        #expect(try await store.users.find(user.id)?.bio == "Mathematician")
        #expect(try await store.users.count() == 1)
        #expect(try await store.users.find("usr_missing") == nil)
    }

    @Test("every scalar kind round-trips: dates exactly, arrays as JSON, enums as text")
    func roundTrip() async throws {
        let store = try makeStore()
        let user = try await store.users.save(User(name: "Ada", email: "a@example.com"))
        let date = Date(timeIntervalSinceReferenceDate: 812_345_678.987_654)
        let thread = try await store.threads.save(
            ChatThread(title: "Ünïcode ✓ 'quotes'", createdAt: date, tags: ["a", "b,c", "\"d\""], ownerId: user.id))
        let stored = try #require(try await store.threads.find(thread.id))
        #expect(stored == thread)
        #expect(stored.createdAt == date)
        #expect(stored.title == "Ünïcode ✓ 'quotes'")
        let message = try await store.messages.save(Message(role: .assistant, body: "", threadId: thread.id))
        #expect(try await store.messages.find(message.id)?.role == .assistant)
        let rawRole = try await store.read { db in
            try String.fetchOne(db, sql: "SELECT role FROM message WHERE id = ?", arguments: [message.id.rawValue])
        }
        #expect(rawRole == "assistant")
    }

    @Test("a spec default applies when the initializer omits the field")
    func specDefault() {
        let thread = ChatThread(createdAt: fixedDate, tags: [], ownerId: "usr_1")
        #expect(thread.title == "New Chat")
    }

    @Test("all, query and count see the saved records")
    func queries() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 5)
        #expect(try await store.messages.all().map(\.id) == fixture.messages.map(\.id))
        let second = try await store.messages.query(Message.filter(Message.Columns.body == "message 1"))
        #expect(second.map(\.id) == [fixture.messages[1].id])
        let replies = try await store.messages.query(Message.filter(Message.Columns.replyToId != nil))
        #expect(replies.count == 4)
    }

    @Test("a batch save stores every record in one transaction")
    func batchSave() async throws {
        let store = try makeStore()
        let users = (0..<100).map { User(name: "u\($0)", email: "u\($0)@example.com") }
        let saved = try await store.users.save(users)
        #expect(saved == users)
        #expect(try await store.users.count() == 100)
        #expect(try await store.outbox.entries().count == 100)
    }

    @Test("a save that fails midway leaves neither rows nor outbox entries")
    func failedSaveRollsBack() async throws {
        let store = try makeStore()
        let existing = try await store.users.save(User(name: "Ada", email: "taken@example.com"))
        let batch = [
            User(name: "Bob", email: "bob@example.com"),
            User(name: "Eve", email: "taken@example.com"),  // violates the unique email
        ]
        await #expect(throws: DatabaseError.self) { try await store.users.save(batch) }
        #expect(try await store.users.all() == [existing])
        #expect(try await outboxSummary(store) == ["user create \(existing.id)"])

        // A transaction that throws after saving also leaves nothing behind.
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await store.write { tx in
                try tx.save(User(name: "Carl", email: "carl@example.com"))
                throw Abort()
            }
        }
        #expect(try await store.users.count() == 1)
        #expect(try await store.outbox.entries().count == 1)
    }

    @Test("a saved record whose parent does not exist is refused")
    func missingParent() async throws {
        let store = try makeStore()
        await #expect(throws: DatabaseError.self) {
            try await store.threads.save(ChatThread(createdAt: fixedDate, tags: [], ownerId: "usr_nobody"))
        }
        #expect(try await store.threads.count() == 0)
        #expect(try await store.outbox.entries().isEmpty)
    }

    @Test("changes() delivers created, updated and deleted after commit, and nothing for a rollback")
    func changeStream() async throws {
        let store = try makeStore()
        let changes = store.users.changes()
        var user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        struct Abort: Error {}
        _ = try? await store.write { tx in
            try tx.save(User(name: "Ghost", email: "ghost@example.com"))
            throw Abort()
        }
        user.name = "Ada L."
        try await store.users.save(user)
        try await store.users.delete(user.id)

        let events = try await collect(3, from: changes)
        guard case .created(let created) = events[0], case .updated(let updated) = events[1],
            case .deleted(let deletedID) = events[2]
        else {
            Issue.record("unexpected events \(events)")
            return
        }
        #expect(created.name == "Ada")
        #expect(updated.name == "Ada L.")
        #expect(deletedID == user.id)
    }

    @Test("observeAll yields the current records and every committed change")
    func observeAll() async throws {
        let store = try makeStore()
        let observation = store.users.observeAll()
        let first = try await collect(1, from: observation)
        #expect(first == [[]])
        let stream = store.users.observeAll()
        try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        let value = try await firstElement(of: stream) { !$0.isEmpty }
        #expect(value?.map(\.name) == ["Ada"])
    }

    @Test("belongsTo, hasMany, hasOne and manyToMany resolvers, both ways")
    func relationships() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 3)
        let otherThread = try await store.threads.save(
            ChatThread(createdAt: fixedDate, tags: [], ownerId: fixture.user.id))
        let (spec, notes) = (Artifact(title: "Spec", kind: "doc"), Artifact(title: "Notes", kind: "doc"))
        try await store.write { tx in
            try tx.save([spec, notes])
            try tx.save(ThreadArtifact(relation: .created, threadId: fixture.thread.id, artifactId: spec.id))
            try tx.save(ThreadArtifact(relation: .referenced, threadId: fixture.thread.id, artifactId: notes.id))
            try tx.save(ThreadArtifact(relation: .referenced, threadId: otherThread.id, artifactId: notes.id))
            try tx.save(Draft(body: "unsent", threadId: fixture.thread.id))
        }

        #expect(try await fixture.thread.owner(in: store) == fixture.user)
        #expect(try await fixture.thread.messages(in: store).map(\.id) == fixture.messages.map(\.id))
        #expect(try await otherThread.messages(in: store).isEmpty)
        #expect(try await fixture.messages[0].thread(in: store)?.id == fixture.thread.id)
        #expect(try await fixture.messages[1].replyTo(in: store)?.id == fixture.messages[0].id)
        #expect(try await fixture.messages[0].replyTo(in: store) == nil)
        #expect(try await fixture.thread.draft(in: store)?.body == "unsent")
        #expect(try await otherThread.draft(in: store) == nil)
        #expect(try await fixture.thread.artifacts(in: store).map(\.title) == ["Spec", "Notes"])
        #expect(try await otherThread.artifacts(in: store).map(\.title) == ["Notes"])
        #expect(try await notes.threads(in: store).map(\.id) == [fixture.thread.id, otherThread.id])
        #expect(try await spec.threads(in: store).map(\.id) == [fixture.thread.id])
    }

    @Test("related records read together in one snapshot, by relationship reads and by GRDB associations")
    func relationshipsInOneSnapshot() async throws {
        let store = try makeStore()
        let fixture = try await ChatFixture.make(in: store, messageCount: 3)
        let artifact = Artifact(title: "Spec", kind: "doc")
        try await store.write { tx in
            try tx.save(artifact)
            try tx.save(ThreadArtifact(relation: .created, threadId: fixture.thread.id, artifactId: artifact.id))
            try tx.save(Draft(body: "unsent", threadId: fixture.thread.id))
        }
        // The server's ID replaces the thread's temporary ID: the copy held here is stale, and its
        // relationship reads follow the replacement.
        let stale = fixture.thread
        try await store.threads.replaceTemporaryID(stale.id, with: "7")

        struct Snapshot: Equatable {
            var owner: String?
            var messages: [String]
            var draft: String?
            var artifacts: [String]
        }
        let snapshot = try await store.read { db in
            Snapshot(
                owner: try stale.owner(db)?.name, messages: try stale.messages(db).map(\.body),
                draft: try stale.draft(db)?.body, artifacts: try stale.artifacts(db).map(\.title))
        }
        #expect(
            snapshot
                == Snapshot(
                    owner: fixture.user.name, messages: fixture.messages.map(\.body), draft: "unsent",
                    artifacts: ["Spec"]))

        // The generated associations: one request reads each thread with its owner and messages.
        struct ThreadWithMessages: FetchableRecord, Decodable {
            var thread: ChatThread
            var owner: User
            var messages: [Message]
        }
        let rows = try await store.read { db in
            try ChatThread.including(required: ChatThread.owner).including(all: ChatThread.messages)
                .asRequest(of: ThreadWithMessages.self).fetchAll(db)
        }
        #expect(rows.map(\.thread.id) == ["7"])
        #expect(rows.first?.owner == fixture.user)
        #expect(Set(rows.first?.messages.map(\.id) ?? []) == Set(fixture.messages.map(\.id)))
        let linked = try await store.read { db in
            try ChatThread.joining(required: ChatThread.artifacts.filter(Column("title") == "Spec")).fetchCount(db)
        }
        #expect(linked == 1)
    }

    @Test("a model not given to the store is refused with a clear error")
    func unregisteredModel() async throws {
        let store = try SyncStore(.inMemory, models: [User.self])
        let error = await #expect(throws: ModelSyncError.self) {
            try await store.artifacts.save(Artifact(title: "x", kind: "y"))
        }
        #expect(error?.description.contains("GeneratedModels.all") == true)
    }
}
