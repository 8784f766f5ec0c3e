import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
import ModelSyncTestSupport
import Testing

/// Initial sync at scale (issue 13): a pull stores pages as they arrive, in chunks, so that saves
/// made meanwhile are not held up; a pull killed midway resumes after the last page it stored.
@Suite("Large pulls")
struct LargePullTests {
    /// Seeds the server with a user, `threads` threads and `messages` messages spread over them; the
    /// messages at `replies` reply to the message before them.
    private static func seed(
        _ server: ReferenceServer, threads: Int, messages: Int, replies: Set<Int> = []
    ) async throws -> [JSONValue] {
        let user = try await server.insert(
            ["id": .string("usr_1"), "name": .string("Ada"), "email": .string("a@example.com")], into: User.self)
        var threadIDs: [JSONValue] = []
        for index in 0..<threads {
            let thread = try await server.insert(
                [
                    "title": .string("thread \(index)"), "created_at": .string("2026-01-01T00:00:00Z"),
                    "tags": .array([]), "owner_id": user["id"]!,
                ], into: ChatThread.self)
            threadIDs.append(thread["id"]!)
        }
        var messageIDs: [JSONValue] = []
        for index in 0..<messages {
            var fields: [String: JSONValue] = [
                "role": .string("user"), "body": .string("message \(index)"), "thread_id": threadIDs[index % threads],
            ]
            if replies.contains(index) { fields["reply_to_id"] = messageIDs[index - 1] }
            let message = try await server.insert(fields, into: Message.self)
            messageIDs.append(message["id"]!)
        }
        return messageIDs
    }

    /// The pull, its server and the saves run in a child process (`modelsync-crash-child large-pull`),
    /// the saves on its main actor as an app's are: the time measured is the save's (waiting for the
    /// pull's chunk, writing, committing), not a wait for this test process's threads, which the
    /// suites running beside it keep busy. The child runs at a higher scheduling priority (`nice -n
    /// -10`, where allowed; otherwise at the normal one): two fresh-clone CI runs of the same commit
    /// measured 59.9 ms and 417 ms, the second while the other suites held CPU pressure near 90%, which
    /// measures the test run's load, not how long a pull's chunk makes a save wait (10 ms alone).
    @Test("a save made while a 100,000-message pull runs completes in under 250 ms")
    func saveDuringLargePull() async throws {
        let directory = try makeTemporaryDirectory("large-pull")
        defer { try? FileManager.default.removeItem(at: directory) }
        let child = packageBuildDirectory().appendingPathComponent("modelsync-crash-child")
        let total = 100_000
        let (status, output) = try await runProcess([
            "/usr/bin/nice", "-n", "-10", child.path, "large-pull", directory.appendingPathComponent("app.sqlite").path,
            String(total),
        ])
        print(output.split(separator: "\n").last { $0.hasPrefix("large-pull") } ?? "large pull: \(output)")
        #expect(status == 0, "\(output)")
        let values = Self.values(in: output, line: "large-pull")
        #expect(values["inserted"] == Double(total + 1_001))
        #expect(values["messages"] == Double(total))
        #expect((values["saves"] ?? 0) >= 50, "the saves did not run during the pull")
        let slowest = try #require(values["slowest_ms"])
        #expect(slowest < 250, "a save waited \(slowest) ms for the pull")
    }

    /// The `name=value` numbers of the line of `output` starting with `line`.
    private static func values(in output: String, line prefix: String) -> [String: Double] {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }) else { return [:] }
        var values: [String: Double] = [:]
        for pair in line.split(separator: " ").dropFirst() {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let number = Double(parts[1]) { values[String(parts[0])] = number }
        }
        return values
    }

    @Test("pull progress counts received and stored items per model, with the server's total")
    func pullProgressCounts() async throws {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        _ = try await Self.seed(server, threads: 3, messages: 250)
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        var configuration = SyncEngine.Configuration(pullChunkSize: 40)
        // Chunks of exactly 40 here: no early commit for time on a loaded machine (tested elsewhere).
        configuration.pullTransactionBudget = .seconds(600)
        let engine = SyncEngine(
            store: store,
            remote: RESTRemote(configuration: .init(baseURL: baseURL), models: GeneratedModels.all),
            configuration: configuration)
        let progress = engine.progress()
        let collected = Task {
            var seen: [PullProgress] = []
            for await update in progress {
                guard let messages = update.pulls[Message.schema.name] else { continue }
                if seen.last != messages { seen.append(messages) }
                if messages.isFinished { break }
            }
            return seen
        }
        try await engine.pull(Message.self)
        let seen = await collected.value
        // 250 messages in pages of 100, stored in chunks of 40: the total is known from the first page.
        #expect(seen.contains(PullProgress(received: 100, applied: 40, total: 250)))
        #expect(seen.allSatisfy { $0.applied <= $0.received && $0.total.map { $0 == 250 } != false })
        #expect(seen.last == PullProgress(received: 250, applied: 250, total: 250, isFinished: true))
    }

    @Test(
        "a pull killed with SIGKILL midway resumes after its last stored page: nothing applied twice, no dangling reference"
    )
    func killedPullResumes() async throws {
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        let total = 600
        // Messages 2, 102, 202 and 302 reply to the message before them, which is then edited: the
        // edit moves each parent to the last page of the listing, after its reply.
        let replies: Set<Int> = [2, 102, 202, 302]
        let messageIDs = try await Self.seed(server, threads: 30, messages: total, replies: replies)
        let stored = Dictionary(
            uniqueKeysWithValues: await server.records(of: Message.self).map { ($0["id"]!.idString!, $0) })
        for reply in replies.sorted() {
            let parentID = messageIDs[reply - 1].idString!
            var parent = try #require(stored[parentID])
            parent["body"] = .string("edited \(reply - 1)")
            try await server.update(parent, in: Message.self, id: parentID)
        }
        let directory = try makeTemporaryDirectory("killed-pull")
        let database = directory.appendingPathComponent("app.sqlite")
        let child = packageBuildDirectory().appendingPathComponent("modelsync-crash-child")

        // First run: the server holds the fourth page of messages; the child is killed there.
        await server.holdListings(of: Message.self, after: 3)
        let first = Process()
        first.executableURL = child
        first.arguments = ["pull", database.path, baseURL.absoluteString]
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        await server.waitForHeldListing()
        kill(first.processIdentifier, SIGKILL)
        await waitForExit(first)
        #expect(first.terminationReason == .uncaughtSignal)
        await server.releaseListings()

        let queue = try DatabaseQueue(path: database.path)
        let (storedMessages, keptAside, cursor) = try await queue.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message") ?? 0,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM modelsync_pulled_orphan WHERE tableName = 'message'")
                    ?? 0,
                try String.fetchOne(db, sql: "SELECT cursor FROM modelsync_pull_state WHERE tableName = 'message'")
            )
        }
        try queue.close()
        // The kill landed after at least two pages and before the fourth.
        #expect((200...300).contains(storedMessages + keptAside), "\(storedMessages) stored, \(keptAside) aside")
        #expect(cursor != nil, "no page of messages was stored before the kill")

        // Second run: resumes from the stored cursor and stores only what the first did not.
        let (status, output) = try await runProcess([child.path, "pull", database.path, baseURL.absoluteString])
        #expect(status == 0, "\(output)")
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("pulled ") })
        let values = Dictionary(
            uniqueKeysWithValues: line.dropFirst("pulled ".count).split(separator: " ").map { pair in
                let parts = pair.split(separator: "=")
                return (String(parts[0]), Int(parts[1]) ?? -1)
            })
        // It resumed after the stored pages (a pull that started over would receive all 600), and
        // every message the first run did not store is inserted once.
        #expect(values["inserted"] == total - storedMessages, "\(line)")
        #expect(values["updated"] == 0, "\(line)")
        #expect(values["messagesReceived"] == total - storedMessages - keptAside, "\(line)")
        #expect(values["rejected"] == 0, "\(line)")

        let check = try DatabaseQueue(path: database.path)
        let (messages, dangling, aside, replying, integrity) = try await check.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message"),
                try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM modelsync_pulled_orphan"),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message WHERE replyToId IS NOT NULL"),
                try String.fetchOne(db, sql: "PRAGMA integrity_check")
            )
        }
        #expect(messages == total)
        #expect(dangling == 0)
        #expect(aside == 0)
        #expect(replying == replies.count)
        #expect(integrity == "ok")
        try check.close()
    }
}
