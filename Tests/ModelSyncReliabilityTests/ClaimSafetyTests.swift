import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
import ModelSyncTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The claim of an entry never sent writes its payload (the record's row as stored then) in the
/// claim transaction. Real processes (`modelsync-crash-child claim-push`) are killed inside that
/// transaction or after it, or claim beside another process on the same file; what the server
/// receives shows whether a claim was lost, doubled, or left a payload behind.
@Suite("Claim safety")
struct ClaimSafetyTests {
    @Test(
        "a process killed inside its claim transaction, after writing claim-time payloads, leaves no trace: the next sync sends each record once, as stored now"
    )
    func killInsideClaimLeavesNoTrace() async throws {
        let fixture = try await ClaimFixture(users: 6)
        defer { fixture.tearDown() }
        // Edited after the kill: a change never sent sends the row as stored when it is sent, so each
        // create carries the edit (a payload left by the rolled-back claim would send the old name, and
        // the edit as an update of its own).
        let store = try await fixture.killInsideClaimThenEdit()
        let report = try await fixture.engine(for: store).push()
        #expect(report.sent == 6)
        try await fixture.expectServerHoldsLocalUsers(store, edited: true)
        let writes = fixture.server.loggedRequests.filter { $0.method != "GET" }
        #expect(
            writes.map(\.method) == Array(repeating: "POST", count: 6), "\(writes.map { "\($0.method) \($0.path)" })")
        #expect(Set(writes.compactMap(\.idempotencyKey)).count == 6)
        #expect(await fixture.server.replayedCreates == 0)
        #expect(try await store.outbox.entries().isEmpty)
    }

    @Test(
        "a process killed inside the claim of a unit, after writing claim-time payloads, leaves no trace: the next sync sends the unit once, as stored now"
    )
    func killInsideUnitClaimLeavesNoTrace() async throws {
        let fixture = try await ClaimFixture(users: 3, asOneUnit: true)
        defer { fixture.tearDown() }
        fixture.server.setAcceptingBatches(true)
        // The edits join the unit's creates (never sent); a payload left by the rolled-back claim would
        // send the old names in the unit and the edits as updates of their own.
        let store = try await fixture.killInsideClaimThenEdit()
        _ = try await fixture.engine(for: store).push()
        try await fixture.expectServerHoldsLocalUsers(store, edited: true)
        let writes = fixture.server.loggedRequests.filter { $0.method != "GET" }
        #expect(writes.count == 1, "\(writes.map { "\($0.method) \($0.path)" })")
        #expect(await fixture.server.replayedCreates == 0)
        #expect(try await store.outbox.entries().isEmpty)
    }

    @Test(
        "a process killed after its claim committed and its creates reached the server (answers lost): the next sync resends each create under its key once, then the edit made since"
    )
    func killAfterClaimResendsUnderSameKey() async throws {
        let fixture = try await ClaimFixture(users: 6)
        defer { fixture.tearDown() }
        // Every write commits and its answer never comes back while the child lives.
        fixture.server.setFaults(FaultPlan(dropResponseRate: 1, droppedResponseDelay: .seconds(600)))
        let claimer = try fixture.launch(["push"], output: "claimer")
        defer { if claimer.process.isRunning { kill(claimer.process.processIdentifier, SIGKILL) } }
        let reached = try await eventually(timeout: .seconds(120)) {
            await fixture.server.records()["user"]?.count == 6
        }
        try #require(reached, "the creates never reached the server: \(fixture.output(of: claimer))")
        kill(claimer.process.processIdentifier, SIGKILL)
        await waitForExit(claimer.process)
        #expect(claimer.process.terminationReason == .uncaughtSignal)
        fixture.server.setFaults(.none)

        // Edited after the claim: the create sends the payload it was claimed with (the server may have
        // it), the edit goes out after it.
        let store = try SyncStore(.file(fixture.database), models: GeneratedModels.all)
        try await fixture.editEveryUser(in: store)
        _ = try await fixture.engine(for: store).push()
        try await fixture.expectServerHoldsLocalUsers(store, edited: true)
        // The log holds answered requests (the lost ones never were): one resend per create, each
        // answered from the answer the server stored under its key, then one update per user.
        let writes = fixture.server.loggedRequests.filter { $0.method != "GET" }
        let creates = writes.filter { $0.method == "POST" }
        #expect(creates.count == 6 && Set(creates.compactMap(\.idempotencyKey)).count == 6)
        #expect(await fixture.server.replayedCreates == 6)
        #expect(writes.count - creates.count == 6, "\(writes.map { "\($0.method) \($0.path)" })")
        #expect(try await store.outbox.entries().isEmpty)
    }

    @Test(
        "two processes claiming entries never sent from one file at once: each record is claimed and sent by one of them, once, as stored"
    )
    func twoProcessesClaimEachEntryOnce() async throws {
        let users = 150
        let fixture = try await ClaimFixture(users: users)
        defer { fixture.tearDown() }
        let second = try fixture.launch(["wait-then-push"], output: "second", input: Pipe())
        let first = try fixture.launch(["pause-in-claim"], output: "first", input: Pipe())
        defer {
            for child in [first, second] where child.process.isRunning {
                kill(child.process.processIdentifier, SIGKILL)
            }
        }
        try await fixture.waitFor("open", in: second)
        // The first holds its claim transaction open, payloads of two entries written and not
        // committed; the second starts its push (its claim waits for the write lock), then the first
        // goes on. From there on both claim and send until the outbox is empty.
        try await fixture.waitFor("claiming 2", in: first)
        try second.input?.fileHandleForWriting.write(contentsOf: Data("go\n".utf8))
        try first.input?.fileHandleForWriting.write(contentsOf: Data("go\n".utf8))
        let finished = try await eventually(timeout: .seconds(240)) {
            !first.process.isRunning && !second.process.isRunning
        }
        #expect(finished, "the processes did not finish: \(fixture.output(of: first)) / \(fixture.output(of: second))")
        for child in [first, second] where child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) }
        await waitForExit(first.process)
        await waitForExit(second.process)
        let sent = [first, second].map { child in
            fixture.output(of: child).split(separator: "\n").compactMap { line in
                line.hasPrefix("sent ") ? Int(line.dropFirst(5)) : nil
            }.last
        }
        #expect(first.process.terminationStatus == 0 && second.process.terminationStatus == 0)
        #expect(sent[0].map { $0 >= 64 } == true, "the first process sent \(String(describing: sent[0]))")
        #expect(sent.compactMap { $0 }.reduce(0, +) == users, "sent by each: \(sent)")
        print(
            "claim safety: two processes sent \(sent.map { $0.map(String.init) ?? "?" }.joined(separator: " + ")) of \(users)"
        )

        let store = try SyncStore(.file(fixture.database), models: GeneratedModels.all)
        try await fixture.expectServerHoldsLocalUsers(store, edited: false)
        let writes = fixture.server.loggedRequests.filter { $0.method != "GET" }
        #expect(writes.count == users, "\(writes.count) write requests for \(users) records")
        #expect(Set(writes.compactMap(\.idempotencyKey)).count == users)
        #expect(await fixture.server.replayedCreates == 0)
        #expect(try await store.outbox.entries().isEmpty)
    }
}

/// A file-backed store with `users` users saved and never sent (each alone, or all as one unit), the
/// reference server (logging its requests), and the child processes of a test.
private struct ClaimFixture {
    struct Child {
        var process: Process
        var output: URL
        var input: Pipe?
    }

    let directory: URL
    let database: URL
    let server: ReferenceServer
    let baseURL: URL
    let users: Int

    init(users: Int, asOneUnit: Bool = false) async throws {
        directory = try makeTemporaryDirectory("claim-safety")
        database = directory.appendingPathComponent("shared.sqlite")
        server = ReferenceServer(models: GeneratedModels.all)
        baseURL = try await server.start()
        server.setRequestLogging(true)
        self.users = users
        let store = try SyncStore(.file(database), models: GeneratedModels.all)
        let saved = (0..<users).map { User(name: "user \($0)", email: "user\($0)@example.com") }
        if asOneUnit {
            try await store.writeAsOneUnit { tx in
                for user in saved { try tx.save(user) }
            }
        } else {
            _ = try await store.users.save(saved)
        }
    }

    func tearDown() {
        let server = self.server
        Task { await server.stop() }
        try? FileManager.default.removeItem(at: directory)
    }

    func launch(_ mode: [String], output name: String, input: Pipe? = nil) throws -> Child {
        let child = packageBuildDirectory().appendingPathComponent("modelsync-crash-child")
        try #require(
            FileManager.default.isExecutableFile(atPath: child.path),
            "build the child first: swift build --product modelsync-crash-child")
        let output = directory.appendingPathComponent("\(name).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = Process()
        process.executableURL = child
        process.arguments = ["claim-push", database.path, baseURL.absoluteString] + mode
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        if let input { process.standardInput = input }
        try process.run()
        return Child(process: process, output: output, input: input)
    }

    func output(of child: Child) -> String {
        (try? String(contentsOf: child.output, encoding: .utf8)) ?? ""
    }

    /// Waits until the child printed `text` (a point it reached), or fails the test.
    func waitFor(_ text: String, in child: Child) async throws {
        let reached = try await eventually(timeout: .seconds(120)) {
            output(of: child).contains(text) || !child.process.isRunning
        }
        try #require(
            reached && output(of: child).contains(text), "the child never printed '\(text)': \(output(of: child))")
    }

    /// Launches a child that stops inside its claim transaction (two entries marked, their payloads
    /// written), SIGKILLs it there, checks it sent nothing, then opens the store and edits every user.
    func killInsideClaimThenEdit() async throws -> SyncStore {
        let claimer = try launch(["stop-in-claim"], output: "claimer")
        defer { if claimer.process.isRunning { kill(claimer.process.processIdentifier, SIGKILL) } }
        try await waitFor("claiming 2", in: claimer)
        kill(claimer.process.processIdentifier, SIGKILL)
        await waitForExit(claimer.process)
        #expect(claimer.process.terminationReason == .uncaughtSignal)
        #expect(
            server.loggedRequests.filter { $0.method != "GET" }.isEmpty, "the child sent before its claim committed")
        let store = try SyncStore(.file(database), models: GeneratedModels.all)
        try await editEveryUser(in: store)
        return store
    }

    func engine(for store: SyncStore) -> SyncEngine {
        SyncEngine(
            store: store, remote: RESTRemote(configuration: .init(baseURL: baseURL), models: GeneratedModels.all),
            configuration: .init(retry: RetryPolicy(initialDelay: 0.01, maximumDelay: 0.1)))
    }

    func editEveryUser(in store: SyncStore) async throws {
        for var user in try await store.users.all() {
            user.name += " edited"
            try await store.users.save(user)
        }
    }

    /// The server holds each local user once, with the name stored locally (edited or not).
    func expectServerHoldsLocalUsers(_ store: SyncStore, edited: Bool) async throws {
        let local = try await store.users.all()
        #expect(local.count == users)
        #expect(local.allSatisfy { $0.name.hasSuffix(" edited") == edited })
        let records = await server.records()["user"] ?? []
        let serverUsers = records.map { ($0["id"]?.idString ?? "?", $0["name"]?.stringValue ?? "?") }
        #expect(serverUsers.count == users, "\(serverUsers.count) users on the server for \(users) local ones")
        #expect(
            Dictionary(serverUsers, uniquingKeysWith: { first, _ in first })
                == Dictionary(uniqueKeysWithValues: local.map { ($0.id.rawValue, $0.name) }))
    }
}
