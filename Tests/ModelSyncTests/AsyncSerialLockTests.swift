import Foundation
import Testing

@testable import ModelSync

/// The lock that keeps a pull and the live stream apart: a waiter whose task is cancelled stops
/// waiting at once, and cancellations racing releases never lose the lock or hand it to a waiter
/// that left.
@Suite("AsyncSerialLock")
struct AsyncSerialLockTests {
    /// Cancels `waiter` (waiting for `lock`, which the test holds) and returns how it ended. After a
    /// minute the lock is released on the holder's behalf: only a waiter that ignores its
    /// cancellation is still waiting then (it then gets the lock, and the test's expectations say so
    /// instead of the test hanging).
    static func cancel<Value>(_ waiter: Task<Value, any Error>, waitingFor lock: AsyncSerialLock) async -> Result<
        Value, any Error
    > {
        waiter.cancel()
        let watchdog = Task {
            guard (try? await Task.sleep(for: .seconds(60))) != nil else { return }
            lock.release()
        }
        defer { watchdog.cancel() }
        return await waiter.result
    }

    @Test(
        "a waiter cancelled while another task holds the lock stops waiting with CancellationError; the holder keeps it"
    )
    func cancelledWaiterReturnsAtOnce() async throws {
        let lock = AsyncSerialLock()
        await lock.acquire()
        let (waits, wait) = AsyncStream<Void>.makeStream()
        lock.onWait { wait.yield() }
        let waiter = Task { try await lock.acquireUnlessCancelled() }
        var started = waits.makeAsyncIterator()
        _ = await started.next()
        let result = await Self.cancel(waiter, waitingFor: lock)
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(lock.isHeld, "the holder still holds the lock")
        lock.release()
        #expect(!lock.isHeld, "the cancelled waiter was not handed the lock")
    }

    @Test("a task already cancelled does not wait for a held lock, and never takes it")
    func alreadyCancelledTaskDoesNotWait() async throws {
        let lock = AsyncSerialLock()
        await lock.acquire()
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await lock.acquireUnlessCancelled()
        }
        let result = await Self.cancel(waiter, waitingFor: lock)  // cancelled already: a second time changes nothing
        #expect(throws: CancellationError.self) { try result.get() }
        lock.release()
        #expect(!lock.isHeld)
    }

    @Test("a cancelled waiter leaves the queue: the lock goes to the next waiter in arrival order")
    func cancelledWaiterLeavesTheQueue() async throws {
        let lock = AsyncSerialLock()
        await lock.acquire()
        let (waits, wait) = AsyncStream<Void>.makeStream()
        lock.onWait { wait.yield() }
        var started = waits.makeAsyncIterator()
        let order = Locked([String]())
        let first = Task {
            try await lock.acquireUnlessCancelled()
            order.withLock { $0.append("first") }
            lock.release()
        }
        _ = await started.next()
        let second = Task {
            await lock.acquire()
            order.withLock { $0.append("second") }
            lock.release()
        }
        _ = await started.next()
        let firstResult = await Self.cancel(first, waitingFor: lock)
        #expect(throws: CancellationError.self) { try firstResult.get() }
        lock.release()
        await second.value
        #expect(order.withLock { $0 } == ["second"])
        #expect(!lock.isHeld)
    }

    @Test(
        "cancellations racing releases: every waiter either takes the lock or gets CancellationError, and the lock ends free"
    )
    func cancelRacingReleaseNeverLosesTheLock() async throws {
        for iteration in 0..<2000 {
            let lock = AsyncSerialLock()
            await lock.acquire()
            let (waits, wait) = AsyncStream<Void>.makeStream()
            lock.onWait { wait.yield() }
            let waiters = (0..<4).map { _ in
                Task { () -> Bool in
                    do {
                        try await lock.acquireUnlessCancelled()
                    } catch {
                        #expect(error is CancellationError)
                        return false
                    }
                    await Task.yield()
                    lock.release()
                    return true
                }
            }
            // Once all four wait, cancel every other waiter while the holder releases, from two tasks at once.
            var queued = waits.makeAsyncIterator()
            for _ in waiters { _ = await queued.next() }
            async let cancelling: Void = {
                for (index, waiter) in waiters.enumerated() where index % 2 == iteration % 2 { waiter.cancel() }
            }()
            async let releasing: Void = lock.release()
            _ = await (cancelling, releasing)
            var acquired = 0
            for waiter in waiters {
                acquired += await waiter.value ? 1 : 0
            }
            #expect(acquired >= 2, "iteration \(iteration): the waiters never cancelled all take the lock")
            #expect(!lock.isHeld, "iteration \(iteration): the lock ends free")
        }
    }
}
