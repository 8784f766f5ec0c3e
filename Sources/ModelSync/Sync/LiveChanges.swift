import Foundation
import GRDB
import Logging

/// Other devices' changes as they happen: a stream from the server applied to the store as it
/// arrives, started and stopped with the app's lifecycle. Start it with
/// ``SyncEngine/startLiveChanges(_:)``; observe ``state``; ``stop()`` it when the app goes to the
/// background.
///
/// Each change is applied with the merge and conflict rules of a pull, in one transaction with its
/// model's cursor and the stream's token, so that a stream cut at any point (a dropped connection,
/// a killed server, a killed app) resumes after the last change applied: no gap, nothing applied
/// twice. A lost connection is opened again with the engine's ``RetryPolicy``; a token older than
/// what the server keeps makes it pull every model again from no cursor, then stream on.
public final class LiveChanges: Sendable {
    /// Where the stream stands.
    public enum State: Sendable, Hashable {
        /// Opening the stream (or catching up with a pull before it).
        case connecting
        /// Changes arrive as they commit.
        case live
        /// The connection was lost or refused; the next attempt (number `attempt`) is at `at`.
        case reconnecting(attempt: Int, at: Date, reason: String)
        /// The server no longer keeps changes as old as the stream's token: every model is pulled
        /// again from no cursor (paging), then the stream resumes.
        case pullingAfterExpiredToken(reason: String)
        /// Stopped by ``LiveChanges/stop()``.
        case stopped
    }

    /// How the stream connects.
    public struct Configuration: Sendable {
        /// The path of the stream under the remote's base URL.
        public var path: String
        /// Delays between reconnection attempts.
        public var retry: RetryPolicy
        /// Seconds without a byte after which the connection counts as lost (the generated server
        /// sends a heartbeat every 15 s).
        public var idleTimeout: TimeInterval

        /// A configuration; the defaults suit the generated server.
        public init(
            path: String = "/modelsync/live", retry: RetryPolicy = RetryPolicy(initialDelay: 0.25, maximumDelay: 30),
            idleTimeout: TimeInterval = 45
        ) {
            self.path = path
            self.retry = retry
            self.idleTimeout = idleTimeout
        }
    }

    /// Counts since ``SyncEngine/startLiveChanges(_:)``.
    public struct Statistics: Sendable, Hashable {
        /// Changes applied to the store.
        public var applied = 0
        /// Changes received that the store already had (at or before its model's cursor): not applied again.
        public var alreadyApplied = 0
        /// Streams opened (the first one and every reconnection).
        public var connections = 0
        /// Pulls of every model after an expired token.
        public var expiredTokenPulls = 0
    }

    private let status = Locked((state: State.connecting, statistics: Statistics()))
    private let subscribers = Locked((next: 0, continuations: [Int: AsyncStream<State>.Continuation]()))
    private let task = Locked<Task<Void, Never>?>(nil)

    /// The current state.
    public var state: State { status.withLock { $0.state } }

    /// The counts so far.
    public var statistics: Statistics { status.withLock { $0.statistics } }

    /// The current state, then every change of it, until the stream is stopped.
    public func states() -> AsyncStream<State> {
        let (stream, continuation) = AsyncStream<State>.makeStream()
        let id = subscribers.withLock { subscribers in
            subscribers.next += 1
            subscribers.continuations[subscribers.next] = continuation
            return subscribers.next
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        let current = state
        continuation.yield(current)
        if current == .stopped { continuation.finish() }
        return stream
    }

    /// Stops the stream and waits until it stopped. A change being stored finishes first; changes
    /// waiting for a pull to store its pages (a `sync()` beside the stream) are dropped without
    /// waiting for that pull, and their token is not stored, so the next stream delivers them again.
    public func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
    }

    init() {}

    func start(_ body: @escaping @Sendable (LiveChanges) async -> Void) {
        task.withLock { $0 = Task { await body(self) } }
    }

    func set(_ state: State) {
        let changed = status.withLock { status -> Bool in
            guard status.state != state else { return false }
            status.state = state
            return true
        }
        guard changed else { return }
        let continuations = subscribers.withLock { Array($0.continuations.values) }
        for continuation in continuations {
            continuation.yield(state)
            if state == .stopped { continuation.finish() }
        }
    }

    func count(_ update: (inout Statistics) -> Void) {
        status.withLock { update(&$0.statistics) }
    }
}

extension SyncEngine {
    /// The row of `modelsync_pull_state` that keeps the live stream's token (no table has this name).
    static let liveTokenKey = "modelsync.live"

    /// Starts applying other devices' changes as the server streams them (see ``LiveChanges``).
    /// Models that were never pulled are pulled first. Stop it with ``LiveChanges/stop()``.
    ///
    /// ```swift
    /// let live = try await engine.startLiveChanges()
    /// for await state in live.states() { print(state) }   // connecting, live, ...
    /// await live.stop()
    /// ```
    ///
    /// - Throws: ``RemoteError/invalidResponse(_:)`` when the remote cannot stream changes (it is
    ///   not a ``LiveChangesRemote``).
    public func startLiveChanges(_ configuration: LiveChanges.Configuration = LiveChanges.Configuration()) throws
        -> LiveChanges
    {
        guard let remote = remote as? any LiveChangesRemote else {
            throw RemoteError.invalidResponse(
                "\(type(of: remote)) does not stream live changes (it is not a LiveChangesRemote): use RESTRemote "
                    + "with the generated server, or sync() now and then")
        }
        let live = LiveChanges()
        live.start { live in await self.runLiveChanges(live, remote: remote, configuration: configuration) }
        return live
    }

    private func runLiveChanges(
        _ live: LiveChanges, remote: any LiveChangesRemote, configuration: LiveChanges.Configuration
    ) async {
        var failures = 0
        let schemas = store.models.map { $0.schema }
        while !Task.isCancelled {
            do {
                live.set(.connecting)
                let token = try await liveStartToken()
                live.count { $0.connections += 1 }
                for try await message in remote.liveChanges(
                    after: token, path: configuration.path, models: schemas, idleTimeout: configuration.idleTimeout)
                {
                    switch message {
                    case .opened:
                        failures = 0
                        live.set(.live)
                    case .changes(let changes):
                        let (applied, skipped) = try await applyLiveChanges(changes)
                        live.count {
                            $0.applied += applied
                            $0.alreadyApplied += skipped
                        }
                    }
                }
                if Task.isCancelled { break }
                // The server closed the stream (it stopped, or restarted): open it again.
                failures += 1
                try await waitToReconnect(
                    live, failures: failures, retryAfter: nil, reason: "the server closed the stream", configuration)
            } catch let expired as LiveTokenExpired {
                live.set(.pullingAfterExpiredToken(reason: expired.message))
                live.count { $0.expiredTokenPulls += 1 }
                do {
                    try await pullAfterExpiredToken(horizon: expired.horizon)
                } catch {
                    failures += 1
                    try? await waitToReconnect(
                        live, failures: failures, retryAfter: nil, reason: "\(error)", configuration)
                }
            } catch {
                if Task.isCancelled { break }
                failures += 1
                var retryAfter: TimeInterval?
                if case .http(_, _, let after)? = error as? RemoteError { retryAfter = after }
                try? await waitToReconnect(
                    live, failures: failures, retryAfter: retryAfter, reason: "\(error)", configuration)
            }
        }
        live.set(.stopped)
    }

    private func waitToReconnect(
        _ live: LiveChanges, failures: Int, retryAfter: TimeInterval?, reason: String,
        _ configuration: LiveChanges.Configuration
    ) async throws {
        let delay = configuration.retry.delay(afterAttempts: failures, retryAfter: retryAfter)
        live.set(.reconnecting(attempt: failures + 1, at: Date().addingTimeInterval(delay), reason: reason))
        logger.info("live changes: reconnecting in \(delay) s: \(reason)")
        try await Task.sleep(for: .seconds(delay))
    }

    /// Where the stream starts: the token of the last change it applied, or (for a first stream) the
    /// oldest cursor of the models, each model pulled first when it has no cursor.
    func liveStartToken() async throws -> String {
        var missing: [any SyncModel.Type] = []
        for model in store.models {
            if try await PullState.cursor(store, table: model.schema.tableName) == nil { missing.append(model) }
        }
        if !missing.isEmpty { _ = try await pullModels(missing) }
        if let token = try await PullState.cursor(store, table: Self.liveTokenKey) { return token }
        var oldest: (position: LivePosition, token: String)?
        for model in store.models {
            let cursor = try await PullState.cursor(store, table: model.schema.tableName) ?? "0-0"
            guard let position = LivePosition(cursor) else {
                throw RemoteError.invalidResponse(
                    "the cursor '\(cursor)' of \(model.schema.name) is not a live change token (xid-seq): live changes "
                        + "need the generated server (ModelSyncServer)")
            }
            if oldest == nil || position < oldest!.position { oldest = (position, cursor) }
        }
        return oldest?.token ?? "0-0"
    }

    /// Applies `changes` in one transaction, each unless its model's cursor is already at or past
    /// it, with each model's cursor and the stream's token. Waits while a pull stores (a `sync()`
    /// beside the stream): a change the pull already stored is then at or before its model's cursor.
    /// A task cancelled while it waits throws `CancellationError` without storing anything.
    func applyLiveChanges(_ changes: [LiveChange]) async throws -> (applied: Int, skipped: Int) {
        guard let last = changes.last else { return (0, 0) }
        let models = Dictionary(store.models.map { ($0.schema.tableName, $0) }) { first, _ in first }
        let policy = configuration.conflictPolicy
        // A stream stopped while it waits here stops at once (the changes are not stored, nor their
        // token: the next stream delivers them again).
        try await pullOrLiveApply.acquireUnlessCancelled()
        defer { pullOrLiveApply.release() }
        let (applied, skipped, parked) = try await store.write { tx -> (Int, Int, Bool) in
            var applied = 0
            var skipped = 0
            var parked = false
            for change in changes {
                guard let model = models[change.table] else {
                    skipped += 1
                    continue
                }
                let cursor = try String.fetchOne(
                    tx.database, sql: "SELECT cursor FROM \(PullState.table) WHERE tableName = ?",
                    arguments: [change.table])
                if let cursor, let stored = LivePosition(cursor), let position = LivePosition(change.token),
                    position <= stored
                {
                    skipped += 1
                    continue
                }
                let chunk = PullChunk(
                    records: change.record.map { [$0] } ?? [], deletedIDs: change.deletedID.map { [$0] } ?? [],
                    rejectedIDs: [])
                _ = try Self.apply(
                    chunk, model: model, cursor: change.token, crossingOff: false, policy: policy, in: tx)
                if change.record != nil, try PulledOrphans.hasRecords(tx.database, table: change.table) {
                    parked = true
                }
                applied += 1
            }
            try PullState.setCursor(tx.database, table: Self.liveTokenKey, cursor: last.token)
            return (applied, skipped, parked)
        }
        if parked {
            var report = PullReport()
            try await settleKeptAside(into: &report)
        }
        return (applied, skipped)
    }

    /// After `410 Gone`: forgets every cursor, pulls every model from no cursor (a full listing
    /// notices deletions without tombstones), and streams from the server's horizon next.
    func pullAfterExpiredToken(horizon: String?) async throws {
        try await store.writeBypassingSync { db in
            try db.execute(sql: "DELETE FROM \(PullState.table)")
            if let horizon { try PullState.setCursor(db, table: Self.liveTokenKey, cursor: horizon) }
        }
        _ = try await pullModels(store.models)
    }
}

/// A live change token of the generated server, `"xid-seq"`, ordered.
struct LivePosition: Comparable {
    var xid: UInt64
    var seq: Int64

    init?(_ token: String) {
        let parts = token.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let xid = UInt64(parts[0]), let seq = Int64(parts[1]) else { return nil }
        self.xid = xid
        self.seq = seq
    }

    static func < (lhs: LivePosition, rhs: LivePosition) -> Bool { (lhs.xid, lhs.seq) < (rhs.xid, rhs.seq) }
}
