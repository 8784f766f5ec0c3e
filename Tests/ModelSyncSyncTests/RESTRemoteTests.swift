import ChatModels
import Foundation
import Testing

@testable import ModelSync

@Suite("REST conventions")
struct RESTRemoteTests {
    let remote = RESTRemote(
        configuration: .init(baseURL: URL(string: "http://127.0.0.1:1")!), models: GeneratedModels.all)

    @Test("wire keys follow the spec's naming")
    func keys() {
        #expect(FieldNaming.snakeCase.wireKey(for: "replyToId") == "reply_to_id")
        #expect(FieldNaming.snakeCase.wireKey(for: "createdAt") == "created_at")
        #expect(FieldNaming.camelCase.wireKey(for: "replyToId") == "replyToId")
    }

    @Test("a collection path is kept verbatim; items use the path template")
    func paths() {
        let custom = RESTRemote(
            configuration: .init(
                baseURL: URL(string: "http://127.0.0.1:1")!, itemPathTemplate: "{path}/item/{id}",
                overrides: ["thread": RemoteSchema(path: "/v2/threads/", idType: .int, fieldNaming: .camelCase)]),
            models: GeneratedModels.all)
        #expect(custom.conventions(ChatThread.schema).path == "/v2/threads/")
        #expect(remote.conventions(ChatThread.schema).path == "/threads")
    }

    @Test("HTML and JSON error bodies become readable messages")
    func errorMessages() {
        let html = Data("<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>".utf8)
        #expect(RESTRemote.errorMessage(html, status: 502) == "502 Bad Gateway nginx")
        let json = Data(#"{"error": {"message": "email is taken"}}"#.utf8)
        #expect(RESTRemote.errorMessage(json, status: 409) == "email is taken")
        #expect(RESTRemote.errorMessage(Data(), status: 404).isEmpty == false)
    }

    @Test("Retry-After accepts seconds and HTTP dates")
    func retryAfter() {
        #expect(RESTRemote.parseRetryAfter("3") == 3)
        let future = RESTRemote.parseRetryAfter("Wed, 21 Oct 2099 07:28:00 GMT") ?? 0
        #expect(future > 1_000_000)
    }

    @Test("only network errors, 408, 425, 429 and 5xx are transient")
    func transience() {
        #expect(RemoteError.transport("timeout").isTransient)
        for status in [408, 425, 429, 500, 503] {
            #expect(RemoteError.http(status: status, message: "", retryAfter: nil).isTransient)
        }
        for status in [400, 401, 404, 409, 422] {
            #expect(!RemoteError.http(status: status, message: "", retryAfter: nil).isTransient)
        }
    }

    @Test("dates travel as ISO 8601 and come back to the same millisecond")
    func dates() {
        let date = Date(timeIntervalSinceReferenceDate: 800_000_000.123)
        let text = RESTRemote.iso8601(date)
        #expect(text.hasSuffix("Z"))
        let parsed = RESTRemote.parseISO8601(text)
        #expect(abs((parsed?.timeIntervalSinceReferenceDate ?? 0) - date.timeIntervalSinceReferenceDate) < 0.001)
    }

    @Test("an unreachable server is a transient transport error")
    func unreachable() async throws {
        let error = await #expect(throws: RemoteError.self) {
            _ = try await remote.create(["id": .string("usr_1")], of: User.schema, idempotencyKey: "k")
        }
        #expect(error?.isTransient == true)
    }
}

@Suite("JSON values")
struct JSONValueTests {
    @Test("parsing keeps booleans, integers, fractions, null, strings and nesting apart")
    func parse() throws {
        let value = try JSONValue.parse(
            Data(#"[true, 1, 1.5, null, "s", {"a": [false, 0]}, 12345678901234, 2e3]"#.utf8))
        #expect(
            value
                == .array([
                    .bool(true), .integer(1), .number(1.5), .null, .string("s"),
                    .object(["a": .array([.bool(false), .integer(0)])]), .integer(12_345_678_901_234), .number(2000),
                ]))
        #expect(JSONValue.integer(42).idString == "42")
        #expect(JSONValue.string("tmp_x").idString == "tmp_x")
        #expect(JSONValue.bool(true).idString == nil)
    }

    @Test("serialized JSON parses back to the same value, with sorted keys and escaped strings")
    func serialize() throws {
        let value = JSONValue.object([
            "b": .array([.null, .bool(false), .integer(-7), .number(0.25)]),
            "a": .string("quote \" backslash \\ newline \n tab \t control \u{01} 🧵"),
        ])
        let text = String(decoding: try value.serialized(), as: UTF8.self)
        #expect(text.hasPrefix(#"{"a":"quote \" backslash \\ newline \n tab \t control \u0001 🧵","b":"#))
        #expect(try JSONValue.parse(Data(text.utf8)) == value)
        #expect(throws: EncodingError.self) { try JSONValue.number(.nan).serialized() }
    }
}
