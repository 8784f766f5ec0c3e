import ChatModels
import Foundation
import ModelSyncReferenceServer
import Testing

@testable import ModelSync

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Servers that stall, lie about IDs, mis-route paths or redirect: each test is named after the
/// behaviour that must hold, and talks real HTTP on loopback (``LoopbackHTTPServer`` for servers that
/// misbehave on purpose, the reference server for end-to-end checks).
@Suite("Misbehaving servers")
struct MisbehavingServerTests {
    // MARK: Request deadline

    /// Answers headers promising a long JSON body, then sends one space every half second.
    static func tricklingServer() throws -> LoopbackHTTPServer {
        try LoopbackHTTPServer { _, connection in
            connection.write(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
                    + "Connection: close\r\n\r\n")
            // Stops after a minute at most, so that a test run without the deadline ends too.
            for _ in 0..<120 {
                guard connection.pause(0.5), connection.write(" ") else { return }
            }
        }
    }

    @Test("a server that trickles its answer one byte every 0.5 s fails a push at the request deadline, for a retry")
    func tricklingServerFailsPushAtDeadline() async throws {
        let server = try Self.tricklingServer()
        defer { server.stop() }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        try await store.repository(for: User.self).save(User(name: "Ada", email: "ada@example.com"))
        let engine = SyncEngine(
            store: store, remote: Self.remote(server.baseURL, timeout: 5, requestDeadline: 2),
            configuration: .init(retry: RetryPolicy(initialDelay: 30), maximumRetryWait: 0))

        let started = ContinuousClock.now
        // The limit is under the server's minute of trickling (a push without the deadline waits for
        // all of it) and over the 30 s checked below: a loaded CI run once took over 15 s here.
        let report = try await withTimeLimit(seconds: 45) { try await engine.push(waitForRetries: false) }
        let elapsed = ContinuousClock.now - started

        let finished = try #require(report, "the push was still waiting for the trickling server after 45 s")
        #expect(finished.retried == 1)
        // Ended by the deadline, long before the server's minute of trickling (a loaded machine
        // may take seconds to run the deadline's timer).
        #expect(elapsed < .seconds(30), "the deadline is 2 s; the push took \(elapsed)")
        let entry = try #require(try await store.outbox.entries().first)
        #expect(entry.state == .pending)
        let reason = entry.lastError ?? ""
        #expect(reason.contains("POST /users"), "\(reason)")
        #expect(reason.contains("deadline of 2 s"), "\(reason)")
    }

    @Test("a server that trickles a listing one byte every 0.5 s fails the pull at the request deadline, transiently")
    func tricklingServerFailsPullAtDeadline() async throws {
        let server = try Self.tricklingServer()
        defer { server.stop() }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = SyncEngine(
            store: store, remote: Self.remote(server.baseURL, timeout: 5, requestDeadline: 2),
            configuration: .init(maximumRetryWait: 0))

        let started = ContinuousClock.now
        let outcome = try await withTimeLimit(seconds: 15) { () -> Result<PullReport, RemoteError> in
            do {
                return .success(try await engine.pull(User.self))
            } catch let error as RemoteError {
                return .failure(error)
            }
        }
        let elapsed = ContinuousClock.now - started

        let result = try #require(outcome, "the pull was still waiting for the trickling server after 15 s")
        guard case .failure(let error) = result else {
            Issue.record("the pull succeeded on a body that never ends: \(result)")
            return
        }
        #expect(error.isTransient)
        #expect(error.description.contains("GET /users"), "\(error)")
        #expect(error.description.contains("deadline of 2 s"), "\(error)")
        // Ended by the deadline, long before the server's minute of trickling (a loaded machine
        // may take seconds to run the deadline's timer).
        #expect(elapsed < .seconds(30), "the deadline is 2 s; the pull took \(elapsed)")
    }

    @Test("the request deadline is a documented setting with a default well above the idle timeout")
    func deadlineDefault() {
        let configuration = RESTRemote.Configuration(baseURL: URL(string: "http://127.0.0.1:1")!)
        #expect(configuration.requestDeadline == 120)
        #expect(configuration.requestDeadline > configuration.timeout)
    }

    // MARK: Server IDs

    /// Answers every create with `{"id": <idJSON>}` plus `extra` fields.
    static func createAnswering(_ idJSON: String?, extra: String = "") throws -> LoopbackHTTPServer {
        try LoopbackHTTPServer { request, connection in
            guard request.method == "POST" else {
                connection.respond(status: 404, body: #"{"error": "only creates here"}"#)
                return
            }
            var members: [String] = []
            if let idJSON { members.append(#""id": \#(idJSON)"#) }
            if !extra.isEmpty { members.append(extra) }
            connection.respond(status: 201, body: "{" + members.joined(separator: ", ") + "}")
        }
    }

    /// (ID as JSON text, text the reason must quote.)
    static let unusableIntegerIDs: [(json: String, quoted: String)] = [
        (#""tmp_0190a0b1-7c2d-7e3f-8a4b-5c6d7e8f9a0b""#, "tmp_0190a0b1-7c2d-7e3f-8a4b-5c6d7e8f9a0b"),
        (#""""#, #""""#),
        (#""abc""#, #""abc""#),
        (#""7/../x?y=1""#, #""7/../x?y=1""#),
        ("4.5", "4.5"),
        ("true", "true"),
        (#"{"a": 1}"#, #"{"a":1}"#),
        ("[7]", "[7]"),
        ("99999999999999999999", "99999999999999999999"),  // kept exact by the JSON parser, named as sent
        (#""007""#, #""007""#),
        ("null", "null"),
    ]

    @Test(
        "a create of an idType-int model answered with an unusable ID fails with the model, the ID and what was expected",
        arguments: unusableIntegerIDs.map(\.json))
    func unusableIntegerServerID(idJSON: String) async throws {
        let quoted = try #require(Self.unusableIntegerIDs.first { $0.json == idJSON }?.quoted)
        let server = try Self.createAnswering(idJSON)
        defer { server.stop() }
        let remote = Self.remote(server.baseURL)
        let fields: RecordFields = [
            "id": .string(TemporaryID.make()), "title": .string("Trip"), "createdAt": .number(0),
            "tags": .array([]), "ownerId": .string("usr_1"),
        ]
        let error = await #expect(throws: RemoteError.self) {
            _ = try await remote.create(fields, of: ChatThread.schema, idempotencyKey: "k")
        }
        let reason = error?.description ?? ""
        #expect(error?.isTransient == false)
        #expect(reason.contains("Thread"), "\(reason)")
        #expect(reason.contains(quoted), "\(reason)")
        #expect(reason.contains("64-bit integer"), "\(reason)")
        #expect(reason.contains("may have stored"), "\(reason)")
    }

    static let unusableStringIDs: [(json: String, quoted: String, expectation: String)] = [
        (#""""#, #""""#, "which is empty"),
        (#""tmp_abc""#, #""tmp_abc""#, "which looks like a temporary ID"),
        (#""a\u0000b""#, #""a\u0000b""#, "which contains a control character (U+0000)"),
        (#""line\nbreak""#, #""line\nbreak""#, "which contains a control character (U+000A)"),
        ("\"" + String(repeating: "x", count: 2000) + "\"", "xxxxxxxx", "which is longer than 256 bytes (2000)"),
        ("42", "42", "which is a number, not a string"),
        ("false", "false", "which is a boolean"),
        ("null", "null", "which is null"),
    ]

    @Test(
        "a create of a string-ID model answered with an unusable ID fails with the model, the ID and what was expected",
        arguments: unusableStringIDs.map(\.json))
    func unusableStringServerID(idJSON: String) async throws {
        let expected = try #require(Self.unusableStringIDs.first { $0.json == idJSON })
        let server = try Self.createAnswering(idJSON)
        defer { server.stop() }
        let remote = Self.remote(server.baseURL)
        let fields: RecordFields = [
            "id": .string(TemporaryID.make()), "role": .string("user"), "body": .string("hi"),
            "threadId": .string("5"),
        ]
        let error = await #expect(throws: RemoteError.self) {
            _ = try await remote.create(fields, of: Message.schema, idempotencyKey: "k")
        }
        let reason = error?.description ?? ""
        #expect(error?.isTransient == false)
        #expect(reason.contains("Message"), "\(reason)")
        #expect(reason.contains(expected.quoted), "\(reason)")
        #expect(reason.contains(expected.expectation), "\(reason)")
        #expect(reason.count < 1000, "the reason quotes a long ID in full: \(reason.count) characters")
    }

    @Test(
        "usable server IDs pass: integers (also as canonical decimal strings) for idType int, any sane string otherwise"
    )
    func usableServerIDs() throws {
        #expect(try ServerIDRule.localID(from: .integer(7), idType: .int) == "7")
        #expect(try ServerIDRule.localID(from: .integer(-3), idType: .int) == "-3")
        #expect(try ServerIDRule.localID(from: .integer(.max), idType: .int) == String(Int64.max))
        #expect(try ServerIDRule.localID(from: .string("42"), idType: .int) == "42")
        #expect(try ServerIDRule.localID(from: .string("srv_1"), idType: .string) == "srv_1")
        #expect(try ServerIDRule.localID(from: .string("a/b ü"), idType: .string) == "a/b ü")
        #expect(throws: InvalidServerID.self) { try ServerIDRule.localID(from: .string("+42"), idType: .int) }
    }

    @Test("a listed record with an unusable ID is rejected with the model and the ID")
    func listedRecordWithUnusableID() throws {
        let remote = Self.remote(URL(string: "http://127.0.0.1:1")!)
        let error = #expect(throws: RemoteError.self) {
            _ = try remote.localFields(["id": .string("tmp_x"), "title": .string("T")], model: ChatThread.schema)
        }
        #expect(error?.description.contains("Thread") == true, "\(String(describing: error))")
        #expect(error?.description.contains("tmp_x") == true, "\(String(describing: error))")
    }

    @Test("a create answered with a temporary-looking ID fails that create; its children wait instead of failing")
    func temporaryServerIDFailsTheParentNotTheChild() async throws {
        let server = try LoopbackHTTPServer { request, connection in
            if request.method == "POST", request.path == "/threads" {
                connection.respond(status: 201, body: #"{"id": "tmp_0190a0b1-7c2d-7e3f-8a4b-5c6d7e8f9a0b"}"#)
            } else if request.method == "POST", request.path == "/users" {
                connection.respond(status: 201, body: request.bodyText)
            } else {
                connection.respond(status: 500, body: #"{"error": "not expected here"}"#)
            }
        }
        defer { server.stop() }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let (user, thread, messages, _) = try await makeChat(in: store, messageCount: 1)
        _ = user
        let engine = SyncEngine(
            store: store, remote: Self.remote(server.baseURL),
            configuration: .init(retry: RetryPolicy(initialDelay: 30), maximumRetryWait: 0))
        _ = try await engine.push(waitForRetries: false)

        let entries = try await store.outbox.entries()
        let threadEntry = try #require(
            entries.first { $0.tableName == "thread" }, "the thread's create counted as sent: \(entries)")
        #expect(threadEntry.recordID == thread.id.rawValue)
        #expect(threadEntry.state == .failed)
        let reason = threadEntry.lastError ?? ""
        #expect(reason.contains("Thread") && reason.contains("tmp_0190a0b1"), "\(reason)")
        let messageEntry = try #require(entries.first { $0.tableName == "message" })
        #expect(messageEntry.recordID == messages[0].id.rawValue)
        #expect(messageEntry.state != .failed, "the child failed instead: \(messageEntry.lastError ?? "")")
        #expect(!server.requests.contains { $0.path == "/messages" })
    }

    // MARK: IDs in paths

    @Test("IDs are percent-encoded as one path segment: only unreserved characters stay, dot segments are encoded")
    func pathSegmentsAreEncoded() throws {
        let remote = Self.remote(URL(string: "http://127.0.0.1:1")!)
        let cases: [(id: String, path: String)] = [
            ("usr_1", "/users/usr_1"),
            ("a/b", "/users/a%2Fb"),
            ("..", "/users/%2E%2E"),
            (".", "/users/%2E"),
            ("...", "/users/..."),
            ("a.b~c-d_e", "/users/a.b~c-d_e"),
            ("q?x=1&y", "/users/q%3Fx%3D1%26y"),
            ("h#f", "/users/h%23f"),
            ("100%", "/users/100%25"),
            ("%41", "/users/%2541"),
            ("sp ace+plus;semi:colon@at", "/users/sp%20ace%2Bplus%3Bsemi%3Acolon%40at"),
            ("ü", "/users/%C3%BC"),
        ]
        for (id, path) in cases {
            #expect(try remote.itemPath(User.schema, id: id) == path, "ID \(id)")
        }
    }

    @Test("an ID that cannot be a path segment (empty) is refused with a clear error before any request")
    func emptyIDIsRefused() async throws {
        let server = try LoopbackHTTPServer { _, connection in connection.respond(status: 204) }
        defer { server.stop() }
        let remote = Self.remote(server.baseURL)
        let error = await #expect(throws: (any Error).self) {
            try await remote.delete(id: "", of: User.schema)
        }
        let reason = "\(error.map { "\($0)" } ?? "")"
        #expect(reason.contains("User") && reason.contains("empty"), "\(reason)")
        #expect(server.requests.isEmpty, "sent \(server.requests.map(\.target))")
    }

    /// Client IDs chosen to hit another URL when not encoded: a sibling (`%41` is `A`), the collection
    /// (`x/..`), a query or fragment, or a path of another collection.
    static let hostileUserIDs = [
        "a/b", "..", ".", "x/..", "q?x=1", "h#frag", "100%", "%41", "sp ace", "ünï", "a+b;c=d", "../threads",
    ]

    @Test("records with hostile client IDs are updated and deleted at their own URL over real HTTP")
    func hostileClientIDsEndToEnd() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let users = try await harness.store.write { tx in
            var users = [try tx.save(User(id: "A", name: "the sibling", email: "sibling@example.com"))]
            for (index, id) in Self.hostileUserIDs.enumerated() {
                users.append(try tx.save(User(id: User.ID(id), name: "v1", email: "user\(index)@example.com")))
            }
            try tx.save(Artifact(id: "../users/A", title: "v1", kind: "doc"))
            try tx.save(Artifact(id: "%2e%2e", title: "v1", kind: "doc"))
            return users
        }
        var report = try await harness.engine.push()
        #expect(report.failed == 0)
        #expect(await harness.serverRecords(User.self).count == Self.hostileUserIDs.count + 1)

        try await harness.store.write { tx in
            for user in users.dropFirst() {
                var changed = user
                changed.name = "v2"
                try tx.save(changed)
            }
            for id in ["../users/A", "%2e%2e"] {
                try tx.save(Artifact(id: Artifact.ID(id), title: "v2", kind: "doc"))
            }
        }
        report = try await harness.engine.push()
        var reasons = try await harness.store.outbox.entries().compactMap(\.lastError)
        #expect(report.failed == 0, "\(reasons)")
        let updatedUsers = await harness.serverRecords(User.self)
        for id in Self.hostileUserIDs {
            #expect(
                updatedUsers[id]?["name"] == .string("v2"),
                "user \(id) on the server: \(String(describing: updatedUsers[id]))")
        }
        #expect(updatedUsers["A"]?["name"] == .string("the sibling"))
        let updatedArtifacts = await harness.serverRecords(Artifact.self)
        #expect(updatedArtifacts["../users/A"]?["title"] == .string("v2"))
        #expect(updatedArtifacts["%2e%2e"]?["title"] == .string("v2"))

        try await harness.store.write { tx in
            for id in Self.hostileUserIDs { try tx.delete(User.self, id: User.ID(id)) }
            for id in ["../users/A", "%2e%2e"] { try tx.delete(Artifact.self, id: Artifact.ID(id)) }
        }
        report = try await harness.engine.push()
        reasons = try await harness.store.outbox.entries().compactMap(\.lastError)
        #expect(report.failed == 0, "\(reasons)")
        #expect(Array(await harness.serverRecords(User.self).keys) == ["A"])
        #expect(await harness.serverRecords(User.self)["A"]?["name"] == .string("the sibling"))
        #expect(await harness.serverRecords(Artifact.self).isEmpty)
    }

    // MARK: Redirects

    /// Redirects `POST /users` and `GET /users` with `status` to `location`; `/v2/users` creates (echoing a
    /// non-empty body with a 201, refusing an empty one) and lists.
    static func redirecting(_ status: Int, to location: String = "/v2/users") throws -> LoopbackHTTPServer {
        try LoopbackHTTPServer { request, connection in
            switch (request.method, request.path) {
            case (_, "/users"):
                connection.respond(status: status, reason: "Redirect", headers: ["Location": location])
            case ("POST", "/v2/users") where !request.body.isEmpty:
                connection.respond(status: 201, body: request.bodyText)
            case ("POST", "/v2/users"):
                connection.respond(status: 400, body: #"{"error": "empty body"}"#)
            case ("GET", "/v2/users"):
                connection.respond(status: 200, body: #"{"data": [{"id": "usr_1", "name": "Ada", "email": "a@b"}]}"#)
            default:
                connection.respond(status: 404, body: #"{"error": "nothing here"}"#)
            }
        }
    }

    static let userFields: RecordFields = [
        "id": .string("usr_1"), "name": .string("Ada"), "email": .string("ada@example.com"), "bio": .null,
    ]

    @Test(
        "a create redirected with 301, 302 or 303 fails naming the redirect; it is never re-sent as a GET",
        arguments: [301, 302, 303])
    func methodChangingRedirectFails(status: Int) async throws {
        let server = try Self.redirecting(status)
        defer { server.stop() }
        let remote = Self.remote(server.baseURL)
        let error = await #expect(throws: RemoteError.self) {
            _ = try await remote.create(Self.userFields, of: User.schema, idempotencyKey: "key-1")
        }
        let reason = error?.description ?? ""
        #expect(reason.contains("\(status)"), "\(reason)")
        #expect(reason.contains("POST /users"), "\(reason)")
        #expect(reason.contains("\(server.baseURL.absoluteString)/v2/users"), "\(reason)")
        #expect(server.requests.map(\.method) == ["POST"], "\(server.requests.map { "\($0.method) \($0.target)" })")
    }

    @Test(
        "a create redirected with 307 or 308 to the same origin is re-sent intact: method, body and headers",
        arguments: [307, 308])
    func requestPreservingRedirectIsFollowed(status: Int) async throws {
        let server = try Self.redirecting(status)
        defer { server.stop() }
        let remote = RESTRemote(
            configuration: .init(baseURL: server.baseURL, headers: { ["Authorization": "Bearer t0k3n"] }),
            models: GeneratedModels.all)
        let created = try await remote.create(Self.userFields, of: User.schema, idempotencyKey: "key-1")
        #expect(created["id"] == .string("usr_1"))
        let requests = server.requests
        try #require(requests.count == 2, "\(requests.map { "\($0.method) \($0.target)" })")
        #expect(requests[1].method == "POST")
        #expect(requests[1].path == "/v2/users")
        #expect(requests[1].body == requests[0].body)
        #expect(!requests[1].body.isEmpty)
        for header in ["idempotency-key", "authorization", "content-type", "accept"] {
            #expect(requests[1].headers[header] == requests[0].headers[header], "\(header)")
        }
        #expect(requests[1].headers["idempotency-key"] == "key-1")
    }

    @Test("a redirect to another origin is not followed, and nothing reaches that origin")
    func crossOriginRedirectFails() async throws {
        let elsewhere = try LoopbackHTTPServer { request, connection in
            connection.respond(status: 201, body: request.bodyText)
        }
        defer { elsewhere.stop() }
        let server = try Self.redirecting(307, to: elsewhere.baseURL.absoluteString + "/users")
        defer { server.stop() }
        let remote = Self.remote(server.baseURL)
        let error = await #expect(throws: RemoteError.self) {
            _ = try await remote.create(Self.userFields, of: User.schema, idempotencyKey: "key-1")
        }
        let reason = error?.description ?? ""
        #expect(reason.contains("307") && reason.contains("another origin"), "\(reason)")
        #expect(reason.contains(elsewhere.baseURL.absoluteString + "/users"), "\(reason)")
        #expect(elsewhere.requests.isEmpty)
    }

    @Test("a listing redirected with 301 to the same origin is followed (GET stays GET)")
    func listingRedirectIsFollowed() async throws {
        let server = try Self.redirecting(301)
        defer { server.stop() }
        let page = try await Self.remote(server.baseURL).list(User.schema, after: nil)
        #expect(page.records.map { $0["id"] } == [.string("usr_1")])
        #expect(server.requests.map(\.path) == ["/users", "/v2/users"])
    }

    @Test("a session of the app's own that follows a redirect itself is caught: the create fails naming both URLs")
    func customSessionFollowingRedirectIsCaught() async throws {
        let server = try Self.redirecting(302)
        defer { server.stop() }
        let session = URLSession(configuration: .ephemeral)
        let remote = RESTRemote(
            configuration: .init(baseURL: server.baseURL), models: GeneratedModels.all, session: session)
        let error = await #expect(throws: RemoteError.self) {
            _ = try await remote.create(Self.userFields, of: User.schema, idempotencyKey: "key-1")
        }
        let reason = error?.description ?? ""
        #expect(reason.contains("POST /users") && reason.contains("redirected by the URLSession"), "\(reason)")
        #expect(reason.contains("\(server.baseURL.absoluteString)/v2/users"), "\(reason)")
        #expect(error?.isTransient == false)
    }

    @Test("a redirect loop ends after a few hops with a message naming it")
    func redirectLoopEnds() async throws {
        let server = try Self.redirecting(307, to: "/users")
        defer { server.stop() }
        let error = await #expect(throws: RemoteError.self) {
            _ = try await Self.remote(server.baseURL).create(Self.userFields, of: User.schema, idempotencyKey: "k")
        }
        #expect(error?.description.contains("redirect") == true, "\(String(describing: error))")
        #expect(server.requests.count <= 6)
    }

    // MARK: Answers that are not what was asked for

    @Test("a 200 with an HTML page to a create fails with a reason quoting the page")
    func htmlAnswerToCreate() async throws {
        let server = try LoopbackHTTPServer { _, connection in
            connection.respond(
                status: 200, body: "<html><body><h1>Welcome to the hotel Wi-Fi</h1></body></html>",
                contentType: "text/html")
        }
        defer { server.stop() }
        let error = await #expect(throws: RemoteError.self) {
            _ = try await Self.remote(server.baseURL).create(Self.userFields, of: User.schema, idempotencyKey: "k")
        }
        let reason = error?.description ?? ""
        #expect(reason.contains("POST /users") && reason.contains("not JSON"), "\(reason)")
        #expect(reason.contains("Welcome to the hotel Wi-Fi"), "\(reason)")
    }

    @Test("a 200 whose JSON is cut short (consistent length) fails with a reason quoting it")
    func truncatedJSONAnswer() async throws {
        let server = try LoopbackHTTPServer { _, connection in
            connection.respond(status: 201, body: #"{"id": "usr_1", "na"#)
        }
        defer { server.stop() }
        let error = await #expect(throws: RemoteError.self) {
            _ = try await Self.remote(server.baseURL).create(Self.userFields, of: User.schema, idempotencyKey: "k")
        }
        #expect(error?.description.contains("not JSON") == true, "\(String(describing: error))")
    }

    @Test("a 200 that ends before its Content-Length is a transient network error")
    func bodyShorterThanItsLength() async throws {
        let server = try LoopbackHTTPServer { _, connection in
            connection.write(
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 500\r\n"
                    + "Connection: close\r\n\r\n{\"id\": \"usr_1\"")
        }
        defer { server.stop() }
        let error = await #expect(throws: RemoteError.self) {
            _ = try await Self.remote(server.baseURL).create(Self.userFields, of: User.schema, idempotencyKey: "k")
        }
        #expect(error?.isTransient == true, "\(String(describing: error))")
        #expect(error?.description.contains("POST /users") == true, "\(String(describing: error))")
    }

    @Test("a create answered with another model's record fails with a reason naming the model and the ID")
    func answerOfAnotherModel() async throws {
        // A thread where a user was created: its integer ID is not the user's client ID.
        let threadShape = #""title": "Trip", "created_at": "2026-01-01T00:00:00.000Z", "tags": [], "owner_id": "usr_1""#
        let server = try Self.createAnswering("1", extra: threadShape)
        defer { server.stop() }
        let error = await #expect(throws: RemoteError.self) {
            _ = try await Self.remote(server.baseURL).create(Self.userFields, of: User.schema, idempotencyKey: "k")
        }
        let reason = error?.description ?? ""
        #expect(reason.contains("User") && reason.contains("usr_1") && reason.contains("1"), "\(reason)")

        // A message where a thread was created: its string ID is not an integer.
        let messageServer = try Self.createAnswering(
            #""srv_message_1""#, extra: #""role": "user", "body": "hi", "thread_id": 3"#)
        defer { messageServer.stop() }
        let fields: RecordFields = [
            "id": .string(TemporaryID.make()), "title": .string("Trip"), "createdAt": .number(0),
            "tags": .array([]), "ownerId": .string("usr_1"),
        ]
        let threadError = await #expect(throws: RemoteError.self) {
            _ = try await Self.remote(messageServer.baseURL).create(fields, of: ChatThread.schema, idempotencyKey: "k")
        }
        let threadReason = threadError?.description ?? ""
        #expect(threadReason.contains("Thread") && threadReason.contains("srv_message_1"), "\(threadReason)")
    }

    @Test("a push meeting HTML, truncated and foreign answers fails those entries with reasons, and never crashes")
    func pushThroughNonsenseAnswers() async throws {
        let answers = Mutex(0)
        let server = try LoopbackHTTPServer { request, connection in
            let index = answers.withLock { count in
                defer { count += 1 }
                return count
            }
            switch index % 3 {
            case 0:
                connection.respond(status: 200, body: "<html><h1>Sign in</h1></html>", contentType: "text/html")
            case 1: connection.respond(status: 201, body: #"{"id": "usr_"#)
            default: connection.respond(status: 201, body: #"{"id": 9, "title": "a thread"}"#)
            }
        }
        defer { server.stop() }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        try await store.write { tx in
            for index in 0..<3 { try tx.save(User(name: "U\(index)", email: "u\(index)@example.com")) }
        }
        let engine = SyncEngine(
            store: store, remote: Self.remote(server.baseURL), configuration: .init(maximumConcurrentRequests: 1))
        let report = try await engine.push(waitForRetries: false)
        #expect(report.failed == 3)
        let reasons = try await store.outbox.entries().compactMap(\.lastError)
        #expect(reasons.count == 3)
        #expect(reasons.contains { $0.contains("not JSON") && $0.contains("Sign in") }, "\(reasons)")
        #expect(reasons.contains { $0.contains("User") && $0.contains("9") }, "\(reasons)")
    }

    // MARK: Helpers

    @Test("a page that lists one record twice stores its later state, once")
    func pageListingARecordTwiceStoresTheLaterState() async throws {
        // Two states of one user on one page (a server that lists a change made while it pages): the
        // later one is the record's state. The pull makes each page's rows before storing it; the
        // rows of a page listing an ID twice must not store the earlier state.
        let server = try LoopbackHTTPServer { request, connection in
            if request.path == "/users", !request.target.contains("cursor=") {
                connection.respond(
                    status: 200,
                    body: #"{"data": [{"id": "usr_1", "name": "Earlier", "email": "a@example.com"}, "#
                        + #"{"id": "usr_1", "name": "Later", "email": "a@example.com"}], "next_cursor": "2"}"#)
            } else {
                connection.respond(status: 200, body: #"{"data": [], "next_cursor": "2"}"#)
            }
        }
        defer { server.stop() }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let report = try await SyncEngine(store: store, remote: Self.remote(server.baseURL)).pull(User.self)
        let users = try await store.read { db in try User.fetchAll(db) }
        #expect(users.map(\.name) == ["Later"])
        #expect(report.rejected.isEmpty, "\(report.rejected)")
    }

    static func remote(_ baseURL: URL, timeout: TimeInterval = 5, requestDeadline: TimeInterval = 20) -> RESTRemote {
        RESTRemote(
            configuration: .init(baseURL: baseURL, timeout: timeout, requestDeadline: requestDeadline),
            models: GeneratedModels.all)
    }
}

/// Runs `body`, returning `nil` if it has not finished after `seconds` (it is left running).
private func withTimeLimit<Value: Sendable>(
    seconds: Double, _ body: @escaping @Sendable () async throws -> Value
) async throws -> Value? {
    let outcome = Mutex<CheckedContinuation<Value?, any Error>?>(nil)
    let finish: @Sendable (Result<Value?, any Error>) -> Void = { result in
        outcome.withLock { continuation in
            continuation?.resume(with: result)
            continuation = nil
        }
    }
    return try await withCheckedThrowingContinuation { continuation in
        outcome.withLock { $0 = continuation }
        Task {
            do { finish(.success(try await body())) } catch { finish(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            finish(.success(nil))
        }
    }
}
