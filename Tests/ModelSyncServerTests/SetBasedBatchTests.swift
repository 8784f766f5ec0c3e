import ChatModels
import Foundation
import ModelSync
import ModelSyncGenerator
import Testing

/// Runs of creates inside a batch, which the generated server applies in one statement (issue 14):
/// per-operation results whatever happens inside the run.
@Suite("Runs of creates in a batch")
struct SetBasedBatchTests {
    /// A batch operation creating at `path`.
    private static func create(
        _ path: String, _ body: [String: JSONValue], key: String?, refs: [String: Int] = [:]
    ) -> JSONValue {
        var operation: [String: JSONValue] = ["method": .string("POST"), "path": .string(path), "body": .object(body)]
        if let key { operation["idempotency_key"] = .string(key) }
        if !refs.isEmpty { operation["refs"] = .object(refs.mapValues { .integer(Int64($0)) }) }
        return .object(operation)
    }

    private static func batch(_ operations: [JSONValue], atomic: Bool = false) -> JSONValue {
        .object(["atomic": .bool(atomic), "operations": .array(operations)])
    }

    private static func statuses(_ answer: ProtocolClient.Answer) -> [String] {
        (answer.object["results"]?.arrayValue ?? []).map { $0.objectValue?["status"]?.idString ?? "?" }
    }

    /// A batch operation creating a thread of `usr_1` (see ``Backend/startForBatches(_:)``).
    private static func createThread(key: String) -> JSONValue {
        let now = JSONValue.string(RESTRemote.iso8601(Date()))
        return create(
            "/threads", ["title": .string("t"), "created_at": now, "tags": .array([]), "owner_id": .string("usr_1")],
            key: key)
    }

    private static func artifact(_ id: String, _ title: String) -> [String: JSONValue] {
        ["id": .string(id), "title": .string(title), "kind": .string("doc")]
    }

    @Test(
        "a run of creates with a taken ID in the middle: only that create fails (409), what references it gets 424, the rest is applied",
        arguments: ServerKind.allCases)
    func duplicateIDInARun(kind: ServerKind) async throws {
        let (backend, server) = try await Backend.startForBatches(kind)
        defer { Task { await backend.stop() } }
        #expect(try await server.send("POST", "/artifacts", .object(Self.artifact("art_taken", "First"))).status == 201)
        let answer = try await server.send(
            "POST", "/_modelsync/batch",
            Self.batch([
                Self.createThread(key: "t0"),
                Self.create("/artifacts", Self.artifact("art_1", "One"), key: "a1"),
                Self.create("/artifacts", Self.artifact("art_2", "Two"), key: "a2"),
                Self.create("/artifacts", Self.artifact("art_taken", "Second"), key: "a3"),
                Self.create("/artifacts", Self.artifact("art_4", "Four"), key: "a4"),
                Self.create("/artifacts", Self.artifact("art_5", "Five"), key: "a5"),
                Self.create(
                    "/thread_artifacts",
                    [
                        "id": .string("ta_1"), "relation": .string("referenced"), "thread_id": .null,
                        "artifact_id": .null,
                    ],
                    key: "l1", refs: ["thread_id": 0, "artifact_id": 3]),
                Self.create(
                    "/thread_artifacts",
                    [
                        "id": .string("ta_2"), "relation": .string("referenced"), "thread_id": .null,
                        "artifact_id": .null,
                    ],
                    key: "l2", refs: ["thread_id": 0, "artifact_id": 2]),
            ]))
        #expect(answer.status == 200, "\(answer.text)")
        #expect(Self.statuses(answer) == ["201", "201", "201", "409", "201", "201", "424", "201"], "\(answer.text)")
        let artifacts = try await server.records("/artifacts")
        #expect(Set(artifacts.keys) == ["art_taken", "art_1", "art_2", "art_4", "art_5"])
        #expect(artifacts["art_taken"]?["title"] == .string("First"))
        let links = try await server.records("/thread_artifacts")
        #expect(links.count == 1)
        #expect(links.values.first?["artifact_id"] == .string("art_2"))
    }

    @Test(
        "repeated idempotency keys in a run are answered from their stored answers and nothing is inserted twice",
        arguments: ServerKind.allCases)
    func repeatedKeysInARun(kind: ServerKind) async throws {
        let backend = try await Backend.start(kind, batches: true)
        defer { Task { await backend.stop() } }
        let server = backend.otherClient
        let alone = try await server.send(
            "POST", "/artifacts", .object(Self.artifact("art_0", "Zero")), headers: ["Idempotency-Key": "k0"])
        #expect(alone.status == 201)
        let answer = try await server.send(
            "POST", "/_modelsync/batch",
            Self.batch([
                Self.create("/artifacts", Self.artifact("art_1", "One"), key: "k1"),
                Self.create("/artifacts", Self.artifact("art_0", "Zero"), key: "k0"),
                Self.create("/artifacts", Self.artifact("art_2", "Two"), key: "k2"),
                Self.create("/artifacts", Self.artifact("art_1", "One"), key: "k1"),
                Self.create("/artifacts", Self.artifact("art_3", "Other body"), key: "k2"),
                Self.create("/artifacts", Self.artifact("art_4", "Four"), key: "k4"),
            ]))
        #expect(answer.status == 200, "\(answer.text)")
        #expect(Self.statuses(answer) == ["201", "201", "201", "201", "422", "201"], "\(answer.text)")
        let results = answer.object["results"]?.arrayValue ?? []
        #expect(results[1].objectValue?["body"] == alone.json)
        #expect(results[3].objectValue?["body"] == results[0].objectValue?["body"])
        let artifacts = try await server.records("/artifacts")
        #expect(Set(artifacts.keys) == ["art_0", "art_1", "art_2", "art_4"])
        for id in artifacts.keys {
            #expect(artifacts[id]?["_version"] == .integer(1), "\(id)")
        }
        if kind == .generatedPostgres {
            let history = try await server.send("GET", "/artifacts/art_1/history")
            #expect(history.object["data"]?.arrayValue?.count == 1, "\(history.text)")
        }
    }

    @Test(
        "a batch whose answer was lost is sent again: every result is the first one's, nothing is applied twice",
        arguments: ServerKind.allCases)
    func batchRetriedAfterLostAnswer(kind: ServerKind) async throws {
        let (backend, server) = try await Backend.startForBatches(kind)
        defer { Task { await backend.stop() } }
        var operations = (0..<120).map {
            Self.create("/artifacts", Self.artifact("art_\($0)", "A \($0)"), key: "a\($0)")
        }
        operations.append(Self.createThread(key: "t"))
        for index in 0..<30 {
            operations.append(
                Self.create(
                    "/messages", ["role": .string("user"), "body": .string("m \(index)"), "thread_id": .null],
                    key: "m\(index)", refs: ["thread_id": 120]))
        }
        let batch = Self.batch(operations)
        backend.proxy.dropResponses(method: "POST", pathPrefix: "/_modelsync/batch")
        let viaProxy = ProtocolClient(baseURL: backend.baseURL, headers: backend.headers)
        let lost = try? await viaProxy.send("POST", "/_modelsync/batch", batch)
        #expect(lost == nil || lost?.status != 200)
        #expect(backend.proxy.droppedCount == 1)
        let threadsAfterFirst = try await server.records("/threads")
        #expect(threadsAfterFirst.count == 1)

        let again = try await viaProxy.send("POST", "/_modelsync/batch", batch)
        #expect(again.status == 200, "\(again.text)")
        #expect(Self.statuses(again) == Array(repeating: "201", count: 151), "\(again.text)")
        let results = again.object["results"]?.arrayValue ?? []
        let threadID = try #require(threadsAfterFirst.keys.first)
        #expect(results[120].objectValue?["body"]?.objectValue?["id"]?.idString == threadID)
        #expect(try await server.records("/threads").count == 1)
        #expect(try await server.records("/artifacts").count == 120)
        let messages = try await server.records("/messages")
        #expect(messages.count == 30)
        #expect(messages.values.allSatisfy { $0["thread_id"]?.idString == threadID })
    }

    /// A model with every kind of scalar value.
    private static let samplesSpec = """
        version: 1
        remote:
          fieldNaming: snake_case
        models:
          Sample:
            idGeneration: client
            fields:
              count: Int64
              amount: Decimal
              at: Date
              label: String
              ratio: Double
        """

    @Test("values at the edges arrive through a batch exactly as sent, and as a create sent alone stores them")
    func edgeValuesThroughABatch() async throws {
        let schema = try ModelSyncGenerator.serverSchema([
            SpecSource(path: "Samples.modelsync.yaml", text: Self.samplesSpec)
        ])
        let server = try await GeneratedServer.start(schema: schema)
        defer { Task { await server.stop() } }
        let api = ProtocolClient(
            baseURL: server.url, headers: ["Authorization": "Bearer " + (try await token(tenant: "acme"))])
        // Raw JSON text: every digit as sent.
        let samples: [(id: String, fields: String)] = [
            (
                "s_min",
                #""count":-9223372036854775808,"amount":-99999999999999999999.999999999999999999,"at":"0001-01-01T00:00:00Z","label":"","ratio":-1.7976931348623157e308"#
            ),
            (
                "s_max",
                #""count":9223372036854775807,"amount":12345678901234567890.123456789012345678,"at":"9999-12-31T23:59:59.999Z","label":"\u00e9 \ud834\udd1e \ud83d\ude00 \u4e2d","ratio":5e-324"#
            ),
            (
                "s_zero",
                #""count":0,"amount":0.00000000000000000000000000000000000001,"at":"1970-01-01T00:00:00.000001Z","label":"quote \" backslash \\ tab \t","ratio":-0.0"#
            ),
        ]
        let operations = samples.map { sample in
            #"{"method":"POST","path":"/samples","idempotency_key":"k-\#(sample.id)","body":{"id":"\#(sample.id)",\#(sample.fields)}}"#
        }
        let batch = #"{"atomic":false,"operations":["# + operations.joined(separator: ",") + "]}"
        let answer = try await api.sendRaw("POST", "/_modelsync/batch", body: Data(batch.utf8))
        #expect(answer.status == 200, "\(answer.text)")
        let results = answer.object["results"]?.arrayValue ?? []
        #expect(results.count == 3, "\(answer.text)")
        for (index, sample) in samples.enumerated() {
            // The same body sent alone (another ID): the record must be the same but for the ID.
            let alone = try await api.sendRaw(
                "POST", "/samples", body: Data(#"{"id":"\#(sample.id)_alone",\#(sample.fields)}"#.utf8))
            #expect(alone.status == 201, "\(alone.text)")
            var batched = results[index].objectValue?["body"]?.objectValue ?? [:]
            var single = alone.object
            #expect(batched["id"] == .string(sample.id))
            batched["id"] = nil
            single["id"] = nil
            batched["_idempotency_key"] = nil
            #expect(batched == single, "\(sample.id)")
        }
        let listing = try await api.send("GET", "/samples?limit=10")
        for digits in [
            "-9223372036854775808", "9223372036854775807", "-99999999999999999999.999999999999999999",
            "12345678901234567890.123456789012345678", "0.00000000000000000000000000000000000001",
        ] {
            #expect(listing.text.contains(digits), "\(digits) in \(listing.text)")
        }
        let records = try await api.records("/samples")
        #expect(records["s_max"]?["label"] == .string("\u{e9} \u{1D11E} \u{1F600} \u{4E2D}"))
        #expect(records["s_min"]?["label"] == .string(""))
        #expect(records["s_zero"]?["label"] == .string("quote \" backslash \\ tab \t"))
        #expect(records["s_min"]?["at"] == .string("0001-01-01T00:00:00Z"))
        #expect(records["s_max"]?["at"] == .string("9999-12-31T23:59:59.999Z"))
        #expect(records["s_zero"]?["at"] == .string("1970-01-01T00:00:00.000001Z"))
        #expect(records["s_min"]?["ratio"]?.doubleValue == -Double.greatestFiniteMagnitude)
        #expect(records["s_max"]?["ratio"]?.doubleValue == Double.leastNonzeroMagnitude)
        // -0.0 comes back as 0, in the batch and alone (compared above): the body is read, and the
        // answer built, as jsonb, whose numbers (numeric) have no negative zero (Docs/Server.md, "What
        // is stored"). Pinned so that a change of it is noticed.
        let zero = try #require(records["s_zero"]?["ratio"]?.doubleValue)
        #expect(zero == 0 && zero.sign == .plus, "\(zero)")
        #expect(records["s_zero_alone"]?["ratio"]?.doubleValue?.sign == .plus)
    }
}
