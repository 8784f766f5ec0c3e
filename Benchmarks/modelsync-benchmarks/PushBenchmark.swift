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

/// The cost of observers during a push: 5,000 queued messages of one thread (server IDs: every
/// answer replaces a temporary ID, so every recorded answer changes the observed table) pushed while
/// an `observeAll()` of the messages runs (it re-reads every message after each committed change),
/// against the same push with no observer.
func runObservedPushBenchmark() async throws {
    struct Fixture {
        var server: ReferenceServer
        var baseURL: URL
        var store: SyncStore
    }
    func makeFixture() async throws -> Fixture {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let user = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        try await store.threads.save(ChatModels.Thread(createdAt: Date(), tags: [], ownerId: user.id))
        try await makeEngine(store, baseURL).push()
        let threads = try await store.threads.all()
        guard let threadID = threads.first?.id, !threadID.isTemporary else {
            preconditionFailure("the thread did not reach the server")
        }
        try await store.messages.save((0..<pushCount).map { Message(role: .user, body: "m\($0)", threadId: threadID) })
        return Fixture(server: server, baseURL: baseURL, store: store)
    }
    func makeEngine(_ store: SyncStore, _ baseURL: URL) -> SyncEngine {
        let remote = RESTRemote(
            configuration: .init(baseURL: baseURL), models: GeneratedModels.all, session: makeSession())
        return SyncEngine(
            store: store, remote: remote, configuration: .init(maximumConcurrentRequests: pushConcurrency))
    }
    func push(_ fixture: Fixture) async throws {
        let report = try await makeEngine(fixture.store, fixture.baseURL).push()
        precondition(report.sent == pushCount, "pushed \(report.sent) of \(pushCount)")
        await fixture.server.stop()
    }
    try await compare(
        "push5000-observed-vs-unobserved", setUp: makeFixture,
        ours: { fixture in
            let observation = Task {
                for try await _ in fixture.store.messages.observeAll() {}
            }
            defer { observation.cancel() }
            try await push(fixture)
        },
        baseline: push)
}
