import ChatModels
import Foundation
import ModelSync
import Testing

/// Batches and units against the reference server and the generated server on PostgreSQL (issue 14).
@Suite("Batches and units against both servers")
struct BatchServerTests {
    /// A user and an artifact synced, then, offline, a thread, its first message and the link to the
    /// artifact saved as one unit; `email` is the unit's own new user's, when given (the thread is
    /// then hers).
    private static func saveUnit(in store: SyncStore, engine: SyncEngine, newOwnerEmail: String? = nil) async throws
        -> ChatThread
    {
        let (user, artifact) = try await store.write { tx in
            (
                try tx.save(User(name: "Ada", email: "ada@example.com")),
                try tx.save(Artifact(title: "Plan", kind: "doc"))
            )
        }
        #expect(try await engine.push().failed == 0)
        return try await store.writeAsOneUnit { tx in
            let owner = try newOwnerEmail.map { try tx.save(User(name: "New", email: $0)) } ?? user
            let thread = try tx.save(
                ChatThread(title: "About the plan", createdAt: Date(), tags: [], ownerId: owner.id))
            try tx.save(Message(role: .user, body: "Have a look", threadId: thread.id))
            try tx.save(ThreadArtifact(relation: .referenced, threadId: thread.id, artifactId: artifact.id))
            return thread
        }
    }

    /// A user created by another client.
    private static func createUser(email: String, on backend: Backend) async throws {
        let answer = try await backend.otherClient.send(
            "POST", "/users", .object(["id": .string("usr_other"), "name": .string("Other"), "email": .string(email)]))
        #expect(answer.status == 201)
    }

    @Test(
        "a unit whose answer is lost is sent again and applied once: one thread, not two",
        arguments: ServerKind.allCases)
    func lostUnitAnswer(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind, batches: true)
        defer { Task { await backend.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = backend.makeEngine(store: store)
        let thread = try await Self.saveUnit(in: store, engine: engine)
        backend.proxy.dropResponses(method: "POST", pathPrefix: "/_modelsync/batch")

        let report = try await engine.push()
        #expect(backend.proxy.droppedCount == 1)
        #expect(report.retried == 3)
        #expect(report.sent == 3)
        #expect(report.failed == 0)
        let server = backend.otherClient
        let threads = try await server.records("/threads")
        #expect(threads.count == 1)
        #expect(try await server.records("/messages").count == 1)
        #expect(try await server.records("/thread_artifacts").count == 1)
        let synced = try #require(try await store.threads.find(thread.id))
        #expect(threads[synced.id.rawValue] != nil)
        #expect(try await server.records("/messages").values.first?["thread_id"]?.idString == synced.id.rawValue)
    }

    @Test(
        "a unit one of whose changes the server refuses applies nothing and fails whole", arguments: ServerKind.allCases
    )
    func refusedUnit(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind, batches: true)
        defer { Task { await backend.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = backend.makeEngine(store: store)
        try await Self.createUser(email: "taken@example.com", on: backend)
        // The unit's new user has another user's email: the server refuses her (unique), so nothing of
        // the unit stands.
        let thread = try await Self.saveUnit(in: store, engine: engine, newOwnerEmail: "taken@example.com")

        let report = try await engine.push()
        #expect(report.failed == 4)
        #expect(report.sent == 0)
        let server = backend.otherClient
        #expect(try await server.records("/users").count == 2)
        #expect(try await server.records("/threads").isEmpty)
        #expect(try await server.records("/messages").isEmpty)
        #expect(try await server.records("/thread_artifacts").isEmpty)
        guard case .failed(let reason) = try await store.threads.syncStatus(of: thread.id) else {
            Issue.record("the thread should have failed with its unit")
            return
        }
        #expect(reason.contains("not applied"))
        #expect(reason.contains("email"))
    }

    @Test(
        "a refused operation fails alone with what depends on it; the rest of its batch is applied",
        arguments: ServerKind.allCases)
    func oneFailingOperation(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind, batches: true)
        defer { Task { await backend.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = backend.makeEngine(store: store)
        try await Self.createUser(email: "taken@example.com", on: backend)
        let chat = try await makeChat(in: store, messageCount: 2, email: "taken@example.com")
        let grace = try await store.users.save(User(name: "Grace", email: "grace@example.com"))

        let report = try await engine.push()
        #expect(report.failed == 1)
        #expect(report.sent == 3)
        guard case .failed = try await store.users.syncStatus(of: chat.user.id) else {
            Issue.record("Ada's create should have failed")
            return
        }
        #expect(try await store.threads.syncStatus(of: chat.thread.id).isPending)
        #expect(try await store.users.syncStatus(of: grace.id) == .synced)
        let server = backend.otherClient
        #expect(try await server.records("/users").count == 2)
        #expect(try await server.records("/artifacts").count == 2)
        #expect(try await server.records("/threads").isEmpty)
    }

    @Test(
        "a create sent alone whose answer was lost, then in a batch with its key, is applied once",
        arguments: ServerKind.allCases)
    func createAloneThenInBatch(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind, batches: true)
        defer { Task { await backend.stop() } }
        let server = backend.otherClient
        // RESTRemote serialises a body the same way alone and inside a batch (sorted keys, no spaces).
        let body: JSONValue = .object([
            "id": .string("art_1"), "kind": .string("doc"), "title": .string("Plan \u{e9} 1.50"),
        ])
        let alone = try await server.send("POST", "/artifacts", body, headers: ["Idempotency-Key": "k-alone"])
        #expect(alone.status == 201)
        let batch: JSONValue = .object([
            "atomic": .bool(false),
            "operations": .array([
                .object([
                    "method": .string("POST"), "path": .string("/artifacts"), "idempotency_key": .string("k-alone"),
                    "body": body,
                ])
            ]),
        ])
        let answer = try await server.send("POST", "/_modelsync/batch", batch)
        #expect(answer.status == 200)
        let result = answer.object["results"]?.arrayValue?.first?.objectValue
        #expect(result?["status"]?.idString == "201", "\(answer.text)")
        #expect(result?["body"]?.objectValue?["id"] == .string("art_1"))
        #expect(try await server.records("/artifacts").count == 1)
    }

    @Test(
        "an operation that references a failed create of its batch fails with 424; the others are applied",
        arguments: ServerKind.allCases)
    func referenceToFailedOperation(kind: ServerKind) async throws {
        let (backend, server) = try await Backend.startForBatches(kind)
        defer { Task { await backend.stop() } }
        let capabilities = try await server.send("GET", "/_modelsync")
        #expect(capabilities.status == 200)
        #expect(capabilities.object["batch"]?.objectValue?["path"] == .string("/_modelsync/batch"))
        let now = JSONValue.string(RESTRemote.iso8601(Date()))
        let batch: JSONValue = .object([
            "atomic": .bool(false),
            "operations": .array([
                // Refused: the owner does not exist.
                .object([
                    "method": .string("POST"), "path": .string("/threads"), "idempotency_key": .string("k1"),
                    "body": .object([
                        "title": .string("t"), "created_at": now, "tags": .array([]), "owner_id": .string("usr_none"),
                    ]),
                ]),
                // Its message takes the thread's ID: fails with it.
                .object([
                    "method": .string("POST"), "path": .string("/messages"), "idempotency_key": .string("k2"),
                    "body": .object(["role": .string("user"), "body": .string("hi"), "thread_id": .null]),
                    "refs": .object(["thread_id": .integer(0)]),
                ]),
                // Unrelated: applied.
                .object([
                    "method": .string("POST"), "path": .string("/threads"), "idempotency_key": .string("k3"),
                    "body": .object([
                        "title": .string("u"), "created_at": now, "tags": .array([]), "owner_id": .string("usr_1"),
                    ]),
                ]),
            ]),
        ])
        let answer = try await server.send("POST", "/_modelsync/batch", batch)
        #expect(answer.status == 200)
        let results = answer.object["results"]?.arrayValue ?? []
        let statuses = results.map { $0.objectValue?["status"]?.idString ?? "?" }
        #expect(statuses == ["422", "424", "201"])
        let threads = try await server.records("/threads")
        #expect(threads.count == 1)
        #expect(threads.values.first?["title"] == .string("u"))
        #expect(try await server.records("/messages").isEmpty)
    }
}
