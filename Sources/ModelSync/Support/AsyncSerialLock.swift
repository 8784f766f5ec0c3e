import Foundation

/// A lock for async code: one holder at a time; the others wait in arrival order without blocking
/// a thread. Used to keep a pull and the live stream from storing the same model at once.
///
/// A caller of ``acquireUnlessCancelled()`` whose task is cancelled while it waits leaves the queue
/// at once with `CancellationError` (a live stream stopped behind a long pull stops without waiting
/// for it); the lock is never handed to a waiter that left. A cancellation and a ``release()`` that
/// race are decided under one lock: either the waiter got the lock first (it then holds it and
/// must release it), or it left the queue first (the release then goes to the next waiter).
final class AsyncSerialLock: Sendable {
    private enum Resumption {
        /// A waiter of ``acquire()``: it waits whatever happens to its task.
        case uncancellable(CheckedContinuation<Void, Never>)
        /// A waiter of ``acquireUnlessCancelled()``.
        case cancellable(CheckedContinuation<Void, any Error>)

        func grant() {
            switch self {
            case .uncancellable(let continuation): continuation.resume()
            case .cancellable(let continuation): continuation.resume()
            }
        }
    }

    private struct Waiter {
        var id: UInt64?
        var resumption: Resumption
    }

    private struct State {
        var held = false
        var waiters: [Waiter] = []
        var lastID: UInt64 = 0
    }

    private let state = Locked(State())
    private let waitObservers = Locked([@Sendable () -> Void]())

    init() {}

    /// Waits until the lock is free and takes it, even when the calling task is cancelled meanwhile.
    /// Pair every call with ``release()``.
    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            enqueue(.uncancellable(continuation), id: nil)
        }
    }

    /// Waits until the lock is free and takes it, unless the calling task is cancelled first: then
    /// it stops waiting at once, leaves the queue without taking the lock, and throws
    /// `CancellationError`. Pair every call that returns with ``release()``.
    ///
    /// A task cancelled after the lock was handed to it still holds the lock (the call returns).
    func acquireUnlessCancelled() async throws {
        let id = state.withLock { state -> UInt64 in
            state.lastID &+= 1
            return state.lastID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enqueue(.cancellable(continuation), id: id)
            }
        } onCancel: {
            // Runs after the task's cancelled flag is set. If the waiter is queued, it leaves the
            // queue here; if it is not queued yet, `enqueue` sees the flag (both hold `state`'s
            // lock); if it was granted the lock already, it keeps it.
            let left = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            if case .cancellable(let continuation)? = left?.resumption {
                continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Takes the lock when it is free, else queues `resumption` (tagged `id` when it is cancellable).
    /// Called inside the waiting task's continuation, so `Task.isCancelled` is that task's.
    private func enqueue(_ resumption: Resumption, id: UInt64?) {
        enum Outcome { case taken, cancelled, queued }
        let outcome = state.withLock { state -> Outcome in
            if id != nil, Task.isCancelled { return .cancelled }
            if !state.held {
                state.held = true
                return .taken
            }
            state.waiters.append(Waiter(id: id, resumption: resumption))
            return .queued
        }
        switch outcome {
        case .taken:
            resumption.grant()
        case .cancelled:
            if case .cancellable(let continuation) = resumption { continuation.resume(throwing: CancellationError()) }
        case .queued:
            for observer in waitObservers.withLock({ $0 }) { observer() }
        }
    }

    /// Hands the lock to the longest waiter still waiting, or frees it.
    func release() {
        let next = state.withLock { state -> Waiter? in
            guard !state.waiters.isEmpty else {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resumption.grant()
    }

    /// Whether a caller holds the lock (tests check that it ends free).
    var isHeld: Bool { state.withLock { $0.held } }

    /// Calls `observer` each time a caller starts waiting for the lock (tests synchronise on it).
    func onWait(_ observer: @escaping @Sendable () -> Void) {
        waitObservers.withLock { $0.append(observer) }
    }
}
