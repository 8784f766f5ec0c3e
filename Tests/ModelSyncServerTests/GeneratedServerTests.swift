import Foundation
import ModelSync
import ModelSyncServer
import Testing

/// The generated chat server against a real PostgreSQL cluster: what the protocol asks of a server.
@Suite("Generated server on PostgreSQL")
struct GeneratedServerTests {
    static func client(_ server: GeneratedServer, tenant: String = "acme", subject: String = "ada") async throws
        -> ProtocolClient
    {
        ProtocolClient(
            baseURL: server.url,
            headers: ["Authorization": "Bearer " + (try await token(tenant: tenant, subject: subject))])
    }

    static let user: JSONValue = .object([
        "id": .string("usr_1"), "name": .string("Ada"), "email": .string("ada@example.com"),
    ])

    static func thread(title: String = "Trip", owner: String = "usr_1") -> JSONValue {
        .object([
            "title": .string(title), "created_at": .string("2026-11-22T19:02:50.123456789Z"),
            "tags": .array([.string("a")]),
            "owner_id": .string(owner),
        ])
    }

    @Test("a repeated create gets the first answer after a server restart and from a second server process")
    func idempotencyAcrossRestartAndInstances() async throws {
        let first = try await GeneratedServer.start()
        let database = first.databaseURL
        var api = try await Self.client(first)
        #expect(try await api.send("POST", "/users", Self.user, headers: ["Idempotency-Key": "u1"]).status == 201)
        let created = try await api.send("POST", "/threads", Self.thread(), headers: ["Idempotency-Key": "t1"])
        #expect(created.status == 201)
        await first.stop()

        let restarted = try await GeneratedServer.start(databaseURL: database)
        api = try await Self.client(restarted)
        let replay = try await api.send("POST", "/threads", Self.thread(), headers: ["Idempotency-Key": "t1"])
        #expect(replay.status == 201)
        #expect(replay.object == created.object)

        // Two processes on one database, the same create sent to both at once, several times.
        let second = try await GeneratedServer.start(databaseURL: database)
        let secondAPI = try await Self.client(second)
        let answers = try await withThrowingTaskGroup(of: ProtocolClient.Answer.self) { group in
            for index in 0..<8 {
                let target = index.isMultiple(of: 2) ? api : secondAPI
                group.addTask {
                    try await target.send(
                        "POST", "/threads", Self.thread(title: "Both"), headers: ["Idempotency-Key": "t2"])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.status == 201 })
        #expect(Set(answers.map { $0.object["id"] }).count == 1)
        #expect(try await api.records("/threads").count == 2)
        await restarted.stop()
        await second.stop()
    }

    @Test("the same Idempotency-Key with another body is a 422; another key is another record")
    func keyReuseWithAnotherBody() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let api = try await Self.client(server)
        #expect(try await api.send("POST", "/users", Self.user, headers: ["Idempotency-Key": "u1"]).status == 201)
        #expect(try await api.send("POST", "/threads", Self.thread(), headers: ["Idempotency-Key": "k"]).status == 201)
        let reused = try await api.send(
            "POST", "/threads", Self.thread(title: "Other"), headers: ["Idempotency-Key": "k"])
        #expect(reused.status == 422)
        #expect(reused.error.contains("Idempotency-Key 'k' was already used"))
        #expect(
            try await api.send("POST", "/threads", Self.thread(title: "Other"), headers: ["Idempotency-Key": "k2"])
                .status == 201)
        #expect(try await api.records("/threads").count == 2)
    }

    @Test("foreign-key and unique violations are 422 JSON naming the field")
    func constraintViolationsNameTheField() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let api = try await Self.client(server)
        #expect(try await api.send("POST", "/users", Self.user).status == 201)
        let unknownOwner = try await api.send("POST", "/threads", Self.thread(owner: "usr_missing"))
        #expect(unknownOwner.status == 422)
        #expect(unknownOwner.error == "'owner_id' references an unknown user; create the user first")
        let duplicate = try await api.send(
            "POST", "/users",
            .object(["id": .string("usr_2"), "name": .string("B"), "email": .string("ada@example.com")]))
        #expect(duplicate.status == 422)
        #expect(duplicate.error.contains("'email' must be unique"))
        let badEnum = try await api.send(
            "POST", "/messages", .object(["role": .string("robot"), "body": .string("x"), "thread_id": .integer(1)]))
        #expect(badEnum.status == 422)
        #expect(badEnum.error.contains("'role' must be one of"))
        let badDate = try await api.send(
            "POST", "/threads",
            .object([
                "title": .string("t"), "created_at": .string("yesterday"), "tags": .array([]),
                "owner_id": .string("usr_1"),
            ]))
        #expect(badDate.status == 422)
        #expect(badDate.error.contains("'created_at' must be an ISO 8601 date-time"))
        let wrongType = try await api.send(
            "POST", "/threads",
            .object(["title": .integer(5), "created_at": .string("2026-01-01T00:00:00Z"), "tags": .array([])]))
        #expect(wrongType.status == 422)
        #expect(wrongType.error == "'title' must be a string, got a number; 'owner_id' is required")
        let malformed = try await api.sendRaw("POST", "/users", body: Data("{\"id\": ".utf8))
        #expect(malformed.status == 400)
        #expect(malformed.error.contains("not valid JSON"))
        let unknownPath = try await api.send("GET", "/nowhere")
        #expect(unknownPath.status == 404)
        #expect(unknownPath.error.contains("/nowhere"))
        // A delete refused by `restrict` (a thread-artifact link still references the artifact).
        let thread = try await api.send("POST", "/threads", Self.thread())
        #expect(
            try await api.send(
                "POST", "/artifacts", .object(["id": .string("a1"), "title": .string("P"), "kind": .string("doc")])
            ).status == 201)
        #expect(
            try await api.send(
                "POST", "/thread_artifacts",
                .object([
                    "id": .string("l1"), "relation": .string("created"), "thread_id": thread.object["id"]!,
                    "artifact_id": .string("a1"),
                ])
            ).status == 201)
        let refused = try await api.send("DELETE", "/artifacts/a1")
        #expect(refused.status == 409)
        #expect(refused.error.contains("thread_artifact records still reference it (artifact_id)"))
    }

    @Test("deletes leave tombstones in cursor listings; PUT to a missing ID is 404, never a re-create")
    func tombstonesAndMissingRecords() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let api = try await Self.client(server)
        #expect(try await api.send("POST", "/users", Self.user).status == 201)
        let thread = try await api.send("POST", "/threads", Self.thread())
        let id = try #require(thread.object["id"]?.idString)
        let message = try await api.send(
            "POST", "/messages",
            .object(["role": .string("user"), "body": .string("hi"), "thread_id": thread.object["id"]!]))
        #expect(message.status == 201)
        let first = try await api.send("GET", "/threads")
        let cursor = try #require(
            first.object["next_cursor"].flatMap { if case .string(let text) = $0 { text } else { nil } })

        #expect(try await api.send("DELETE", "/threads/\(id)").status == 204)
        #expect(try await api.send("GET", "/threads/\(id)").status == 404)
        #expect(try await api.send("DELETE", "/threads/\(id)").status == 404)
        let put = try await api.send("PUT", "/threads/\(id)", Self.thread())
        #expect(put.status == 404)
        #expect(try await api.records("/threads").isEmpty)

        let changes = try await api.send("GET", "/threads?cursor=\(cursor)")
        #expect(changes.object["data"] == .array([.object(["id": thread.object["id"]!, "deleted": .bool(true)])]))
        // The cascade reached the message: its tombstone is listed too.
        let messageChanges = try await api.send("GET", "/messages?cursor=0-0")
        #expect(
            messageChanges.object["data"] == .array([.object(["id": message.object["id"]!, "deleted": .bool(true)])]))
    }

    @Test("ID types: bigint server IDs, text server IDs, client IDs kept; an ID of the wrong type is a 404")
    func idTypes() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let api = try await Self.client(server)
        let user = try await api.send("POST", "/users", Self.user)
        #expect(user.object["id"] == .string("usr_1"))
        #expect(user.object["_version"] == .integer(1))
        let thread = try await api.send("POST", "/threads", Self.thread(), headers: ["Idempotency-Key": "key-1"])
        guard case .integer(let threadID)? = thread.object["id"] else {
            Issue.record("a thread's id must be a JSON integer: \(thread.text)")
            return
        }
        #expect(thread.object["_idempotency_key"] == .string("key-1"))
        #expect(thread.object["created_at"] == .string("2026-11-22T19:02:50.123456789Z"))
        let message = try await api.send(
            "POST", "/messages",
            .object(["role": .string("user"), "body": .string("hi"), "thread_id": .integer(threadID)]))
        guard case .string(let messageID)? = message.object["id"] else {
            Issue.record("a message's id must be a JSON string: \(message.text)")
            return
        }
        #expect(!messageID.isEmpty)
        #expect(try await api.send("GET", "/threads/abc").status == 404)
        #expect(try await api.send("GET", "/threads/0\(threadID)").object["id"] == .integer(threadID))
        let noID = try await api.send("POST", "/users", .object(["name": .string("x"), "email": .string("x@y")]))
        #expect(noID.status == 422)
        #expect(noID.error.contains("'id' is required"))
        let stringThreadRef = try await api.send(
            "POST", "/messages",
            .object(["role": .string("user"), "body": .string("hi"), "thread_id": .string("\(threadID)")]))
        #expect(stringThreadRef.status == 422)
        #expect(stringThreadRef.error.contains("'thread_id' must be an integer ID"))
    }

    @Test("values come back exactly: far dates with every digit, decimals, doubles, arrays")
    func exactValues() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let api = try await Self.client(server)
        #expect(try await api.send("POST", "/users", Self.user).status == 201)
        for date in [
            "+292277026596-12-04T15:30:07.00000000000000001Z", "-010000-01-01T00:00:00Z",
            "0001-01-01T00:00:00.000001234Z",
        ] {
            let thread = try await api.send(
                "POST", "/threads",
                .object([
                    "title": .string("t"), "created_at": .string(date), "tags": .array([.string("x"), .string("ü")]),
                    "owner_id": .string("usr_1"),
                ]))
            #expect(thread.status == 201, "\(thread.text)")
            #expect(thread.object["created_at"] == .string(date))
            #expect(thread.object["tags"] == .array([.string("x"), .string("ü")]))
        }
    }

    @Test(
        "history: every change with actor, operation, before and after, paged; stale update is a 409 with the current copy"
    )
    func historyAndVersions() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let api = try await Self.client(server, subject: "ada")
        let bob = try await Self.client(server, subject: "bob")
        #expect(try await api.send("POST", "/users", Self.user).status == 201)
        var renamed = Self.user.objectValue!
        renamed["name"] = .string("Ada L.")
        let updated = try await bob.send("PUT", "/users/usr_1", .object(renamed), headers: ["If-Match": "\"1\""])
        #expect(updated.status == 200)
        #expect(updated.object["_version"] == .integer(2))
        let stale = try await api.send("PUT", "/users/usr_1", .object(renamed), headers: ["If-Match": "\"1\""])
        #expect(stale.status == 409)
        #expect(stale.object["current"]?.objectValue?["_version"] == .integer(2))
        #expect(stale.object["current"]?.objectValue?["name"] == .string("Ada L."))
        #expect(try await api.send("DELETE", "/users/usr_1").status == 204)

        let history = try await api.send("GET", "/users/usr_1/history")
        guard case .array(let entries)? = history.object["data"] else {
            Issue.record("no history: \(history.text)")
            return
        }
        #expect(
            entries.compactMap { $0.objectValue?["operation"] } == [
                .string("create"), .string("update"), .string("delete"),
            ])
        #expect(entries.compactMap { $0.objectValue?["actor"] } == [.string("ada"), .string("bob"), .string("ada")])
        #expect(entries[1].objectValue?["before"]?.objectValue?["name"] == .string("Ada"))
        #expect(entries[1].objectValue?["after"]?.objectValue?["name"] == .string("Ada L."))
        #expect(entries[2].objectValue?["after"] == .null)
        let page = try await api.send("GET", "/users/usr_1/history?limit=2")
        guard case .array(let firstPage)? = page.object["data"], case .string(let next)? = page.object["next_cursor"]
        else {
            Issue.record("no page: \(page.text)")
            return
        }
        #expect(firstPage.count == 2)
        let rest = try await api.send("GET", "/users/usr_1/history?limit=2&cursor=\(next)")
        #expect(rest.object["data"] == .array([entries[2]]))
        #expect(try await api.send("GET", "/users/usr_missing/history").status == 404)
    }
}
