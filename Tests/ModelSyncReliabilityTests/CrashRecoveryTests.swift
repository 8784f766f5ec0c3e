import ChatModels
import Foundation
import GRDB
import ModelSync
import ModelSyncReferenceServer
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real process (`modelsync-crash-child`) creates chats in a file-backed store and syncs them to
/// the reference server running in this test process; it is killed with SIGKILL at random moments
/// and started again. After every kill the database passes `PRAGMA integrity_check` and the server
/// holds no duplicate; in the end everything is synced exactly once.
///
/// `MODELSYNC_CRASH_KILLS` sets the number of kills (default 20), `MODELSYNC_CRASH_SEED` replays
/// the kill moments.
@Suite("Crash recovery")
struct CrashRecoveryTests {
    @Test("a child process killed with SIGKILL at random moments converges after each restart")
    func killedChildConverges() async throws {
        let child = packageBuildDirectory().appendingPathComponent("modelsync-crash-child")
        try #require(
            FileManager.default.isExecutableFile(atPath: child.path),
            "build the child first: swift build --product modelsync-crash-child")
        let kills = integer(fromEnvironment: "MODELSYNC_CRASH_KILLS", default: 20)
        let seed = seed(fromEnvironment: "MODELSYNC_CRASH_SEED")
        print("crash: seed \(seed), \(kills) kills (replay with MODELSYNC_CRASH_SEED=\(seed))")
        var random = SplitMix64(seed: seed)
        let directory = try makeTemporaryDirectory("crash")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("child.sqlite")
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        // Failures and lost responses widen the windows in which a kill lands mid-request.
        server.setFaults(
            FaultPlan(
                failBeforeCommitRate: 0.1, dropResponseRate: 0.1, latency: 0...10,
                droppedResponseDelay: .milliseconds(2_500), seed: seed))
        // Enough chats that the child is still working when every kill lands (with fewer, a fast
        // child converged before the 20th kill and later launches ended on their own).
        let target = kills * 5

        var killed = 0
        var launches = 0
        var exitedOnItsOwn = 0
        while killed < kills && launches < kills * 3 {
            let process = try launch(child, database: database, baseURL: baseURL, target: target)
            launches += 1
            try await Task.sleep(for: .milliseconds(Int.random(in: 30...400, using: &random)))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed += 1
            } else {
                exitedOnItsOwn += 1
            }
            process.waitUntilExit()
            try await expectSoundAfterRestart(database: database, server: server)
        }
        #expect(killed == kills)

        // The network heals; one last run finishes the work.
        server.setFaults(.none)
        let final = try launch(child, database: database, baseURL: baseURL, target: target, captureOutput: true)
        // A bound against a hang, not a speed check: alone the last run takes about a second, but with
        // the whole suite beside it on 2 cores the in-process server answered slowly enough that 60 s
        // once ran out.
        let finished = try await eventually(timeout: .seconds(240)) { !final.isRunning }
        if !finished { kill(final.processIdentifier, SIGKILL) }
        final.waitUntilExit()
        #expect(finished && final.terminationStatus == 0)
        let output = (final.standardOutput as? Pipe).map {
            String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        #expect(output?.contains("converged") == true)

        let records = await server.records()
        #expect(records["thread"]?.count == target)
        #expect(records["user"]?.count == target)
        #expect(records["message"]?.count == target * 2)
        try await expectSoundAfterRestart(database: database, server: server)
        let store = try SyncStore(.file(database), models: GeneratedModels.all)
        #expect(try await store.outbox.entries().isEmpty)
        let local = try await store.read { db in
            (
                try String.fetchAll(db, sql: "SELECT id FROM thread"),
                try String.fetchAll(db, sql: "SELECT id FROM message"),
                try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count
            )
        }
        #expect(Set(local.0) == Set((records["thread"] ?? []).compactMap { $0["id"]?.idString }))
        #expect(Set(local.1) == Set((records["message"] ?? []).compactMap { $0["id"]?.idString }))
        #expect(local.2 == 0)
        print(
            "crash: \(killed) kills in \(launches) launches (\(exitedOnItsOwn) runs ended before the kill), "
                + "\(target) chats synced once each, \(await server.replayedCreates) creates replayed")
    }

    private func launch(_ child: URL, database: URL, baseURL: URL, target: Int, captureOutput: Bool = false) throws
        -> Process
    {
        let process = Process()
        process.executableURL = child
        process.arguments = [database.path, baseURL.absoluteString, String(target)]
        process.standardOutput = captureOutput ? Pipe() : FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The database passes an integrity check and the server holds no duplicate chat.
    private func expectSoundAfterRestart(database: URL, server: ReferenceServer) async throws {
        let queue = try DatabaseQueue(path: database.path)
        let integrity = try await queue.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") }
        #expect(integrity == "ok")
        try queue.close()
        let records = await server.records()
        let titles = (records["thread"] ?? []).compactMap { $0["title"]?.stringValue }
        let bodies = (records["message"] ?? []).compactMap { $0["body"]?.stringValue }
        let names = (records["user"] ?? []).compactMap { $0["name"]?.stringValue }
        #expect(Set(titles).count == titles.count, "a thread was created twice on the server")
        #expect(Set(bodies).count == bodies.count, "a message was created twice on the server")
        #expect(Set(names).count == names.count, "a user was created twice on the server")
    }
}

/// The folder of the build products (`.build/debug` or a custom scratch path), next to the test bundle.
func packageBuildDirectory() -> URL {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = executable.deletingLastPathComponent()
    // On macOS the bundle is `ModelSyncPackageTests.xctest/Contents/MacOS/...`.
    while directory.path.contains(".xctest") { directory = directory.deletingLastPathComponent() }
    return directory
}
