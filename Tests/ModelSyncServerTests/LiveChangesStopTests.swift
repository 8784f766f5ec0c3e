import ChatModels
import Foundation
import ModelSyncServer
import Testing

@testable import ModelSync

extension LiveChangesTests {
    @Test(
        "stopping the live stream while its change waits behind a long pull returns at once: the change is not applied, the pull keeps its lock"
    )
    func stopWhileWaitingBehindAPull() async throws {
        let (server, acme) = try await GeneratedServer.startWithClient()
        defer { Task { await server.stop() } }
        let (store, engine) = try await Self.device(server.url)
        let live = try await engine.startLiveChanges(Self.fastReconnect)
        try await Self.waitFor("the stream to open") { live.state == .live }

        // A long pull: it holds the lock a pull holds while it stores pages.
        let lock = engine.pullOrLiveApply
        await lock.acquire()
        let (waits, wait) = AsyncStream<Void>.makeStream()
        lock.onWait { wait.yield() }
        try await Self.create(acme, [0])
        var waiting = waits.makeAsyncIterator()
        _ = await waiting.next()  // the stream's change waits for the pull

        // A stop that waited for the pull would wait forever here: after a minute the "pull" ends.
        let pullEnded = Mutex(false)
        let watchdog = Task {
            guard (try? await Task.sleep(for: .seconds(60))) != nil else { return }
            pullEnded.withLock { $0 = true }
            lock.release()
        }
        await live.stop()
        watchdog.cancel()
        await watchdog.value
        let stopWaitedForThePull = pullEnded.withLock { $0 }
        #expect(!stopWaitedForThePull, "stop() returned only after the pull released its lock")
        #expect(live.state == .stopped)
        #expect(lock.isHeld, "the pull still holds its lock")
        #expect(try await store.artifacts.find("a0") == nil, "the change that waited was not applied")
        if !stopWaitedForThePull { lock.release() }
        #expect(!lock.isHeld)
    }
}
