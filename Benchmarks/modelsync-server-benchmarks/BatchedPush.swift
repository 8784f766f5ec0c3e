import ChatModels
import Foundation
import Hummingbird
import ModelSync
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

// push5000-batched: 5,000 queued creates pushed by the engine to the generated server in batches,
// against the plain per-record URLSession loop of `push5000` (the same bodies, 8 requests at a time,
// one POST each) to the same server, in the same run.

let batchedPushCount = 5_000
let batchedPushConcurrency = 8

/// A store holding `batchedPushCount` queued artifact creates, and the same creates as bodies.
func makeQueuedArtifacts() async throws -> (SyncStore, [Data]) {
    let store = try SyncStore(.inMemory, models: GeneratedModels.all)
    let artifacts = (0..<batchedPushCount).map { ChatModels.Artifact(title: "Artifact \($0)", kind: "doc") }
    try await store.artifacts.save(artifacts)
    let bodies = try artifacts.map { artifact in
        try JSONValue.object([
            "id": .string(artifact.id.rawValue), "title": .string(artifact.title), "kind": .string(artifact.kind),
        ])
        .serialized()
    }
    return (store, bodies)
}

/// The server's side of the profile: how many batch requests the generated server answered and the
/// milliseconds it spent on them (from the request's head to the answer's body, SQL included).
let batchServerTime = Mutex<(count: Int, milliseconds: Double)>((0, 0))

/// Adds each `POST /_modelsync/batch` request's handling time to `batchServerTime`.
struct BatchTimingMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard request.method == .post, request.uri.path.hasSuffix("/_modelsync/batch") else {
            return try await next(request, context)
        }
        let clock = ContinuousClock()
        let start = clock.now
        let response = try await next(request, context)
        let elapsed = milliseconds(clock.now - start)
        batchServerTime.withLock {
            $0.count += 1
            $0.milliseconds += elapsed
        }
        return response
    }
}

/// Milliseconds for the engine to push the store's queue in batches.
func pushInBatches(_ store: SyncStore, to url: URL) async throws -> Double {
    let remote = RESTRemote(configuration: .init(baseURL: url, timeout: 60), models: GeneratedModels.all)
    let engine = SyncEngine(
        store: store, remote: remote, configuration: .init(maximumConcurrentRequests: batchedPushConcurrency))
    let clock = ContinuousClock()
    var report = PushReport()
    let elapsed = try await clock.measure { report = try await engine.push() }
    precondition(report.sent == batchedPushCount, "pushed \(report.sent) of \(batchedPushCount)")
    let support = try await remote.batchSupport()
    precondition(support != nil, "the generated server should take batches")
    return milliseconds(elapsed)
}

/// Milliseconds for the plain loop: one POST per create, `batchedPushConcurrency` at a time.
func pushOneByOne(_ bodies: [Data], to url: URL) async throws -> Double {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = 30
    configuration.httpMaximumConnectionsPerHost = 16
    configuration.urlCache = nil
    let session = URLSession(configuration: configuration)
    let endpoint = url.appendingPathComponent("artifacts")
    let clock = ContinuousClock()
    let elapsed = try await clock.measure {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<batchedPushConcurrency {
                group.addTask {
                    for index in stride(from: worker, to: bodies.count, by: batchedPushConcurrency) {
                        var request = URLRequest(url: endpoint)
                        request.httpMethod = "POST"
                        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                        request.setValue(UUID().uuidString, forHTTPHeaderField: "Idempotency-Key")
                        request.httpBody = bodies[index]
                        let (_, response) = try await session.data(for: request)
                        precondition((response as? HTTPURLResponse)?.statusCode == 201)
                    }
                }
            }
            try await group.waitForAll()
        }
    }
    return milliseconds(elapsed)
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// Runs push5000-batched `repetitions` times, alternating ours and the baseline; prints the medians.
func runBatchedPushBenchmark(url: URL, repetitions: Int) async throws {
    var ours: [Double] = []
    var baseline: [Double] = []
    for _ in 0..<repetitions {
        let (store, _) = try await makeQueuedArtifacts()
        batchServerTime.withLock { $0 = (0, 0) }
        ours.append(try await pushInBatches(store, to: url))
        let server = batchServerTime.withLock { $0 }
        print(
            "push5000-batched profile: engine push \(String(format: "%.1f", ours.last!)) ms; \(server.count) batch "
                + "requests, \(String(format: "%.1f", server.milliseconds)) ms in the server's handler in all "
                + "(\(String(format: "%.1f", server.milliseconds / Double(max(server.count, 1)))) ms each, up to "
                + "\(batchedPushConcurrency) at once)")
        let (_, bodies) = try await makeQueuedArtifacts()
        baseline.append(try await pushOneByOne(bodies, to: url))
    }
    let oursMedian = ours.sorted()[ours.count / 2]
    let baselineMedian = baseline.sorted()[baseline.count / 2]
    print(
        "BENCH push5000-batched ours=\(String(format: "%.2f", oursMedian)) baseline=\(String(format: "%.2f", baselineMedian))"
            + " ratio=\(String(format: "%.2f", oursMedian / baselineMedian))")
    print(
        "push5000-batched: \(batchedPushCount) queued creates to the generated server: engine in batches "
            + "\(Int(Double(batchedPushCount) / oursMedian * 1000))/s, one POST each (8 at a time) "
            + "\(Int(Double(batchedPushCount) / baselineMedian * 1000))/s")
}
