import ChatModels
import Foundation
import ModelSync
import ModelSyncReferenceServer
import Testing

/// Where app code meets ModelSync it works with its model types, not table names and JSON.
@Suite("Typed seams")
struct TypedAPITests {
    @Test("integer IDs come first in numeric order ('9' before '10'), then other IDs by their text")
    func integerIDsOrderNumerically() {
        let ids: [ChatThread.ID] = ["10", "9", "-3", "100", "2", "-20", "0"]
        #expect(ids.sorted().map(\.rawValue) == ["-20", "-3", "0", "2", "9", "10", "100"])
        let mixed: [ChatThread.ID] = ["b", "10", "1a", "a", "9", "010"]
        // "010" has a leading zero: no server assigns it as an integer, so it is text.
        #expect(mixed.sorted().map(\.rawValue) == ["9", "10", "010", "1a", "a", "b"])
    }

    @Test("a typed conflict resolver gets both records as models and its merge reaches the server")
    func typedConflictResolver() async throws {
        let policy = ConflictPolicy.keepLocalChanges.resolving(ChatThread.self) { local, remote in
            var merged = remote
            merged.tags = Array(Set(local.tags).union(remote.tags)).sorted()
            return .merged(merged)
        }
        let harness = try await SyncHarness.start(conflictPolicy: policy)
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 0)
        try await harness.engine.push()
        var thread = try #require(try await harness.store.threads.find(chat.thread.id))
        var serverCopy = try #require(await harness.serverRecords(ChatThread.self)[thread.id.rawValue])
        serverCopy["tags"] = .array([.string("server")])
        serverCopy["title"] = .string("Renamed on the server")
        try await harness.server.update(serverCopy, in: ChatThread.self, id: thread.id.rawValue)
        thread.tags = ["local"]
        try await harness.store.threads.save(thread)

        let report = try await harness.engine.pull(ChatThread.self)
        #expect(report.updated == 1)
        let pushed = try await harness.engine.sync()
        #expect(pushed.push.sent == 1 && pushed.push.failed == 0)
        let stored = try #require(try await harness.store.threads.find(thread.id))
        #expect(stored.tags == ["local", "server"] && stored.title == "Renamed on the server")
        #expect(
            await harness.serverRecords(ChatThread.self)[thread.id.rawValue]?["tags"]
                == .array([.string("local"), .string("server")]))
    }

    @Test(
        "a three-way resolver gets the server's copy the local change was made on, in a pull and in a 409",
        arguments: [ConflictPath.pull, .staleUpdate])
    func threeWayResolverGetsTheBase(path: ConflictPath) async throws {
        let seen = LockedBox<[ChatThread?]>([])
        let policy = ConflictPolicy.keepLocalChanges.resolving(ChatThread.self) { local, remote, base in
            seen.update { $0.append(base) }
            var merged = remote
            // Each side keeps what it changed since the base.
            if local.title != base?.title { merged.title = local.title }
            if local.tags != base?.tags { merged.tags = local.tags }
            return .merged(merged)
        }
        let harness = try await SyncHarness.start(conflictPolicy: policy)
        defer { Task { await harness.server.stop() } }
        let chat = try await makeChat(in: harness.store, messageCount: 0)
        try await harness.engine.push()
        var thread = try #require(try await harness.store.threads.find(chat.thread.id))
        let synced = thread
        // Another device changes the tags; this one changes the title.
        var serverCopy = try #require(await harness.serverRecords(ChatThread.self)[thread.id.rawValue])
        serverCopy["tags"] = .array([.string("server")])
        try await harness.server.update(serverCopy, in: ChatThread.self, id: thread.id.rawValue)
        thread.title = "Renamed here"
        try await harness.store.threads.save(thread)
        thread.title = "Renamed here, twice"
        try await harness.store.threads.save(thread)

        switch path {
        case .pull: try await harness.engine.pull(ChatThread.self)
        case .staleUpdate: try await harness.engine.push()
        }
        #expect(seen.value.map { $0?.title } == [synced.title])
        #expect(seen.value.first??.tags == synced.tags)
        let report = try await harness.engine.sync()
        #expect(report.push.failed == 0)
        let server = await harness.serverRecords(ChatThread.self)[thread.id.rawValue]
        #expect(server?["title"] == .string("Renamed here, twice"))
        #expect(server?["tags"] == .array([.string("server")]))
    }

    @Test("REST conventions are overridden per model type")
    func overridesByModelType() {
        var configuration = RESTRemote.Configuration(baseURL: URL(string: "http://127.0.0.1:1")!)
        configuration.override(User.self, with: RemoteSchema(path: "/people", idType: .string, fieldNaming: .camelCase))
        let remote = RESTRemote(configuration: configuration, models: GeneratedModels.all)
        #expect(remote.conventions(User.schema).path == "/people")
        #expect(remote.conventions(ChatThread.schema).path == "/threads")
    }
}

enum ConflictPath: String, Sendable, CustomStringConvertible {
    case pull, staleUpdate
    var description: String { rawValue }
}

/// A value shared with a `@Sendable` closure.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private var storage: Value
    private let lock = NSLock()
    init(_ value: Value) { storage = value }
    var value: Value { lock.withLock { storage } }
    func update(_ change: (inout Value) -> Void) { lock.withLock { change(&storage) } }
}
