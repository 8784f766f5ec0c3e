import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
@_exported import ModelSyncTestSupport

typealias ChatThread = ChatModels.Thread

/// A reference server on loopback, a store and an engine talking to it over real HTTP.
struct SyncHarness {
    var server: ReferenceServer
    var baseURL: URL
    var store: SyncStore
    var engine: SyncEngine

    /// `timeout` is the client's request timeout. The default is long on purpose: no test relies on
    /// it firing (those that do pass a short one), and on a loaded 2-core machine a loopback answer
    /// has taken over 5 s while CPU-heavy suites shared the test process.
    static func start(
        store: SyncStore? = nil, timeout: TimeInterval = 30, concurrency: Int = 4,
        retry: RetryPolicy = RetryPolicy(initialDelay: 0.05, maximumDelay: 0.5, jitter: 0.2),
        conflictPolicy: ConflictPolicy = .keepLocalChanges
    ) async throws -> SyncHarness {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        let store = try store ?? SyncStore(.inMemory, models: GeneratedModels.all)
        let engine = makeEngine(
            store: store, baseURL: baseURL, timeout: timeout, concurrency: concurrency, retry: retry,
            conflictPolicy: conflictPolicy)
        return SyncHarness(server: server, baseURL: baseURL, store: store, engine: engine)
    }

    static func makeEngine(
        store: SyncStore, baseURL: URL, timeout: TimeInterval = 30, concurrency: Int = 4,
        retry: RetryPolicy = RetryPolicy(initialDelay: 0.05, maximumDelay: 0.5, jitter: 0.2),
        conflictPolicy: ConflictPolicy = .keepLocalChanges
    ) -> SyncEngine {
        let remote = RESTRemote(
            configuration: .init(baseURL: baseURL, timeout: timeout), models: GeneratedModels.all)
        return SyncEngine(
            store: store, remote: remote,
            configuration: .init(
                maximumConcurrentRequests: concurrency, retry: retry, conflictPolicy: conflictPolicy,
                maximumRetryWait: 30))
    }

    /// Stores a user and a thread of hers on the server, as another client would have; returns them
    /// in wire form.
    func seedServerThread() async throws -> (user: [String: JSONValue], thread: [String: JSONValue]) {
        let user = try await server.insert(
            ["id": .string("usr_1"), "name": .string("Ada"), "email": .string("a@example.com")], into: User.self)
        let thread = try await server.insert(
            [
                "title": .string("t"), "created_at": .string(RESTRemote.iso8601(Date())), "tags": .array([]),
                "owner_id": user["id"]!,
            ], into: ChatThread.self)
        return (user, thread)
    }

    /// Server records of a model keyed by their ID (as a string).
    func serverRecords(_ model: any SyncModel.Type) async -> [String: [String: JSONValue]] {
        var byID: [String: [String: JSONValue]] = [:]
        for record in await server.records(of: model) {
            byID[record["id"]?.idString ?? "?"] = record
        }
        return byID
    }
}

/// Creates, offline, a user, a thread, `messageCount` messages replying to each other, and two
/// artifacts linked to the thread.
func makeChat(in store: SyncStore, messageCount: Int = 3, email: String = "ada@example.com") async throws
    -> (user: User, thread: ChatThread, messages: [Message], artifacts: [Artifact])
{
    try await store.write { tx in
        let user = try tx.save(User(name: "Ada", email: email))
        let thread = try tx.save(
            ChatThread(
                title: "Trip", createdAt: Date(timeIntervalSinceReferenceDate: 800_000_000.5), tags: ["t"],
                ownerId: user.id))
        var messages: [Message] = []
        for index in 0..<messageCount {
            messages.append(
                try tx.save(
                    Message(
                        role: index.isMultiple(of: 2) ? .user : .assistant, body: "message \(index)",
                        threadId: thread.id, replyToId: messages.last?.id)))
        }
        let artifacts = [Artifact(title: "Plan", kind: "doc"), Artifact(title: "Map", kind: "image")]
        try tx.save(artifacts)
        for artifact in artifacts {
            try tx.save(ThreadArtifact(relation: .created, threadId: thread.id, artifactId: artifact.id))
        }
        return (user, thread, messages, artifacts)
    }
}
