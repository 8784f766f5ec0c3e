import Foundation
import GRDB
import Observation

/// What a sync engine is doing, for a UI: an `@Observable` object on the main actor that a view
/// reads for a "3 changes waiting" badge, a spinner, or a "2 changes refused" banner.
///
/// ```swift
/// let activity = SyncActivity(engine: engine)
/// await activity.sync()              // a "Sync now" button
/// activity.queued                    // changes waiting to be sent
/// activity.isSyncing                 // a spinner
/// activity.lastError                 // why the last sync failed
/// ```
///
/// The counts come from the store's outbox, observed by a GRDB `ValueObservation` (so they also
/// change when the app saves a record, and when another store or process on the same file sends
/// changes); ``sent`` and ``pulls`` come from ``SyncEngine/progress()``. Both reach the main actor through
/// buffers that keep only the newest value. Observing stops with ``stop()`` or when the object is
/// released.
@MainActor
@Observable
public final class SyncActivity {
    /// The engine this object reports on and runs.
    public let engine: SyncEngine

    /// Changes waiting to be sent (including those waiting for a retry or for a parent record).
    public private(set) var queued = 0
    /// Changes being sent now, by any engine on the store's file.
    public private(set) var inFlight = 0
    /// Changes the server refused for good: each record's ``SyncStatus`` says why
    /// (``Repository/liveSyncStatus(of:)``).
    public private(set) var failed = 0
    /// Changes the server accepted since the engine started.
    public private(set) var sent = 0
    /// Per model name (`Message`), how far its latest pull is: items received, items stored, and
    /// the total when the server tells it (``PullProgress``), for a "12,000 of 100,000" bar.
    public private(set) var pulls: [String: PullProgress] = [:]
    /// Why the last ``sync()`` or ``push()`` started here failed (or why observing the outbox
    /// failed); `nil` after one succeeds.
    public private(set) var lastError: (any Error)?
    /// When the last ``sync()`` started here succeeded.
    public private(set) var lastSyncDate: Date?
    /// How many ``sync()`` and ``push()`` calls started here are running.
    private var runningOperations = 0

    /// `true` while changes are being sent (by any engine on the store's file).
    public var isSendingChanges: Bool { inFlight > 0 }
    /// `true` while a ``sync()`` or ``push()`` started here runs, or while changes are being sent.
    /// (A pull started directly on the engine is not seen.)
    public var isSyncing: Bool { runningOperations > 0 || inFlight > 0 }

    private let outboxTask = ObservationTask()
    private let progressTask = ObservationTask()

    /// Starts observing the outbox of `engine`'s store and the engine's progress. The counts are
    /// read once, synchronously, before this returns.
    public init(engine: SyncEngine) {
        self.engine = engine
        let database = engine.store.database
        do {
            apply(try database.read { db in try Outbox.counts(db) })
        } catch {
            lastError = error
        }
        let counts = ValueObservation.tracking { db in try Outbox.counts(db) }.removeDuplicates()
            .values(in: database, bufferingPolicy: .bufferingNewest(1))
        outboxTask.start { @MainActor [weak self] in
            do {
                for try await counts in counts {
                    guard let self else { return }
                    self.apply(counts)
                }
            } catch is CancellationError {
            } catch {
                self?.lastError = error
            }
        }
        let progress = engine.progress()
        progressTask.start { @MainActor [weak self] in
            for await progress in progress {
                guard let self else { return }
                if self.sent != progress.sent { self.sent = progress.sent }
                if self.pulls != progress.pulls { self.pulls = progress.pulls }
            }
        }
    }

    deinit {
        outboxTask.cancel()
        progressTask.cancel()
    }

    /// Pushes queued changes and pulls every model (``SyncEngine/sync()``). A failure is kept in
    /// ``lastError`` instead of thrown, for a button that has nowhere to show it.
    public func sync() async {
        await run {
            try await $0.sync()
            self.lastSyncDate = Date()
        }
    }

    /// Sends queued changes (``SyncEngine/push(waitForRetries:)``), keeping a failure in
    /// ``lastError``.
    public func push() async {
        await run { try await $0.push() }
    }

    /// Stops observing: the counts no longer change. ``sync()`` and ``push()`` still work.
    public func stop() {
        outboxTask.cancel()
        progressTask.cancel()
    }

    private func run(_ operation: (SyncEngine) async throws -> Void) async {
        runningOperations += 1
        defer { runningOperations -= 1 }
        do {
            try await operation(engine)
            lastError = nil
        } catch {
            lastError = error
        }
    }

    private func apply(_ counts: [OutboxEntryState: Int]) {
        let queued = counts[.pending, default: 0]
        let inFlight = counts[.inFlight, default: 0]
        let failed = counts[.failed, default: 0]
        if self.queued != queued { self.queued = queued }
        if self.inFlight != inFlight { self.inFlight = inFlight }
        if self.failed != failed { self.failed = failed }
    }
}
