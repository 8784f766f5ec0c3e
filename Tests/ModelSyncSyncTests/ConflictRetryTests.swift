import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
import Testing

@Suite("Updates that meet a newer server copy, with the local change kept")
struct ConflictRetryTests {
    /// A thread pushed, then renamed on the server by another client and here, offline.
    static func renamedOnBothSides(_ harness: SyncHarness) async throws -> ChatThread {
        _ = try await makeChat(in: harness.store, messageCount: 0)
        try await harness.engine.push()
        var thread = try #require(try await harness.store.threads.all().first)
        var serverThread = try #require(await harness.serverRecords(ChatThread.self)[thread.id.rawValue])
        serverThread["title"] = .string("renamed elsewhere")
        try await harness.server.update(serverThread, in: ChatThread.self, id: thread.id.rawValue)
        thread.title = "renamed here"
        try await harness.store.threads.save(thread)
        return thread
    }

    @Test(
        "an update retried after transient failures and then refused once as stale is sent again: the sends before do not count as conflicts"
    )
    func transientFailuresBeforeOneConflict() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let thread = try await Self.renamedOnBothSides(harness)
        // Four sends fail on the way (a flaky network); the fifth meets the newer server copy.
        harness.server.setFaults(FaultPlan(script: [.status(503), .status(503), .status(503), .status(503)]))
        let report = try await harness.engine.push()
        let left = try await harness.store.outbox.entries()
        #expect(report.failed == 0, "\(left)")
        #expect(left.isEmpty)
        #expect(await harness.serverRecords(ChatThread.self)[thread.id.rawValue]?["title"] == .string("renamed here"))
    }

    @Test(
        "an update whose server copy keeps changing fails at its fifth conflict in a row, and a retry gives it five more"
    )
    func serverCopyThatKeepsChanging() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let thread = try await Self.renamedOnBothSides(harness)
        // Every update this client sends meets a copy changed since: another client writes first each time.
        harness.server.setFaults(FaultPlan(script: Array(repeating: .changedElsewhere, count: 10)))
        let report = try await harness.engine.push()
        #expect(report.failed == 1)
        #expect(report.conflicts == 4, "sent again after each of the first four conflicts: \(report)")
        let failed = try #require(try await harness.store.outbox.entries().first)
        #expect(failed.state == .failed)
        #expect(failed.lastError?.contains("the server's copy changed 5 times") == true, "\(failed)")
        // The app retries: five more conflicts before it fails again, not one.
        #expect(try await harness.store.threads.retry(thread.id) == 1)
        let again = try await harness.engine.push()
        #expect(again.failed == 1)
        #expect(again.conflicts == 4, "\(again)")
        #expect(
            await harness.serverRecords(ChatThread.self)[thread.id.rawValue]?["title"] == .string("renamed elsewhere"))
    }
}
