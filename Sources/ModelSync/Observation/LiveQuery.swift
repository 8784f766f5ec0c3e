import Foundation
import GRDB
import Observation

/// The result of a query, kept up to date on the main actor: an `@Observable` object for SwiftUI
/// views and for code outside views.
///
/// Get one from a repository or the store:
///
/// ```swift
/// let threads = store.threads.live()                                   // every thread
/// let titled = store.threads.live(Thread.filter(Thread.Columns.title == "Trip"))
/// let thread = store.threads.live(threadID)                            // one record, or nil
/// let status = store.threads.liveSyncStatus(of: threadID)              // synced, pending, failed
/// let count = store.live(default: 0) { db in try Thread.fetchCount(db) }
/// ```
///
/// ``value`` is read once, synchronously, when the query is created, so a view never shows an empty
/// state for a moment; afterwards it changes after every committed transaction that changes the
/// result (writes through the store, ID replacements, and what a sync engine pushes and pulls),
/// and only then: a transaction that leaves the result equal does not touch ``value``. A single-record
/// query follows its record when its temporary ID is replaced by the server's, and holds `nil`
/// once the record is deleted.
///
/// The query is fetched off the main actor by a GRDB `ValueObservation`; its values reach the main
/// actor through a buffer that keeps only the newest one, so a busy main actor skips intermediate
/// states and sees the latest. The observation stops with ``stop()`` or when the object is released.
/// If a fetch fails, ``error`` holds the error and the observation stops (``isObserving`` becomes
/// `false`); ``value`` keeps the last result.
@MainActor
@Observable
public final class LiveQuery<Value: Sendable & Equatable> {
    /// The latest result of the query.
    public private(set) var value: Value
    /// Why the query could not be fetched, or `nil`. Once set, the observation has stopped.
    public private(set) var error: (any Error)?
    /// `true` until ``stop()`` is called, the object is released, or a fetch fails.
    public private(set) var isObserving = true

    private let observation = ObservationTask()

    /// Starts observing `fetch` in `store`.
    ///
    /// - Parameters:
    ///   - store: The store to read.
    ///   - defaultValue: The value when the first fetch fails.
    ///   - fetch: Reads the value; it is called again after every change to what it read.
    init(store: SyncStore, default defaultValue: Value, fetch: @escaping @Sendable (Database) throws -> Value) {
        do {
            value = try store.database.read(fetch)
        } catch {
            value = defaultValue
            self.error = error
            isObserving = false
            return
        }
        let values = ValueObservation.tracking(fetch).removeDuplicates()
            .values(in: store.database, bufferingPolicy: .bufferingNewest(1))
        observation.start { @MainActor [weak self] in
            do {
                for try await value in values {
                    guard let self else { return }
                    if value != self.value { self.value = value }
                }
            } catch is CancellationError {
            } catch {
                self?.error = error
            }
            self?.isObserving = false
        }
    }

    deinit {
        observation.cancel()
    }

    /// Stops observing: ``value`` keeps its last result and no longer changes.
    public func stop() {
        observation.cancel()
        isObserving = false
    }
}

/// The task that feeds an observable object, cancelled when the object stops or is released (from
/// a `deinit`, which may run on any thread).
final class ObservationTask: Sendable {
    private let task = Locked<Task<Void, Never>?>(nil)

    func start(_ operation: @escaping @MainActor @Sendable () async -> Void) {
        let newTask = Task { @MainActor in await operation() }
        task.withLock { $0 = newTask }
    }

    func cancel() {
        task.withLock { $0?.cancel() }
    }
}

extension Repository {
    /// Every record, kept up to date: see ``LiveQuery``.
    @MainActor
    public func live() -> LiveQuery<[Model]> {
        LiveQuery(store: store, default: []) { db in try Model.fetchAllOrdered(db) }
    }

    /// The records `request` selects, kept up to date: see ``LiveQuery``.
    @MainActor
    public func live(_ request: QueryInterfaceRequest<Model>) -> LiveQuery<[Model]> {
        LiveQuery(store: store, default: []) { db in try request.fetchAll(db) }
    }

    /// One record, kept up to date: see ``LiveQuery``. It follows the record when its temporary ID
    /// is replaced by the server's, and is `nil` while there is no such record (after a delete).
    @MainActor
    public func live(_ id: Model.ID) -> LiveQuery<Model?> {
        LiveQuery(store: store, default: nil) { db in try Model.find(db, id: id) }
    }

    /// The record's ``SyncStatus``, kept up to date (see ``LiveQuery``): a view shows whether the
    /// record reached the server, is waiting, or was refused and why. It follows the record when its
    /// temporary ID is replaced.
    @MainActor
    public func liveSyncStatus(of id: Model.ID) -> LiveQuery<SyncStatus> {
        let table = Model.schema.tableName
        let foreignKeys = Model.schema.foreignKeys
        return LiveQuery(store: store, default: .synced) { db in
            try Outbox.syncStatus(
                db, table: table, recordID: IDMap.resolve(db, table: table, id: id.rawValue), foreignKeys: foreignKeys)
        }
    }
}

extension SyncStore {
    /// Any value read from the store, kept up to date (see ``LiveQuery``): counts, aggregates, or
    /// records and their related records read together from one snapshot.
    ///
    /// ```swift
    /// let unread = store.live(default: 0) { db in
    ///     try Message.filter(Message.Columns.role == "assistant").fetchCount(db)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - defaultValue: The value when the first read fails (``LiveQuery/error`` says why).
    ///   - fetch: Reads the value (read-only); it runs again after every committed change to the
    ///     tables and rows it read.
    @MainActor
    public func live<Value: Sendable & Equatable>(
        default defaultValue: Value, _ fetch: @escaping @Sendable (Database) throws -> Value
    ) -> LiveQuery<Value> {
        LiveQuery(store: self, default: defaultValue, fetch: fetch)
    }
}
