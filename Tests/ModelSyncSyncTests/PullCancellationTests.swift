import ChatModels
import Foundation
import Testing

@testable import ModelSync

@Suite("A pull cancelled while it waits")
struct PullCancellationTests {
    @Test(
        "a pull cancelled while it waits for the live stream's apply ends at once with CancellationError, storing nothing"
    )
    func cancelledWhileWaitingForTheLiveApply() async throws {
        let harness = try await SyncHarness.start()
        defer { Task { await harness.server.stop() } }
        let (user, _) = try await harness.seedServerThread()

        // The live stream's apply holds the lock a pull takes before it stores pages.
        let lock = harness.engine.pullOrLiveApply
        await lock.acquire()
        let (waits, wait) = AsyncStream<Void>.makeStream()
        lock.onWait { wait.yield() }
        let engine = harness.engine
        let pull = Task { try await engine.pull(User.self) }
        var waiting = waits.makeAsyncIterator()
        _ = await waiting.next()  // the pull waits for the lock

        // A pull that kept waiting would wait as long as the apply: after a minute the apply ends.
        let applyEnded = Mutex(false)
        let watchdog = Task {
            guard (try? await Task.sleep(for: .seconds(60))) != nil else { return }
            applyEnded.withLock { $0 = true }
            lock.release()
        }
        pull.cancel()
        let outcome = await pull.result
        watchdog.cancel()
        await watchdog.value
        let pullWaitedForTheApply = applyEnded.withLock { $0 }
        #expect(!pullWaitedForTheApply, "the cancelled pull ended only after the apply released the lock")
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(lock.isHeld, "the apply still holds its lock")
        if !pullWaitedForTheApply { lock.release() }
        #expect(try await harness.store.users.all().isEmpty)

        // The next pull stores what the cancelled one did not.
        try await harness.engine.pull(User.self)
        let stored = try await harness.store.users.all()
        #expect(stored.map(\.id.rawValue) == [user["id"]?.idString])
        #expect(!lock.isHeld)
    }
}
