import ChatModels
import Foundation
import ModelSync
import ModelSyncReferenceServer
import Synchronization

/// A pull of `messages` messages (over 1,000 threads) from a reference server of its own into an
/// empty file-backed store, with a user saved every 10 ms on the main actor for as long as the pull
/// runs, as an app's UI would. Prints
/// `large-pull inserted=<n> messages=<n> saves=<n> slowest_ms=<ms> longest_transaction_ms=<ms>`.
///
/// A process of its own: the pull and its in-process server keep this process's threads busy, and
/// a test process running other suites beside it would measure the wait for its own threads.
///
///     modelsync-crash-child large-pull <database path> <messages>
@MainActor
func runLargePull(_ arguments: [String]) async -> Int32 {
    guard arguments.count == 2, let total = Int(arguments[1]) else {
        FileHandle.standardError.write(Data("usage: modelsync-crash-child large-pull <database> <messages>\n".utf8))
        return 2
    }
    do {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        let user = try await server.insert(
            ["id": .string("usr_1"), "name": .string("Ada"), "email": .string("a@example.com")], into: User.self)
        var threadIDs: [JSONValue] = []
        for index in 0..<1_000 {
            let thread = try await server.insert(
                [
                    "title": .string("thread \(index)"), "created_at": .string("2026-01-01T00:00:00Z"),
                    "tags": .array([]), "owner_id": user["id"]!,
                ], into: ChatModels.Thread.self)
            threadIDs.append(thread["id"]!)
        }
        for index in 0..<total {
            let fields: [String: JSONValue] = [
                "role": .string("user"), "body": .string("message \(index)"),
                "thread_id": threadIDs[index % threadIDs.count],
            ]
            _ = try await server.insert(fields, into: Message.self)
        }

        let store = try SyncStore(.file(URL(fileURLWithPath: arguments[0])), models: GeneratedModels.all)
        let remote = RESTRemote(configuration: .init(baseURL: baseURL, timeout: 60), models: GeneratedModels.all)
        let engine = SyncEngine(store: store, remote: remote)
        let pullEnded = Mutex(false)
        let pull = Task.detached {
            defer { pullEnded.withLock { $0 = true } }
            return try await engine.sync().pull
        }
        var latencies: [Duration] = []
        // Until the messages are pulled, or the pull ends otherwise (it failed: `pull.value` throws).
        while !pullEnded.withLock({ $0 }),
            !(try await engine.currentProgress().pulls[Message.schema.name]?.isFinished ?? false)
        {
            let started = ContinuousClock.now
            try await store.users.save(
                User(name: "saved during the pull", email: "during-\(latencies.count)@example.com"))
            latencies.append(ContinuousClock.now - started)
            try await Task.sleep(for: .milliseconds(10))
        }
        let report = try await pull.value
        let milliseconds = { (duration: Duration) in
            Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        }
        print(
            "large-pull inserted=\(report.inserted) messages=\(try await store.messages.count()) "
                + "saves=\(latencies.count) slowest_ms=\(milliseconds(latencies.max() ?? .zero)) "
                + "longest_transaction_ms=\(milliseconds(report.longestTransaction))")
        await server.stop()
        return 0
    } catch {
        print("error \(error)")
        return 1
    }
}
