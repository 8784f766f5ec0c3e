import ChatModels
import Foundation
import ModelSync
import Testing

/// A server that lies in its batch answers (Docs/Protocol.md, "Batches and units"): too few or too
/// many results, results out of order or for operations it was not sent, a `200` whose body is not
/// JSON, a success without a record. Nothing is taken as sent that the answer does not confirm, no
/// record gets an ID meant for another operation, and the error says what was wrong.
///
/// The server is a raw loopback server (``LoopbackHTTPServer``) that takes batches, answers the
/// first batch (the user) honestly and the second (two threads) as the test scripts it.
@Suite("A batch answer that does not match its operations confirms nothing")
struct BatchAnswerTests {
    /// One result per operation as an honest server would answer it: a create echoes its body with
    /// an ID (the one sent, or the next integer) and its idempotency key.
    private static func honestResults(_ operations: [[String: Any]], nextID: inout Int) -> [[String: Any]] {
        operations.map { operation in
            var body = operation["body"] as? [String: Any] ?? [:]
            switch operation["method"] as? String {
            case "POST":
                if body["id"] == nil {
                    nextID += 1
                    body["id"] = nextID
                }
                body["_idempotency_key"] = operation["idempotency_key"]
                return ["status": 201, "body": body]
            case "PUT": return ["status": 200, "body": body]
            default: return ["status": 204]
            }
        }
    }

    private static func json(_ object: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Saves Ada and two threads of hers, then pushes to a server whose answer to the threads' batch
    /// is `answer(honest results)` (a whole body). Returns the store, the report and the threads.
    private static func push(answeringThreads answer: @escaping @Sendable ([[String: Any]]) -> String) async throws
        -> (store: SyncStore, report: PushReport, threads: [ChatThread])
    {
        let batches = BatchCounter()
        let server = try LoopbackHTTPServer { request, connection in
            switch (request.method, request.path) {
            case ("GET", "/_modelsync"):
                connection.respond(
                    status: 200,
                    body: #"{"protocol": 1, "batch": {"path": "/_modelsync/batch", "max_operations": 100}}"#)
            case ("POST", "/_modelsync/batch"):
                let batch = batches.next()
                let sent = (try? JSONSerialization.jsonObject(with: request.body)) as? [String: Any]
                let operations = sent?["operations"] as? [[String: Any]] ?? []
                var nextID = 40
                let honest = honestResults(operations, nextID: &nextID)
                let body = batch == 1 ? json(["applied": true, "results": honest]) : answer(honest)
                connection.respond(status: 200, body: body)
            default:
                connection.respond(status: 404, body: #"{"error": "not here"}"#)
            }
        }
        defer { server.stop() }
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let threads = try await store.write { tx in
            let ada = try tx.save(User(name: "Ada", email: "ada@example.com"))
            return [
                try tx.save(ChatThread(title: "First", createdAt: Date(), tags: [], ownerId: ada.id)),
                try tx.save(ChatThread(title: "Second", createdAt: Date(), tags: [], ownerId: ada.id)),
            ]
        }
        let engine = SyncEngine(
            store: store,
            remote: RESTRemote(configuration: .init(baseURL: server.baseURL, timeout: 5), models: GeneratedModels.all),
            configuration: .init(retry: RetryPolicy(initialDelay: 30), maximumRetryWait: 0))
        let report = try await engine.push(waitForRetries: false)
        #expect(batches.count == 2, "the user's batch, then the threads' batch")
        return (store, report, threads)
    }

    /// Both threads are unsent: temporary IDs, their creates still queued and failed with a reason
    /// containing `expected`.
    private static func expectNothingConfirmed(
        _ store: SyncStore, _ threads: [ChatThread], report: PushReport, reasonContains expected: String
    ) async throws {
        #expect(report.sent == 1, "only the user's create was confirmed")
        #expect(report.failed == 2)
        for thread in threads {
            #expect(try await store.threads.find(thread.id)?.id == thread.id, "the thread keeps its temporary ID")
            guard case .failed(let reason) = try await store.threads.syncStatus(of: thread.id) else {
                Issue.record(
                    "\(thread.title) should have failed, is \(try await store.threads.syncStatus(of: thread.id))")
                continue
            }
            #expect(reason.contains(expected), "\(reason)")
            #expect(reason.contains("idempotency keys"), "says a retry is safe: \(reason)")
        }
        #expect(try await store.threads.all().allSatisfy(\.id.isTemporary))
        #expect(try await store.outbox.entries().filter { $0.tableName == "thread" }.count == 2)
    }

    @Test("a batch answer with fewer results than operations confirms none of them and says how many came back")
    func fewerResults() async throws {
        let (store, report, threads) = try await Self.push { honest in
            Self.json(["applied": true, "results": Array(honest.prefix(1))])
        }
        try await Self.expectNothingConfirmed(
            store, threads, report: report, reasonContains: "2 operations with 1 results")
    }

    @Test("a batch answer with more results than operations confirms none of them and says how many came back")
    func moreResults() async throws {
        let (store, report, threads) = try await Self.push { honest in
            Self.json(["applied": true, "results": honest + [["status": 201, "body": ["id": 99]]]])
        }
        try await Self.expectNothingConfirmed(
            store, threads, report: report, reasonContains: "2 operations with 3 results")
    }

    @Test("results out of order give no record another operation's ID")
    func resultsOutOfOrder() async throws {
        let (store, report, threads) = try await Self.push { honest in
            Self.json(["applied": true, "results": Array(honest.reversed())])
        }
        try await Self.expectNothingConfirmed(store, threads, report: report, reasonContains: "out of order")
    }

    @Test("a result naming an operation the client did not send confirms nothing")
    func resultForUnknownOperation() async throws {
        let (store, report, threads) = try await Self.push { honest in
            var results = honest
            results[1]["idempotency_key"] = "a-key-this-client-never-sent"
            return Self.json(["applied": true, "results": results])
        }
        try await Self.expectNothingConfirmed(
            store, threads, report: report, reasonContains: "'a-key-this-client-never-sent', which is no operation")
    }

    @Test("a 200 whose body is not JSON confirms nothing")
    func answerNotJSON() async throws {
        let (store, report, threads) = try await Self.push { _ in "<html><body>Service busy</body></html>" }
        #expect(report.sent == 1)
        for thread in threads {
            guard case .failed(let reason) = try await store.threads.syncStatus(of: thread.id) else {
                Issue.record("\(thread.title) should have failed")
                continue
            }
            #expect(reason.contains("not JSON"), "\(reason)")
        }
        #expect(try await store.threads.all().allSatisfy(\.id.isTemporary))
    }

    @Test("a result claiming success without a record fails its own create only")
    func successWithoutRecord() async throws {
        let (store, report, threads) = try await Self.push { honest in
            var results = honest
            results[0] = ["status": 201]
            return Self.json(["applied": true, "results": results])
        }
        #expect(report.sent == 2)
        #expect(report.failed == 1)
        guard case .failed(let reason) = try await store.threads.syncStatus(of: threads[0].id) else {
            Issue.record("the first thread should have failed")
            return
        }
        #expect(reason.contains("no JSON object"), "\(reason)")
        #expect(try await store.threads.find(threads[0].id)?.id.isTemporary == true)
        let second = try #require(try await store.threads.all().first { $0.title == "Second" })
        #expect(second.id.rawValue == "42", "the second create's own result gives its ID")
        #expect(try await store.threads.syncStatus(of: second.id) == .synced)
    }
}

/// Counts the batches a scripted server received.
private final class BatchCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    var count: Int { lock.withLock { value } }

    func next() -> Int {
        lock.withLock {
            value += 1
            return value
        }
    }
}
