import ChatModels
import Foundation
import ModelSync
import ModelSyncReferenceServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

let pushCount = 5_000
let pushConcurrency = 8

/// A reference server on loopback and a store holding `pushCount` queued creates.
struct PushFixture {
    var server: ReferenceServer
    var baseURL: URL
    var store: SyncStore
    var bodies: [Data]

    static func make() async throws -> PushFixture {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let artifacts = (0..<pushCount).map { Artifact(title: "Artifact \($0)", kind: "doc") }
        try await store.artifacts.save(artifacts)
        let bodies = try artifacts.map { artifact in
            try JSONValue.object([
                "id": .string(artifact.id.rawValue), "title": .string(artifact.title), "kind": .string(artifact.kind),
            ])
            .serialized()
        }
        return PushFixture(server: server, baseURL: baseURL, store: store, bodies: bodies)
    }
}

func makeSession() -> URLSession {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.timeoutIntervalForRequest = 30
    configuration.httpMaximumConnectionsPerHost = 16
    configuration.urlCache = nil
    return URLSession(configuration: configuration)
}

func runPushBenchmark() async throws {
    try await compare(
        "push5000", setUp: { try await PushFixture.make() },
        ours: { fixture in
            let remote = RESTRemote(
                configuration: .init(baseURL: fixture.baseURL), models: GeneratedModels.all, session: makeSession())
            let engine = SyncEngine(
                store: fixture.store, remote: remote,
                configuration: .init(maximumConcurrentRequests: pushConcurrency))
            let report = try await engine.push()
            precondition(report.sent == pushCount, "pushed \(report.sent) of \(pushCount)")
            await fixture.server.stop()
        },
        baseline: { fixture in
            // A plain URLSession loop: the same bodies, the same concurrency, no bookkeeping.
            let session = makeSession()
            let url = fixture.baseURL.appendingPathComponent("artifacts")
            let bodies = fixture.bodies
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<pushConcurrency {
                    group.addTask {
                        for index in stride(from: worker, to: bodies.count, by: pushConcurrency) {
                            var request = URLRequest(url: url)
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
            await fixture.server.stop()
        })
}

/// The cost of observers during a push: the same push with an `observeAll()` of the pushed table
/// running (it re-reads all 5,000 rows after every committed change) against the push alone. Push
/// answers are recorded in batches, so observers see one change per batch, not one per record.
func runObservedPushBenchmark() async throws {
    func push(_ fixture: PushFixture) async throws {
        let remote = RESTRemote(
            configuration: .init(baseURL: fixture.baseURL), models: GeneratedModels.all, session: makeSession())
        let engine = SyncEngine(
            store: fixture.store, remote: remote, configuration: .init(maximumConcurrentRequests: pushConcurrency))
        let report = try await engine.push()
        precondition(report.sent == pushCount, "pushed \(report.sent) of \(pushCount)")
        await fixture.server.stop()
    }
    try await compare(
        "push5000-observed-vs-unobserved", setUp: { try await PushFixture.make() },
        ours: { fixture in
            let observation = Task {
                for try await _ in fixture.store.artifacts.observeAll() {}
            }
            defer { observation.cancel() }
            try await push(fixture)
        },
        baseline: push)
}
