import Foundation
import ModelSync
import ModelSyncServer
import Testing

/// No request can read, write, reference or learn of another tenant's record, and bad tokens are 401.
@Suite("Tenant isolation and authentication")
struct TenantIsolationTests {
    @Test("another tenant's IDs behave exactly like missing ones: in paths, in foreign keys, in listings and history")
    func forgedIDsAndForeignKeys() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let acme = try await GeneratedServerTests.client(server, tenant: "acme")
        let globex = try await GeneratedServerTests.client(server, tenant: "globex")
        #expect(try await acme.send("POST", "/users", GeneratedServerTests.user).status == 201)
        let thread = try await acme.send("POST", "/threads", GeneratedServerTests.thread())
        let threadID = try #require(thread.object["id"]?.idString)

        for (method, path) in [
            ("GET", "/users/usr_1"), ("DELETE", "/users/usr_1"), ("GET", "/threads/\(threadID)"),
            ("GET", "/users/usr_1/history"), ("GET", "/threads/\(threadID)/history"),
        ] {
            let foreign = try await globex.send(method, path)
            let missing = try await globex.send(
                method,
                path.replacingOccurrences(of: "usr_1", with: "usr_none")
                    .replacingOccurrences(of: "/\(threadID)", with: "/999999"))
            #expect(foreign.status == 404, "\(method) \(path)")
            #expect(
                foreign.error.replacingOccurrences(of: "usr_1", with: "usr_none").replacingOccurrences(
                    of: threadID, with: "999999") == missing.error)
        }
        let put = try await globex.send("PUT", "/threads/\(threadID)", GeneratedServerTests.thread(owner: "usr_1"))
        #expect(put.status == 404)
        // A reference to another tenant's record is refused exactly like one to a missing record.
        let foreignReference = try await globex.send("POST", "/threads", GeneratedServerTests.thread(owner: "usr_1"))
        let missingReference = try await globex.send("POST", "/threads", GeneratedServerTests.thread(owner: "usr_none"))
        #expect(foreignReference.status == 422)
        #expect(foreignReference.error == missingReference.error)
        let message = try await globex.send(
            "POST", "/messages",
            .object(["role": .string("user"), "body": .string("x"), "thread_id": thread.object["id"]!]))
        #expect(message.status == 422)
        #expect(try await globex.records("/users").isEmpty)
        #expect(try await globex.records("/threads").isEmpty)
        #expect(try await globex.send("GET", "/threads?cursor=0-0").object["data"] == .array([]))
        // The same client ID in another tenant is another record; the first is untouched.
        let globexUser = try await globex.send(
            "POST", "/users",
            .object(["id": .string("usr_1"), "name": .string("Mallory"), "email": .string("ada@example.com")]))
        #expect(globexUser.status == 201)
        #expect(try await acme.send("GET", "/users/usr_1").object["name"] == .string("Ada"))
        let acmeThreads = try await acme.records("/threads")
        #expect(acmeThreads.count == 1, "\(acmeThreads)")
        // The same idempotency key in another tenant is another request.
        #expect(
            try await acme.send(
                "POST", "/artifacts", .object(["id": .string("a1"), "title": .string("A"), "kind": .string("k")]),
                headers: ["Idempotency-Key": "same"]
            ).status == 201)
        let otherTenantKey = try await globex.send(
            "POST", "/artifacts", .object(["id": .string("a1"), "title": .string("G"), "kind": .string("k")]),
            headers: ["Idempotency-Key": "same"])
        #expect(otherTenantKey.status == 201)
        #expect(otherTenantKey.object["title"] == .string("G"))
    }

    @Test("missing, expired, malformed, wrongly signed and non-bearer tokens get a 401 JSON answer")
    func badTokens() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let otherSecret = try await JWTAuthenticator(secret: "another secret, also 32 bytes or more")
        let forged = try await otherSecret.token(
            for: .init(subject: "eve", tenant: "acme", expires: Date().addingTimeInterval(3600)))
        let cases: [(String, [String: String])] = [
            ("missing", [:]),
            ("expired", ["Authorization": "Bearer " + (try await token(tenant: "acme", expired: true))]),
            ("malformed", ["Authorization": "Bearer not.a.jwt"]),
            ("garbage", ["Authorization": "Bearer ' OR 1=1 --"]),
            ("wrong secret", ["Authorization": "Bearer " + forged]),
            ("basic", ["Authorization": "Basic YWRhOnNlY3JldA=="]),
        ]
        for (name, headers) in cases {
            let api = ProtocolClient(baseURL: server.url, headers: headers)
            for (method, path) in [
                ("GET", "/users"), ("POST", "/users"), ("GET", "/users/usr_1"), ("DELETE", "/users/usr_1"),
            ] {
                let answer = try await api.send(method, path, method == "POST" ? GeneratedServerTests.user : nil)
                #expect(answer.status == 401, "\(name) \(method) \(path)")
                #expect(!answer.error.isEmpty, "\(name): \(answer.text)")
            }
        }
        let valid = try await GeneratedServerTests.client(server)
        #expect(try await valid.records("/users").isEmpty)
    }

    @Test("SQL-ish values in every field, ID, key, cursor, path and tenant are stored as data")
    func sqlishValues() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let evil = #"x'); DROP TABLE "user"; -- \" $1 %s ' OR '1'='1"#
        let api = try await GeneratedServerTests.client(server, tenant: "acme' OR '1'='1", subject: evil)
        let plain = try await GeneratedServerTests.client(server, tenant: "acme")
        #expect(try await plain.send("POST", "/users", GeneratedServerTests.user).status == 201)
        let user: JSONValue = .object([
            "id": .string(evil), "name": .string(evil), "email": .string(evil), "bio": .string(evil),
        ])
        let created = try await api.send("POST", "/users", user, headers: ["Idempotency-Key": evil])
        #expect(created.status == 201, "\(created.text)")
        #expect(created.object["id"] == .string(evil))
        #expect(created.object["name"] == .string(evil))
        #expect(created.object["_idempotency_key"] == .string(evil))
        let encoded = evil.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try await api.send("GET", "/users/\(encoded)").object["bio"] == .string(evil))
        let thread = try await api.send(
            "POST", "/threads",
            .object([
                "title": .string(evil), "created_at": .string("2026-01-01T00:00:00Z"), "tags": .array([.string(evil)]),
                "owner_id": .string(evil),
            ]))
        #expect(thread.status == 201)
        #expect(thread.object["tags"] == .array([.string(evil)]))
        let history = try await api.send("GET", "/users/\(encoded)/history")
        #expect(history.object["data"]?.arrayValue?.first?.objectValue?["actor"] == .string(evil))
        for path in [
            "/users/1;DELETE%20FROM%20user", "/threads/1%20OR%201=1", "/users?cursor=\(encoded)",
            "/users/\(encoded)/history?cursor=\(encoded)",
        ] {
            let answer = try await api.send("GET", path)
            #expect([400, 404].contains(answer.status), "\(path): \(answer.status) \(answer.text)")
            #expect(!answer.error.isEmpty)
        }
        // Nothing leaked across tenants, nothing dropped.
        #expect(try await plain.records("/users").keys.sorted() == ["usr_1"])
        #expect(try await api.records("/users").keys.sorted() == [evil])
    }
}

extension JSONValue {
    var arrayValue: [JSONValue]? { if case .array(let items) = self { items } else { nil } }
}
