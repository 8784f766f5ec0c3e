import ChatModels
import Foundation
@_spi(OutboxInternals) import ModelSync
import Testing

/// One sync suite, run against the in-memory reference server and the generated server on
/// PostgreSQL: both keep the protocol the client relies on (Docs/Protocol.md).
@Suite("End-to-end sync against the reference server and the generated server")
struct EndToEndSyncTests {
    @Test(
        "the chat created offline syncs: one server copy each, children after parents, IDs replaced",
        arguments: ServerKind.allCases)
    func chatScenario(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind)
        defer { Task { await backend.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = backend.makeEngine(store: store)
        let chat = try await makeChat(in: store, messageCount: 3)

        let report = try await engine.push()
        #expect(report.sent == 9)
        #expect(report.failed == 0)
        #expect(try await store.outbox.entries().isEmpty)

        let server = backend.otherClient
        let threads = try await server.records("/threads")
        let messages = try await server.records("/messages")
        #expect(threads.count == 1)
        #expect(messages.count == 3)
        #expect(try await server.records("/users").count == 1)
        #expect(try await server.records("/artifacts").count == 2)
        #expect(try await server.records("/thread_artifacts").count == 2)

        let thread = try #require(try await store.threads.all().first)
        #expect(!thread.id.isTemporary)
        #expect(threads[thread.id.rawValue]?["id"] == .integer(Int64(thread.id.rawValue)!))
        #expect(threads[thread.id.rawValue]?["created_at"] == .string(RESTRemote.iso8601(chat.thread.createdAt)))
        for message in try await store.messages.all() {
            #expect(!message.id.isTemporary)
            let serverMessage = try #require(messages[message.id.rawValue])
            #expect(serverMessage["thread_id"] == .integer(Int64(thread.id.rawValue)!))
            #expect(serverMessage["reply_to_id"]?.idString == message.replyToId?.rawValue)
        }
        #expect(try await store.threads.find(chat.thread.id)?.id == thread.id)
    }

    @Test(
        "a create answer lost after the server committed is retried with its key: no duplicate",
        arguments: ServerKind.allCases)
    func lostCreateResponse(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind)
        defer { Task { await backend.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = backend.makeEngine(store: store)
        let chat = try await makeChat(in: store, messageCount: 1)
        backend.proxy.dropResponses(method: "POST", pathPrefix: "/threads")

        let report = try await engine.push()
        #expect(backend.proxy.droppedCount == 1)
        #expect(report.failed == 0)
        #expect(report.retried >= 1)
        let threads = try await backend.otherClient.records("/threads")
        #expect(threads.count == 1)
        let thread = try #require(try await store.threads.find(chat.thread.id))
        #expect(threads[thread.id.rawValue] != nil)
        #expect(try await backend.otherClient.records("/messages").count == 1)
    }

    @Test(
        "an app that died after the server stored its create converges after restart, without a duplicate",
        arguments: ServerKind.allCases)
    func clientRestart(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind)
        defer { Task { await backend.stop() } }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")

        // The app that dies: sends the user and the thread as an engine would, records only the user's answer.
        let chat: (user: User, thread: ChatThread, messages: [Message], artifacts: [Artifact])
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            chat = try await makeChat(in: store, messageCount: 1)
            let remote = backend.makeRemote()
            let userEntry = try #require(
                try await store.outbox.claimReadyEntries(limit: 10).first { $0.tableName == "user" })
            _ = try await remote.create(
                try JSONValue.parse(Data(userEntry.payload!.utf8)).objectValue!, of: User.schema,
                idempotencyKey: try #require(userEntry.idempotencyKey))
            try await store.outbox.markSucceeded(userEntry)
            let threadEntry = try #require(
                try await store.outbox.claimReadyEntries(limit: 10).first { $0.tableName == "thread" })
            _ = try await remote.create(
                try JSONValue.parse(Data(threadEntry.payload!.utf8)).objectValue!, of: ChatThread.schema,
                idempotencyKey: try #require(threadEntry.idempotencyKey))
        }

        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        let report = try await backend.makeEngine(store: reopened).push()
        #expect(report.failed == 0)
        let threads = try await backend.otherClient.records("/threads")
        #expect(threads.count == 1)
        let thread = try #require(try await reopened.threads.find(chat.thread.id))
        #expect(threads[thread.id.rawValue] != nil)
        #expect(try await backend.otherClient.records("/messages").count == 1)
    }

    @Test(
        "a 4xx (unique email) fails that record with the server's message naming the field; the rest syncs",
        arguments: ServerKind.allCases)
    func permanentFailure(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind)
        defer { Task { await backend.stop() } }
        let seeded = try await backend.otherClient.send(
            "POST", "/users",
            .object(["id": .string("usr_other"), "name": .string("Other"), "email": .string("taken@example.com")]),
            headers: ["Idempotency-Key": "seed-1"])
        #expect(seeded.status == 201)
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = backend.makeEngine(store: store)
        let rejected = try await store.users.save(User(name: "Eve", email: "taken@example.com"))
        let chat = try await makeChat(in: store, messageCount: 1, email: "ada@example.com")

        let report = try await engine.push()
        #expect(report.failed == 1)
        let status = try await store.users.syncStatus(of: rejected.id)
        guard case .failed(let reason) = status else {
            Issue.record("expected failed, got \(status)")
            return
        }
        #expect(reason.contains("422"))
        #expect(reason.contains("email"))
        #expect(try await store.users.syncStatus(of: chat.user.id) == .synced)
        #expect(try await backend.otherClient.records("/messages").count == 1)
    }

    @Test(
        "pull merges remote changes, applies remote deletes, keeps pending local edits", arguments: ServerKind.allCases)
    func pullMerges(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind)
        defer { Task { await backend.stop() } }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = backend.makeEngine(store: store)
        _ = try await makeChat(in: store, messageCount: 2)
        try await engine.push()
        let thread = try #require(try await store.threads.all().first)
        let messages = try await store.messages.all()
        let other = backend.otherClient

        var serverThread = try #require(try await other.records("/threads")[thread.id.rawValue])
        serverThread["title"] = .string("Renamed on the server")
        #expect(try await other.send("PUT", "/threads/\(thread.id.rawValue)", .object(serverThread)).status == 200)
        var serverMessage = try #require(try await other.records("/messages")[messages[0].id.rawValue])
        serverMessage["body"] = .string("edited on the server")
        #expect(
            try await other.send("PUT", "/messages/\(messages[0].id.rawValue)", .object(serverMessage)).status == 200)
        #expect(try await other.send("DELETE", "/messages/\(messages[1].id.rawValue)").status == 204)
        let added = try await other.send(
            "POST", "/messages",
            .object([
                "role": .string("assistant"), "body": .string("from elsewhere"),
                "thread_id": .integer(Int64(thread.id.rawValue)!),
            ]),
            headers: ["Idempotency-Key": "other-1"])
        #expect(added.status == 201)

        var local = thread
        local.title = "Renamed locally"
        try await store.threads.save(local)

        let threadReport = try await engine.pull(ChatThread.self)
        let messageReport = try await engine.pull(Message.self)
        #expect(threadReport.keptLocal == 1)
        #expect(try await store.threads.find(thread.id)?.title == "Renamed locally")
        #expect(messageReport.updated == 1)
        #expect(messageReport.deleted == 1)
        #expect(messageReport.inserted == 1)
        #expect(try await store.messages.find(messages[0].id)?.body == "edited on the server")
        #expect(try await store.messages.find(messages[1].id) == nil)
        #expect(try await store.messages.find(Message.ID(added.object["id"]!.idString!))?.body == "from elsewhere")
        #expect(try await engine.pull(Message.self) == PullReport())
        try await engine.push()
        #expect(try await other.records("/threads")[thread.id.rawValue]?["title"] == .string("Renamed locally"))
    }

    @Test(
        "a stale update gets a 409 with the server's copy and the ConflictPolicy decides",
        arguments: ServerKind.allCases)
    func staleUpdateConflict(kind: ServerKind) async throws {
        for policy in ["keep local", "accept remote"] {
            let backend = try await Backend.start(kind)
            defer { Task { await backend.stop() } }
            let store = try SyncStore(.inMemory, models: GeneratedModels.all)
            let engine = backend.makeEngine(
                store: store, conflictPolicy: policy == "keep local" ? .keepLocalChanges : .acceptRemote)
            var user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
            try await engine.push()
            var elsewhere = try #require(try await backend.otherClient.records("/users")[user.id.rawValue])
            elsewhere["name"] = .string("renamed elsewhere")
            #expect(
                try await backend.otherClient.send("PUT", "/users/\(user.id.rawValue)", .object(elsewhere)).status
                    == 200)
            user.name = "renamed here"
            try await store.users.save(user)

            let report = try await engine.push()
            #expect(report.conflicts == 1, "\(policy)")
            let expected = policy == "keep local" ? "renamed here" : "renamed elsewhere"
            #expect(try await backend.otherClient.records("/users")[user.id.rawValue]?["name"] == .string(expected))
            #expect(try await store.users.find(user.id)?.name == expected)
            #expect(try await store.outbox.entries().isEmpty)
        }
    }
}
