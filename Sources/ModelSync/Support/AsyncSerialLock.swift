import Foundation

/// A lock for async code: one holder at a time; the others wait in arrival order without blocking
/// a thread. Used to keep a pull and the live stream from storing the same model at once.
final class AsyncSerialLock: Sendable {
    private let state = Locked((held: false, waiters: [CheckedContinuation<Void, Never>]()))
    private let waitObservers = Locked([@Sendable () -> Void]())

    init() {}

    /// Waits until the lock is free and takes it. Pair every call with ``release()``.
    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let taken = state.withLock { state -> Bool in
                if !state.held {
                    state.held = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if taken {
                continuation.resume()
            } else {
                for observer in waitObservers.withLock({ $0 }) { observer() }
            }
        }
    }

    /// Hands the lock to the longest waiter, or frees it.
    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }

    /// Calls `observer` each time a caller starts waiting for the lock (tests synchronise on it).
    func onWait(_ observer: @escaping @Sendable () -> Void) {
        waitObservers.withLock { $0.append(observer) }
    }
}
