import ChatModels
import Foundation
import GRDB
@_spi(OutboxInternals) import ModelSync
import ModelSyncReferenceServer
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two real processes (`modelsync-crash-child`) on one file-backed store, as an app and its
/// extension: each writes and pushes at once against the reference server in this test process.
///
/// `MODELSYNC_TWO_PROCESS_ROUNDS` (default 4) sets how often each process reopens its store,
/// `MODELSYNC_TWO_PROCESS_CHATS` (default 25) the chats each writes per round,
/// `MODELSYNC_TWO_PROCESS_SEED` replays the server's fault rolls.
@Suite("Two processes")
struct TwoProcessTests {
    @Test("two processes writing and pushing on one file: no lock error, no entry sent twice at once, convergence")
    func twoProcessesConverge() async throws {
        let child = try childExecutable()
        let rounds = integer(fromEnvironment: "MODELSYNC_TWO_PROCESS_ROUNDS", default: 4)
        let chats = integer(fromEnvironment: "MODELSYNC_TWO_PROCESS_CHATS", default: 25)
        let seed = seed(fromEnvironment: "MODELSYNC_TWO_PROCESS_SEED")
        print("two processes: seed \(seed), \(rounds) rounds of \(chats) chats per process")
        let directory = try makeTemporaryDirectory("two-process")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("shared.sqlite")
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        // Latency keeps requests in flight while the other process opens, claims and pushes;
        // failures before commit make entries go round the retry path.
        server.setFaults(FaultPlan(failBeforeCommitRate: 0.05, latency: 5...30, seed: seed))
        server.setRequestLogging(true)

        let started = ContinuousClock.now
        let labels = ["app", "extension"]
        var processes: [(process: Process, output: URL)] = []
        for label in labels {
            let output = directory.appendingPathComponent("\(label).out")
            processes.append(
                (
                    try launch(
                        child, ["writer", database.path, baseURL.absoluteString, label, "\(rounds)", "\(chats)"],
                        output: output), output
                ))
        }
        let finished = try await eventually(timeout: .seconds(300)) { processes.allSatisfy { !$0.process.isRunning } }
        for (process, _) in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for (process, _) in processes { process.waitUntilExit() }
        let elapsed = ContinuousClock.now - started
        #expect(finished, "the writers did not finish within 300 s")

        var reports: [WriterReportLine] = []
        for (process, output) in processes {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            let line = text.split(separator: "\n").last.map(String.init) ?? ""
            let report = try? JSONDecoder().decode(WriterReportLine.self, from: Data(line.utf8))
            #expect(report != nil, "no report from a writer (exit \(process.terminationStatus)): \(text.suffix(2_000))")
            if let report { reports.append(report) }
            #expect(process.terminationStatus == 0, "a writer exited with \(process.terminationStatus): \(line)")
        }
        for report in reports {
            print(
                "two processes: \(report.label): \(report.saves) saves (\(report.saveFailures) failed), "
                    + "\(report.opens) opens (\(report.openFailures) failed), \(report.pushes) pushes "
                    + "(\(report.pushErrors) threw), \(report.sent) sent, \(report.retried) retried, "
                    + "\(report.lockedErrors) 'database is locked', \(String(format: "%.1f", report.seconds)) s"
                    + (report.errors.isEmpty ? "" : "; errors: \(report.errors.prefix(3))"))
            #expect(report.lockedErrors == 0, "\(report.label): \(report.lockedErrors) 'database is locked'")
            #expect(report.saveFailures == 0 && report.openFailures == 0, "\(report.label): \(report.errors.prefix(3))")
            #expect(report.pushErrors == 0, "\(report.label): \(report.errors.prefix(3))")
        }

        // No entry was being sent twice at the same moment: a create is known by its idempotency
        // key, an update or delete by its record's path.
        let requests = server.loggedRequests.filter { $0.method != "GET" }
        let overlaps = Self.overlappingRequests(requests)
        #expect(overlaps.isEmpty, "\(overlaps.count) entries were sent twice at once, e.g. \(overlaps.prefix(3))")
        let keys = requests.compactMap(\.idempotencyKey)
        let methods = Dictionary(grouping: requests, by: \.method).mapValues(\.count)
        print(
            "two processes: \(requests.count) write requests (\(methods.sorted { $0.key < $1.key })), "
                + "\(Set(keys).count) creates, "
                + "\(keys.count - Set(keys).count) create requests repeated (retries), "
                + "\(await server.replayedCreates) replayed by key, \(overlaps.count) overlapping; "
                + "\(String(format: "%.1f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)) s"
        )

        // Convergence: the outbox is empty, the server holds exactly the local records.
        let store = try SyncStore(.file(database), models: GeneratedModels.all)
        #expect(try await store.outbox.entries().isEmpty)
        let records = await server.records()
        let chatsWritten = labels.count * rounds * chats
        // Edits and deletes (every third and fourth chat) reach records written at least 8 chats
        // before, across rounds.
        let deletes = Self.countOfChangesToEarlierRecords(every: 4, at: 3, rounds: rounds, chats: chats, lag: 8)
        let edits = Self.countOfChangesToEarlierRecords(every: 3, at: 2, rounds: rounds, chats: chats, lag: 8)
        #expect(records["user"]?.count == chatsWritten)
        #expect(records["thread"]?.count == chatsWritten)
        #expect(records["message"]?.count == chatsWritten * 2 - labels.count * deletes)
        for (table, field) in [("user", "name"), ("thread", "title"), ("message", "body")] {
            let values = (records[table] ?? []).compactMap { $0[field]?.stringValue }
            #expect(Set(values).count == values.count, "a \(table) was created twice on the server")
        }
        let serverTitles = Dictionary(
            (records["thread"] ?? []).map { ($0["id"]?.idString ?? "?", $0["title"]?.stringValue ?? "?") },
            uniquingKeysWith: { first, _ in first })
        let localTitles = try await store.read { db in
            try Dictionary(
                Row.fetchAll(db, sql: "SELECT id, title FROM thread").map {
                    ($0["id"] as String, $0["title"] as String)
                },
                uniquingKeysWith: { first, _ in first })
        }
        #expect(localTitles == serverTitles)
        #expect(serverTitles.values.filter { $0.hasSuffix(" edited") }.count == labels.count * edits)
        for table in ["user", "message"] {
            let local = try await store.read { db in
                try Set(String.fetchAll(db, sql: "SELECT id FROM \(table.quotedDatabaseIdentifier)"))
            }
            #expect(local == Set((records[table] ?? []).compactMap { $0["id"]?.idString }), "\(table) IDs differ")
        }
    }

    @Test("a live process keeps its claims when another opens the file; once it exits they are taken back")
    func claimsOfLiveProcessAreKept() async throws {
        let child = try childExecutable()
        let directory = try makeTemporaryDirectory("claims-process")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("shared.sqlite")
        var keys: [String] = []
        do {
            let store = try SyncStore(.file(database), models: GeneratedModels.all)
            for index in 0..<3 {
                try await store.users.save(User(name: "user \(index)", email: "user\(index)@example.com"))
            }
            #expect(try await store.outbox.entries().map(\.idempotencyKey) == [nil, nil, nil])
        }
        let output = directory.appendingPathComponent("holder.out")
        let input = Pipe()
        let holder = try launch(child, ["hold-claims", database.path], output: output, input: input)
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
        let claimed = try await eventually(timeout: .seconds(30)) {
            ((try? String(contentsOf: output, encoding: .utf8)) ?? "").contains("claimed")
        }
        try #require(claimed, "the holder never claimed: \((try? String(contentsOf: output, encoding: .utf8)) ?? "")")
        #expect(try String(contentsOf: output, encoding: .utf8).contains("claimed 3"))

        // Opened while the other process holds its claims: they stay in flight and are not sent again.
        let store = try SyncStore(.file(database), models: GeneratedModels.all)
        let held = try await store.outbox.entries()
        #expect(held.map(\.state) == [.inFlight, .inFlight, .inFlight])
        // The holder's claim gave each entry its key.
        keys = held.compactMap(\.idempotencyKey)
        #expect(Set(keys).count == 3)
        let stolen = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(stolen.isEmpty, "\(stolen.count) entries claimed by a live process were claimed again")

        // The holder exits without recording anything: its claims are orphaned and taken back.
        try input.fileHandleForWriting.close()
        await waitForExit(holder)
        #expect(holder.terminationStatus == 0)
        let reclaimed = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(reclaimed.compactMap(\.idempotencyKey).sorted() == keys.sorted())
        #expect(reclaimed.allSatisfy { $0.attempts == 2 })
    }

    @Test("a database file the process may not write opens for reading; a save throws a clear error")
    func readOnlyFileOpensForReading() async throws {
        try await expectReadOnlyProbe(directoryWritable: true)
    }

    @Test("a database in a folder the process may not write opens for reading; a save throws a clear error")
    func readOnlyFolderOpensForReading() async throws {
        try await expectReadOnlyProbe(directoryWritable: false)
    }

    /// Creates a store with two users, makes its file (and, unless `directoryWritable`, its
    /// folder) read-only, and runs the read-only probe in a child process without root privileges.
    private func expectReadOnlyProbe(directoryWritable: Bool) async throws {
        let child = try childExecutable()
        let directory = try makeTemporaryDirectory("read-only")
        defer {
            chmod(directory.path, 0o755)
            try? FileManager.default.removeItem(at: directory)
        }
        let database = directory.appendingPathComponent("app.sqlite")
        do {
            let store = try SyncStore(.file(database), models: GeneratedModels.all)
            try await store.users.save([
                User(name: "Ada", email: "ada@example.com"), User(name: "Bob", email: "bob@example.com"),
            ])
        }
        let before = try Data(contentsOf: database)
        #expect(chmod(database.path, 0o444) == 0)
        #expect(chmod(directory.path, directoryWritable ? 0o777 : 0o555) == 0)
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("probe-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: output) }
        let probe = try launch(child, ["read-only-probe", database.path], output: output)
        await waitForExit(probe)
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(probe.terminationStatus == 0, "\(text)")
        let report = try #require(
            try? JSONDecoder().decode(ProbeReportLine.self, from: Data((text.split(separator: "\n").last ?? "").utf8)),
            "no report from the probe: \(text)")
        print("read-only probe (folder writable: \(directoryWritable)): \(text.trimmingCharacters(in: .newlines))")
        if getuid() == 0 { #expect(report.uid == 65534, "the probe kept root privileges") }
        #expect(report.openError == nil, "opening failed: \(report.openError ?? "")")
        #expect(report.users == 2)
        #expect(report.saveError?.contains("read-only") == true, "the save: \(report.saveError ?? "did not throw")")
        #expect(try Data(contentsOf: database) == before, "the read-only file changed")
    }

    // MARK: Helpers

    private func childExecutable() throws -> URL {
        let child = packageBuildDirectory().appendingPathComponent("modelsync-crash-child")
        try #require(
            FileManager.default.isExecutableFile(atPath: child.path),
            "build the child first: swift build --product modelsync-crash-child")
        return child
    }

    private func launch(_ executable: URL, _ arguments: [String], output: URL, input: Pipe? = nil) throws -> Process {
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        chmod(output.path, 0o666)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        if let input { process.standardInput = input }
        try process.run()
        return process
    }

    /// How many edits (or deletes) a writer makes: at chats `index % every == at` of each round,
    /// when more than `lag` records wait (a writer's unedited records carry over between rounds).
    static func countOfChangesToEarlierRecords(every: Int, at: Int, rounds: Int, chats: Int, lag: Int) -> Int {
        var waiting = 0
        var changes = 0
        for chat in 0..<(rounds * chats) {
            waiting += 1
            if (chat % chats) % every == at, waiting > lag {
                waiting -= 1
                changes += 1
            }
        }
        return changes
    }

    /// Pairs of requests for the same entry whose handling overlapped in time.
    static func overlappingRequests(_ requests: [LoggedRequest]) -> [String] {
        let byEntry = Dictionary(grouping: requests) { request in
            request.idempotencyKey.map { "create \($0)" } ?? "\(request.path)"
        }
        var overlaps: [String] = []
        for (entry, requests) in byEntry {
            let ordered = requests.sorted { $0.started < $1.started }
            for (earlier, later) in zip(ordered, ordered.dropFirst()) where later.started < earlier.finished {
                overlaps.append("\(entry): \(earlier.method) and \(later.method)")
            }
        }
        return overlaps
    }
}

/// The JSON line a writer prints (`Tests/CrashChild/TwoProcessWriter.swift`).
struct WriterReportLine: Codable {
    var label: String
    var opens: Int
    var openFailures: Int
    var saves: Int
    var saveFailures: Int
    var lockedErrors: Int
    var pushes: Int
    var pushErrors: Int
    var sent: Int
    var retried: Int
    var converged: Bool
    var leftInOutbox: Int
    var seconds: Double
    var errors: [String]
}

/// The JSON line the read-only probe prints (`Tests/CrashChild/ReadOnlyProbe.swift`).
struct ProbeReportLine: Codable {
    var uid: UInt32
    var openError: String?
    var users: Int?
    var saveError: String?
}
