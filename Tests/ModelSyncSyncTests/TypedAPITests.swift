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

    @Test("REST conventions are overridden per model type")
    func overridesByModelType() {
        var configuration = RESTRemote.Configuration(baseURL: URL(string: "http://127.0.0.1:1")!)
        configuration.override(User.self, with: RemoteSchema(path: "/people", idType: .string, fieldNaming: .camelCase))
        let remote = RESTRemote(configuration: configuration, models: GeneratedModels.all)
        #expect(remote.conventions(User.schema).path == "/people")
        #expect(remote.conventions(ChatThread.schema).path == "/threads")
    }
}
