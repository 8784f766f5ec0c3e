import Foundation
import GRDB
import Logging

/// When and how often failed sends are retried.
public struct RetryPolicy: Sendable, Hashable {
    /// Delay before the first retry, in seconds.
    public var initialDelay: TimeInterval
    /// Upper bound of the delay (a server's `Retry-After` is honoured even when longer).
    public var maximumDelay: TimeInterval
    public var multiplier: Double
    /// Fraction of each delay that is randomised (0 = none, 1 = "full jitter").
    public var jitter: Double

    public init(
        initialDelay: TimeInterval = 0.5, maximumDelay: TimeInterval = 60, multiplier: Double = 2, jitter: Double = 0.5
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay before attempt number `attempts + 1`.
    public func delay(afterAttempts attempts: Int, retryAfter: TimeInterval? = nil) -> TimeInterval {
        if let retryAfter { return retryAfter }
        let exponential = initialDelay * pow(multiplier, Double(max(0, attempts - 1)))
        let capped = min(maximumDelay, exponential)
        return capped * (1 - jitter * Double.random(in: 0...1))
    }
}

/// Counts a UI can show while syncing.
public struct SyncProgress: Sendable, Hashable {
    /// Entries waiting to be sent (including those waiting for a retry or for a parent).
    public var queued: Int
    /// Entries being sent now.
    public var inFlight: Int
    /// Entries the server accepted since the engine started.
    public var sent: Int
    /// Entries refused for good (see each record's sync status for the reason).
    public var failed: Int

    public init(queued: Int = 0, inFlight: Int = 0, sent: Int = 0, failed: Int = 0) {
        self.queued = queued
        self.inFlight = inFlight
        self.sent = sent
        self.failed = failed
    }
}

/// What one ``SyncEngine/push(waitForRetries:)`` did.
public struct PushReport: Sendable, Hashable {
    public var sent = 0
    public var retried = 0
    /// Entries refused for good, by the server or because its answer could not be stored (each
    /// record's ``SyncStatus`` says why).
    public var failed = 0
    /// Updates the server refused because its copy was newer; the ``ConflictPolicy`` decided.
    public var conflicts = 0
    /// Entries still queued (waiting for a retry time or for a parent that failed).
    public var remaining = 0

    public init() {}
}

/// What one ``SyncEngine/sync()`` did: its push, then its pull.
public struct SyncReport: Sendable, Hashable {
    public var push: PushReport
    public var pull: PullReport

    public init(push: PushReport = PushReport(), pull: PullReport = PullReport()) {
        self.push = push
        self.pull = pull
    }
}

/// What one pull did.
public struct PullReport: Sendable, Hashable {
    public var inserted = 0
    public var updated = 0
    public var deleted = 0
    /// Server records not applied because the local record had unsent changes.
    public var keptLocal = 0
    /// Listed records that could not be applied, each with the reason: unreadable values, or a
    /// reference to a record the server did not list (kept aside and applied by a later pull once
    /// that record arrives). The rest of the pull is applied.
    public var rejected: [RejectedRecord] = []

    public init() {}
}

/// Drains the outbox to a server and pulls server state back.
///
/// ```swift
/// let engine = SyncEngine(store: store, remote: RESTRemote(configuration: ..., models: GeneratedModels.all))
/// try await engine.sync()   // push every queued change, then pull every model
/// ```
///
/// Push sends each record's changes in order, a child only once its parents have server IDs, and
/// unrelated records side by side (up to ``Configuration/maximumConcurrentRequests``). Each answer
/// is recorded in one transaction: a create's server ID replaces the temporary ID everywhere as the
/// entry leaves the outbox. Transient failures retry with backoff; other 4xx answers mark the
/// entry failed with the server's message.
public actor SyncEngine {
    public struct Configuration: Sendable {
        public var maximumConcurrentRequests: Int
        public var retry: RetryPolicy
        public var conflictPolicy: ConflictPolicy
        /// How long ``SyncEngine/push(waitForRetries:)`` waits for scheduled retries at most.
        public var maximumRetryWait: TimeInterval

        public init(
            maximumConcurrentRequests: Int = 4, retry: RetryPolicy = RetryPolicy(),
            conflictPolicy: ConflictPolicy = .keepLocalChanges, maximumRetryWait: TimeInterval = 300
        ) {
            self.maximumConcurrentRequests = maximumConcurrentRequests
            self.retry = retry
            self.conflictPolicy = conflictPolicy
            self.maximumRetryWait = maximumRetryWait
        }
    }

    public let store: SyncStore
    public let remote: any SyncRemote
    public let configuration: Configuration
    private let logger: Logger
    private var sentCount = 0
    private let progressSubscribers = Locked([Int: AsyncStream<SyncProgress>.Continuation]())
    private let nextSubscriber = Locked(0)

    public init(
        store: SyncStore, remote: any SyncRemote, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "ModelSync.SyncEngine")
    ) {
        self.store = store
        self.remote = remote
        self.configuration = configuration
        self.logger = logger
    }

    /// Pushes every queued change, then pulls every model and stores what it fetched in one
    /// transaction (a record may reference one listed later, in any model).
    @discardableResult
    public func sync() async throws -> SyncReport {
        let push = try await push()
        let pull = try await pullModels(store.models)
        return SyncReport(push: push, pull: pull)
    }

    // MARK: Push

    enum Outcome: Sendable {
        /// The server accepted the entry; `serverCopy` is its answer (a create's or update's record).
        case succeeded(OutboxEntry, serverCopy: RecordFields?)
        case transientFailure(OutboxEntry, RemoteError)
        /// Refused for good; `notFound` when the server answered 404 or 410.
        case permanentFailure(OutboxEntry, String, notFound: Bool = false)
        /// An update the server refused because its copy is newer.
        case conflict(OutboxEntry, serverCopy: RecordFields)
        case cancelled(OutboxEntry)

        var entry: OutboxEntry {
            switch self {
            case .succeeded(let entry, _), .transientFailure(let entry, _), .permanentFailure(let entry, _, _),
                .conflict(let entry, _), .cancelled(let entry):
                return entry
            }
        }
    }

    /// How many answers are recorded in one transaction at most (observers see one change per batch).
    static let outcomeBatchSize = 64

    /// Sends queued changes until none is ready. With `waitForRetries` (the default) it also waits
    /// for entries scheduled for a retry, up to ``Configuration/maximumRetryWait``; entries blocked
    /// behind a failed parent, and failed entries, remain queued.
    ///
    /// Every entry the push claims ends it sent, scheduled for a retry, or failed with a reason: a
    /// problem with one record (a refused change, an answer that cannot be stored) fails that record
    /// and the push goes on. The push throws only when the store itself fails.
    ///
    /// Answers are recorded in batches, one transaction each, so observers see one change per batch.
    ///
    /// Cancelling the calling task stops the push: requests in flight are abandoned and their entries
    /// go back to the queue, to be sent again (with the same idempotency key) later.
    @discardableResult
    public func push(waitForRetries: Bool = true) async throws -> PushReport {
        var report = PushReport()
        // Claimed entries whose outcome is not recorded yet: released if the push ends abnormally.
        var unrecorded: [Int64: OutboxEntry] = [:]
        do {
            try await pushLoop(waitForRetries: waitForRetries, report: &report, unrecorded: &unrecorded)
        } catch {
            // The store failed (or the wait was cancelled): whatever was claimed and not recorded goes
            // back to the queue, so that no entry stays in flight for the rest of the process.
            let stranded = Array(unrecorded.values)
            if !stranded.isEmpty {
                let outbox = store.outbox
                _ = try? await Task { try await outbox.releaseClaims(stranded) }.value
            }
            await publishProgress()
            throw error
        }
        report.remaining = try await store.outbox.counts()[.pending, default: 0]
        await publishProgress()
        return report
    }

    private func pushLoop(
        waitForRetries: Bool, report: inout PushReport, unrecorded: inout [Int64: OutboxEntry]
    ) async throws {
        let deadline = Date().addingTimeInterval(configuration.maximumRetryWait)
        let limit = max(1, configuration.maximumConcurrentRequests)
        let claimSize = max(limit, Self.outcomeBatchSize)
        let remote = self.remote
        let store = self.store
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            var running = 0
            // Entries claimed ahead (in batches) are started as slots free up, and answers are
            // recorded in batches: every slot stays busy without a transaction per request.
            var claimedAhead: [OutboxEntry] = []
            var answered: [Outcome] = []
            var lastClaim = Date()
            while true {
                while running < limit {
                    if claimedAhead.isEmpty, !Task.isCancelled {
                        // A claim must see every answer so far (a child waits for its parent's ID).
                        try await recordAnswered(&answered, report: &report, unrecorded: &unrecorded)
                        // Not cancellable: entries claimed must reach the loop, which requeues them on cancel.
                        let outbox = store.outbox
                        let now = Date()
                        lastClaim = now
                        claimedAhead = try await Task { try await outbox.claimReadyEntries(limit: claimSize, now: now) }
                            .value
                        for entry in claimedAhead { unrecorded[entry.sequence] = entry }
                        if !claimedAhead.isEmpty { await publishProgress() }
                    }
                    guard !claimedAhead.isEmpty, !Task.isCancelled else { break }
                    let entry = claimedAhead.removeFirst()
                    running += 1
                    group.addTask { await Self.send(entry, to: remote, store: store) }
                }
                if running == 0 {
                    try await recordAnswered(&answered, report: &report, unrecorded: &unrecorded)
                    guard waitForRetries, !Task.isCancelled, Date() < deadline,
                        let next = try await nextRetryTime(after: lastClaim), next < deadline
                    else { break }
                    let wait = max(0.001, next.timeIntervalSinceNow)
                    try await Task.sleep(for: .milliseconds(Int(wait * 1000) + 1))
                    continue
                }
                guard let outcome = try await group.next() else { break }
                running -= 1
                answered.append(outcome)
                if answered.count >= Self.outcomeBatchSize {
                    try await recordAnswered(&answered, report: &report, unrecorded: &unrecorded)
                }
            }
            // Claimed but never sent (the push was cancelled): back to the queue.
            answered += claimedAhead.map { .cancelled($0) }
            try await recordAnswered(&answered, report: &report, unrecorded: &unrecorded)
        }
    }

    /// Records the answers gathered so far, in one transaction.
    private func recordAnswered(
        _ answered: inout [Outcome], report: inout PushReport, unrecorded: inout [Int64: OutboxEntry]
    ) async throws {
        guard !answered.isEmpty else { return }
        let batch = answered
        answered.removeAll()
        try await record(batch, into: &report)
        for outcome in batch { unrecorded.removeValue(forKey: outcome.entry.sequence) }
        // The server no longer accepts this app's models: stop, the changes stay queued (not failed).
        for case .transientFailure(_, let error) in batch where error.isClientTooOld { throw error }
    }

    private static func send(_ entry: OutboxEntry, to remote: any SyncRemote, store: SyncStore) async -> Outcome {
        do {
            let schema = try store.model(forTable: entry.tableName).schema
            switch entry.operation {
            case .create:
                let fields = try payloadFields(entry)
                let created = try await remote.create(fields, of: schema, idempotencyKey: entry.idempotencyKey)
                return .succeeded(entry, serverCopy: created)
            case .update:
                let fields = try await RecordVersions.basing(
                    try payloadFields(entry), table: entry.tableName, recordID: entry.recordID, in: store)
                let updated = try await remote.update(fields, of: schema, idempotencyKey: entry.idempotencyKey)
                return .succeeded(entry, serverCopy: updated)
            case .delete:
                try await remote.delete(id: entry.recordID, of: schema)
                return .succeeded(entry, serverCopy: nil)
            }
        } catch is CancellationError {
            return .cancelled(entry)
        } catch RemoteError.conflict(_, let serverCopy) where entry.operation == .update {
            return .conflict(entry, serverCopy: serverCopy)
        } catch let error as RemoteError {
            if error.isTransient { return .transientFailure(entry, error) }
            if case .http(let status, _, _) = error, status == 404 || status == 410 {
                return .permanentFailure(entry, error.description, notFound: true)
            }
            return .permanentFailure(entry, error.description)
        } catch {
            return .permanentFailure(entry, "\(error)")
        }
    }

    private static func payloadFields(_ entry: OutboxEntry) throws -> RecordFields {
        guard let payload = entry.payload, let object = try JSONValue.parse(Data(payload.utf8)).objectValue else {
            throw RemoteError.invalidResponse("outbox entry \(entry.sequence) has no payload")
        }
        return object
    }

    /// Records a batch of outcomes in one transaction. The write runs even when the push is being
    /// cancelled: an answer the server gave must not be forgotten.
    private func record(_ outcomes: [Outcome], into report: inout PushReport) async throws {
        let store = self.store
        let retry = configuration.retry
        let policy = configuration.conflictPolicy
        let recorded = try await Task {
            try await store.write { tx in
                outcomes.map { OutcomeRecorder.record($0, in: tx, retry: retry, policy: policy) }
            }
        }.value
        for (outcome, result) in zip(outcomes, recorded) {
            let entry = outcome.entry
            switch result {
            case .sent(let serverID):
                report.sent += 1
                sentCount += 1
                logger.debug(
                    "sent",
                    metadata: [
                        "operation": "\(entry.operation.rawValue)", "table": "\(entry.tableName)",
                        "id": "\(entry.recordID)", "serverID": "\(serverID ?? "-")",
                    ])
            case .willRetry(let reason):
                report.retried += 1
                logger.debug(
                    "will retry",
                    metadata: ["table": "\(entry.tableName)", "id": "\(entry.recordID)", "error": "\(reason)"])
            case .failed(let reason):
                report.failed += 1
                logger.warning(
                    "a change failed",
                    metadata: ["table": "\(entry.tableName)", "id": "\(entry.recordID)", "reason": "\(reason)"])
            case .conflict(let resolution):
                report.conflicts += 1
                logger.info(
                    "the server's copy was newer",
                    metadata: ["table": "\(entry.tableName)", "id": "\(entry.recordID)", "resolution": "\(resolution)"])
            case .requeued:
                break
            }
        }
        await publishProgress()
    }

    /// The earliest retry scheduled after `lastClaim`. Entries that were already due at the last
    /// claim but were not claimed wait for something else (a parent, an earlier entry of their
    /// record): waiting for them would only spin.
    private func nextRetryTime(after lastClaim: Date) async throws -> Date? {
        let now = lastClaim.timeIntervalSinceReferenceDate
        return try await store.read { db in
            try Double.fetchOne(
                db,
                sql: """
                    SELECT MIN(nextAttemptAt) FROM \(SchemaBuilder.outboxTable)
                    WHERE state = 'pending' AND nextAttemptAt > ?
                    """,
                arguments: [now]
            ).map { Date(timeIntervalSinceReferenceDate: $0) }
        }
    }

    // MARK: Saving through the server

    /// How ``SyncEngine/save(_:policy:)`` reaches the server.
    public enum SavePolicy: Sendable, Hashable {
        /// Store locally and queue the change (what repositories do); it is pushed later.
        case localFirst
        /// Send to the server first and store the server's record with its permanent ID. When the
        /// server cannot be reached (a transient failure), fall back to `localFirst` when
        /// `fallBackToLocal` is `true`, or throw.
        case remoteFirst(fallBackToLocal: Bool)
    }

    /// Saves a record with the given policy and returns it as stored: with `remoteFirst`, a new
    /// record of a server-ID model comes back with its permanent ID and no temporary ID ever exists.
    ///
    /// A record with queued changes is always saved local-first, so that its changes stay in order.
    @discardableResult
    public func save<Model: SyncModel>(_ record: Model, policy: SavePolicy) async throws -> Model {
        guard case .remoteFirst(let fallBackToLocal) = policy else {
            return try await store.repository(for: Model.self).save(record)
        }
        let schema = Model.schema
        let table = schema.tableName
        let pending = try await store.read { db in
            try OutboxStore.hasEntries(db, table: table, recordID: record.id.rawValue)
        }
        if pending { return try await store.repository(for: Model.self).save(record) }
        let exists = try await store.repository(for: Model.self).find(record.id) != nil
        let fields =
            try JSONValue.parse(
                Data(try PayloadWriter.payload(values: record.databaseValues(), schema: schema).utf8)
            ).objectValue ?? [:]
        // The create's key goes with it into the outbox if the answer never comes: the server may
        // have stored the record, and a later push must be recognised as the same create.
        let idempotencyKey = UUID().uuidString.lowercased()
        do {
            var stored = fields
            if exists {
                let based = try await RecordVersions.basing(
                    fields, table: table, recordID: record.id.rawValue, in: store)
                let answer = try await remote.update(based, of: schema, idempotencyKey: idempotencyKey)
                if let version = answer?[RecordMetadata.version] { stored[RecordMetadata.version] = version }
            } else {
                let created = try await remote.create(fields, of: schema, idempotencyKey: idempotencyKey)
                if schema.idGeneration == .server, let serverID = created["id"] { stored["id"] = serverID }
                if let version = created[RecordMetadata.version] { stored[RecordMetadata.version] = version }
            }
            let policy = configuration.conflictPolicy
            let serverRecord = stored
            return try await store.write { tx in
                _ = try tx.applyRemote(serverRecord, model: Model.self, policy: policy)
                guard let id = serverRecord["id"]?.idString, let saved: Model = try tx.find(Model.ID(id)) else {
                    throw RemoteError.invalidResponse("the server's \(schema.name) could not be stored")
                }
                return saved
            }
        } catch let error as RemoteError where error.isTransient && fallBackToLocal {
            logger.info("server unreachable, saving locally", metadata: ["table": "\(table)", "reason": "\(error)"])
            return try await store.write { tx in try tx.save(record, idempotencyKey: idempotencyKey) }
        }
    }

    // MARK: Pull

    /// Fetches the server's records of `model` (incrementally, from the cursor of the last pull, when
    /// the server gives one) and merges them: new and changed records are stored, deleted ones are
    /// deleted locally with their delete rules, and records with unsent local changes are handled by
    /// the conflict policy (by default they keep the local changes).
    @discardableResult
    public func pull<Model: SyncModel>(_ model: Model.Type) async throws -> PullReport {
        try await pullModel(model)
    }

    /// What the server listed for one model: every page, fetched before anything is stored.
    private struct FetchedChanges: Sendable {
        var model: any SyncModel.Type
        var pages: [RemotePage]
        /// For a full listing (no stored cursor): every listed ID.
        var fullListing: Set<String>?
    }

    private func pullModel(_ model: any SyncModel.Type) async throws -> PullReport {
        try await apply([try await fetchChanges(model)])
    }

    private func pullModels(_ models: [any SyncModel.Type]) async throws -> PullReport {
        var fetched: [FetchedChanges] = []
        for model in models { fetched.append(try await fetchChanges(model)) }
        return try await apply(fetched)
    }

    private func fetchChanges(_ model: any SyncModel.Type) async throws -> FetchedChanges {
        let schema = model.schema
        var cursor = try await PullState.cursor(store, table: schema.tableName)
        var changes = FetchedChanges(model: model, pages: [], fullListing: cursor == nil ? [] : nil)
        // A server whose cursors cycle (a -> b -> a) would keep this loop going forever.
        var seenCursors: Set<String> = cursor.map { [$0] } ?? []
        while true {
            let page = try await remote.list(schema, after: cursor)
            changes.pages.append(page)
            // Records the page could not read still exist on the server: a full listing must not
            // delete their local copies.
            changes.fullListing?.formUnion(page.records.compactMap { $0["id"]?.idString })
            changes.fullListing?.formUnion(page.rejected.compactMap(\.id))
            guard page.hasMore, let next = page.nextCursor else { break }
            guard seenCursors.insert(next).inserted else {
                throw RemoteError.invalidResponse(
                    "the listing of \(schema.name) returned cursor '\(next)' a second time after "
                        + "\(changes.pages.count) pages: the server's cursors cycle, so the pull stopped; "
                        + "nothing of this listing was stored")
            }
            cursor = next
        }
        return changes
    }

    /// Stores everything fetched in one transaction: foreign keys are checked at its commit, so a
    /// record may reference another listed later (a later page, or another model).
    ///
    /// A record that cannot be applied does not fail the pull: an unreadable one is reported, and
    /// one that references a record neither stored locally nor listed (an orphan) is kept aside and
    /// reported; it is applied by a later pull once the record it references arrives.
    private func apply(_ fetched: [FetchedChanges]) async throws -> PullReport {
        let policy = configuration.conflictPolicy
        return try await store.write { tx in
            var report = PullReport()
            for changes in fetched {
                for page in changes.pages { report.rejected += page.rejected }
            }
            let candidates = try PulledOrphans.candidates(fetched.map { ($0.model, $0.pages) }, in: tx)
            for changes in fetched {
                let model = changes.model
                let schema = model.schema
                for page in changes.pages {
                    for id in page.deletedIDs {
                        try PulledOrphans.remove(tx.database, table: schema.tableName, recordID: id)
                    }
                }
            }
            for candidate in candidates {
                if let reason = candidate.orphanReason {
                    try PulledOrphans.park(candidate, reason: reason, in: tx.database)
                    report.rejected.append(
                        RejectedRecord(model: candidate.model.schema.name, id: candidate.id, reason: reason))
                    continue
                }
                try PulledOrphans.remove(tx.database, table: candidate.model.schema.tableName, recordID: candidate.id)
                do {
                    switch try tx.applyRemote(candidate.fields, model: candidate.model, policy: policy) {
                    case .inserted: report.inserted += 1
                    case .updated, .merged: report.updated += 1
                    case .keptLocal: report.keptLocal += 1
                    case .unchanged: break
                    }
                } catch let unreadable as UnreadableRecord {
                    report.rejected.append(
                        RejectedRecord(model: candidate.model.schema.name, id: candidate.id, reason: unreadable.reason))
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    // A unique field collides with a local record (one not sent yet): SQLite undid
                    // the statement only. Kept aside until the collision is resolved.
                    let reason =
                        "it collides with a local \(candidate.model.schema.name) on a unique field "
                        + "(\(error.message ?? "constraint failed")); kept aside until the local record changes"
                    try PulledOrphans.park(candidate, reason: reason, in: tx.database)
                    report.rejected.append(
                        RejectedRecord(model: candidate.model.schema.name, id: candidate.id, reason: reason))
                }
            }
            for changes in fetched {
                let model = changes.model
                let schema = model.schema
                for page in changes.pages {
                    for id in page.deletedIDs where try tx.applyRemoteDelete(id: id, model: model) {
                        report.deleted += 1
                    }
                    if let next = page.nextCursor {
                        try PullState.setCursor(tx.database, table: schema.tableName, cursor: next)
                    }
                }
                guard let listed = changes.fullListing else { continue }
                // A full listing is the server's whole truth: a local record it lacks was deleted
                // there, unless the server never had it (a temporary ID or an unsent change).
                let localIDs = try String.fetchAll(
                    tx.database,
                    sql: """
                        SELECT id FROM \(schema.tableName.quotedDatabaseIdentifier) WHERE id NOT IN (
                            SELECT recordID FROM \(SchemaBuilder.outboxTable) WHERE tableName = ?)
                        """,
                    arguments: [schema.tableName])
                for id in localIDs where !listed.contains(id) && !TemporaryID.isTemporary(id) {
                    if try tx.applyRemoteDelete(id: id, model: model) { report.deleted += 1 }
                }
            }
            return report
        }
    }

    // MARK: Progress

    /// Sync progress, now and after every change the engine makes. The stream ends when the caller
    /// stops iterating.
    public nonisolated func progress() -> AsyncStream<SyncProgress> {
        let (stream, continuation) = AsyncStream<SyncProgress>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = nextSubscriber.withLock { value -> Int in
            value += 1
            return value
        }
        progressSubscribers.withLock { $0[token] = continuation }
        continuation.onTermination = { [progressSubscribers] _ in
            _ = progressSubscribers.withLock { $0.removeValue(forKey: token) }
        }
        Task { await self.publishProgress() }
        return stream
    }

    /// The current progress.
    public func currentProgress() async throws -> SyncProgress {
        let counts = try await store.outbox.counts()
        return SyncProgress(
            queued: counts[.pending, default: 0], inFlight: counts[.inFlight, default: 0], sent: sentCount,
            failed: counts[.failed, default: 0])
    }

    private func publishProgress() async {
        let subscribers = progressSubscribers.withLock { Array($0.values) }
        guard !subscribers.isEmpty, let progress = try? await currentProgress() else { return }
        for subscriber in subscribers { subscriber.yield(progress) }
    }
}

/// The cursor of the last pull of each table, stored with the records.
enum PullState {
    static let table = "modelsync_pull_state"

    static func cursor(_ store: SyncStore, table model: String) async throws -> String? {
        try await store.read { db in
            try String.fetchOne(db, sql: "SELECT cursor FROM \(table) WHERE tableName = ?", arguments: [model])
        }
    }

    static func setCursor(_ db: Database, table model: String, cursor: String) throws {
        try db.execute(
            sql: """
                INSERT INTO \(table) (tableName, cursor) VALUES (?, ?)
                ON CONFLICT (tableName) DO UPDATE SET cursor = excluded.cursor
                """,
            arguments: [model, cursor])
    }
}
