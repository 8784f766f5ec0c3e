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

    /// Per model name (`Message`), the progress of the model's latest pull: items received from the
    /// server, items stored, and the total when the server tells it.
    public var pulls: [String: PullProgress]

    public init(
        queued: Int = 0, inFlight: Int = 0, sent: Int = 0, failed: Int = 0, pulls: [String: PullProgress] = [:]
    ) {
        self.queued = queued
        self.inFlight = inFlight
        self.sent = sent
        self.failed = failed
        self.pulls = pulls
    }
}

/// How far the pull of one model is: counts a UI can show as "12,000 of 100,000 messages".
public struct PullProgress: Sendable, Hashable {
    /// Items (records, tombstones, unreadable items) the server listed so far in this pull.
    public var received: Int
    /// Items stored so far (each chunk counts once its transaction has committed). Records that
    /// cannot be stored yet (kept aside, unreadable) count as handled.
    public var applied: Int
    /// How many items the whole pull lists, when the server tells it (the listing's `total`):
    /// `received` of `total` is the download, `applied` of `total` the whole pull.
    public var total: Int?
    /// `true` once the listing has ended and everything it listed is stored (records kept aside
    /// are settled when the whole pull ends).
    public var isFinished: Bool

    public init(received: Int = 0, applied: Int = 0, total: Int? = nil, isFinished: Bool = false) {
        self.received = received
        self.applied = applied
        self.total = total
        self.isFinished = isFinished
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
    /// The longest the pull held the store's write lock in one transaction (from asking for the
    /// writer to the commit): about how long a save made during the pull may have waited for it.
    public var longestTransaction: Duration = .zero

    public init() {}

    mutating func merge(_ other: PullReport) {
        inserted += other.inserted
        updated += other.updated
        deleted += other.deleted
        keptLocal += other.keptLocal
        rejected += other.rejected
        longestTransaction = max(longestTransaction, other.longestTransaction)
    }

    mutating func count(_ outcome: MergeOutcome) {
        switch outcome {
        case .inserted: inserted += 1
        case .updated, .merged: updated += 1
        case .keptLocal: keptLocal += 1
        case .unchanged: break
        }
    }
}

/// A part of a listed page stored in one transaction.
struct PullChunk: Sendable {
    var records: [RecordFields]
    var deletedIDs: [String]
    /// IDs of the page's unreadable items in this chunk: they exist on the server.
    var rejectedIDs: [String]

    var itemCount: Int { records.count + deletedIDs.count + rejectedIDs.count }

    /// Every ID the chunk lists (a full listing crosses them off its notes).
    var listedIDs: [String] { records.compactMap { $0["id"]?.idString } + deletedIDs + rejectedIDs }

    /// `page` in chunks of at most `size` items (records first, then tombstones; the unreadable
    /// items go with the last chunk); none for an empty page.
    static func split(_ page: RemotePage, size: Int) -> [PullChunk] {
        let rejectedIDs = page.rejected.compactMap(\.id)
        var chunks: [PullChunk] = []
        var start = 0
        while start < page.records.count {
            let end = min(page.records.count, start + size)
            chunks.append(PullChunk(records: Array(page.records[start..<end]), deletedIDs: [], rejectedIDs: []))
            start = end
        }
        start = 0
        while start < page.deletedIDs.count {
            let end = min(page.deletedIDs.count, start + size)
            chunks.append(PullChunk(records: [], deletedIDs: Array(page.deletedIDs[start..<end]), rejectedIDs: []))
            start = end
        }
        if !rejectedIDs.isEmpty || !page.rejected.isEmpty {
            if chunks.isEmpty { chunks.append(PullChunk(records: [], deletedIDs: [], rejectedIDs: [])) }
            chunks[chunks.count - 1].rejectedIDs = rejectedIDs
        }
        return chunks
    }
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
        /// How many listed items a pull stores per transaction at most. A save waits for one chunk
        /// at most; larger chunks store a large first sync slightly faster.
        public var pullChunkSize: Int
        /// How long ``SyncEngine/push(waitForRetries:)`` waits for scheduled retries at most.
        public var maximumRetryWait: TimeInterval

        public init(
            maximumConcurrentRequests: Int = 4, retry: RetryPolicy = RetryPolicy(),
            conflictPolicy: ConflictPolicy = .keepLocalChanges, maximumRetryWait: TimeInterval = 300,
            pullChunkSize: Int = 500
        ) {
            self.maximumConcurrentRequests = maximumConcurrentRequests
            self.retry = retry
            self.conflictPolicy = conflictPolicy
            self.maximumRetryWait = maximumRetryWait
            self.pullChunkSize = pullChunkSize
        }
    }

    public let store: SyncStore
    public let remote: any SyncRemote
    public let configuration: Configuration
    private let logger: Logger
    private var sentCount = 0
    /// Per model name, the progress of its latest pull.
    private var pullProgress: [String: PullProgress] = [:]
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

    /// Pushes every queued change, then pulls every model (parents before children), each stored in
    /// chunks as its pages arrive (see ``pull(_:)``).
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
        let idempotencyKey = IDClock.randomUUID()
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
    ///
    /// Pages are stored as they arrive, in chunks of at most ``Configuration/pullChunkSize`` items,
    /// one transaction each (with the cursor of the page they complete): memory holds two pages at
    /// most, a save waits for one chunk at most, and a pull that stops midway resumes after the
    /// last page it stored. A record that references one not stored yet (listed on a later page, or
    /// by a model pulled later) is kept aside and stored at the end of the pull; one whose
    /// reference never arrives stays aside, is reported in ``PullReport/rejected``, and is stored
    /// by a later pull once the record it references arrives. Progress is published per chunk on
    /// ``progress()`` (``SyncProgress/pulls``).
    @discardableResult
    public func pull<Model: SyncModel>(_ model: Model.Type) async throws -> PullReport {
        try await pullModel(model)
    }

    private func pullModel(_ model: any SyncModel.Type) async throws -> PullReport {
        try await pullModels([model])
    }

    /// Pulls `models`, parents before children, each as a stream of pages applied in chunks, then
    /// settles the records kept aside on the way (see ``pull(_:)``).
    private func pullModels(_ models: [any SyncModel.Type]) async throws -> PullReport {
        var report = PullReport()
        for model in Self.parentsFirst(models) {
            try await streamModel(model, into: &report)
        }
        try await settleKeptAside(into: &report)
        return report
    }

    /// `models` ordered so that a model comes after the models its foreign keys reference (when the
    /// references form no cycle; otherwise in the given order): a chunk of children then usually
    /// finds its parents stored.
    static func parentsFirst(_ models: [any SyncModel.Type]) -> [any SyncModel.Type] {
        var ordered: [any SyncModel.Type] = []
        var placed: Set<String> = []
        var remaining = models
        let tables = Set(models.map { $0.schema.tableName })
        while !remaining.isEmpty {
            let ready = remaining.firstIndex { model in
                model.schema.foreignKeys.allSatisfy { key in
                    key.table == model.schema.tableName || !tables.contains(key.table) || placed.contains(key.table)
                }
            }
            let next = remaining.remove(at: ready ?? 0)
            ordered.append(next)
            placed.insert(next.schema.tableName)
        }
        return ordered
    }

    /// Lists `model` page by page (the next page is fetched while the current one is stored) and
    /// stores each page in chunks of at most ``Configuration/pullChunkSize`` items, one transaction
    /// each, so that memory holds two pages at most and a save waits for one chunk at most. The
    /// cursor is stored with the last chunk of its page: a pull that stops (killed, cancelled, a
    /// network error) resumes after the last page it stored.
    ///
    /// A full listing (no stored cursor) first notes which local records exist; every listed record
    /// is crossed off as its chunk commits, and the records left when the listing ends were deleted
    /// on the server (unless they have unsent changes). The notes are stored, so a full listing
    /// resumed after a kill still ends with that step.
    private func streamModel(_ model: any SyncModel.Type, into report: inout PullReport) async throws {
        let schema = model.schema
        let table = schema.tableName
        let remote = self.remote
        let store = self.store
        let policy = configuration.conflictPolicy
        let chunkSize = max(1, configuration.pullChunkSize)
        var cursor = try await PullState.cursor(store, table: table)
        if cursor == nil {
            try await store.writeBypassingSync { db in try PullState.noteLocalRecords(db, table: table) }
        }
        let crossesOff = try await store.read { db in try PullState.hasUnlistedRecords(db, table: table) }
        setPullProgress(schema.name, PullProgress())
        await publishProgress()
        // A server whose cursors cycle (a -> b -> a) would keep this loop going forever.
        var seenCursors: Set<String> = cursor.map { [$0] } ?? []
        var pageCount = 0
        var fetching: Task<RemotePage, any Error>? = Task { [cursor] in try await remote.list(schema, after: cursor) }
        defer { fetching?.cancel() }
        while let current = fetching {
            let page = try await current.value
            pageCount += 1
            fetching = nil
            if page.hasMore, let next = page.nextCursor {
                guard seenCursors.insert(next).inserted else {
                    throw RemoteError.invalidResponse(
                        "the listing of \(schema.name) returned cursor '\(next)' a second time after "
                            + "\(pageCount) pages: the server's cursors cycle, so the pull stopped after storing "
                            + "the pages before")
                }
                fetching = Task { try await remote.list(schema, after: next) }
            }
            updatePullProgress(schema.name) { progress in
                if let remaining = page.remainingTotal { progress.total = progress.received + remaining }
                progress.received += page.itemCount
            }
            await publishProgress()
            report.rejected += page.rejected
            let chunks = PullChunk.split(page, size: chunkSize)
            for (index, chunk) in chunks.enumerated() {
                let storedCursor = index == chunks.count - 1 ? page.nextCursor : nil
                let started = ContinuousClock.now
                var applied = try await store.write { tx in
                    try Self.apply(
                        chunk, model: model, cursor: storedCursor, crossingOff: crossesOff, policy: policy, in: tx)
                }
                applied.longestTransaction = ContinuousClock.now - started
                report.merge(applied)
                updatePullProgress(schema.name) { $0.applied += chunk.itemCount }
                await publishProgress()
            }
            if chunks.isEmpty, let next = page.nextCursor {
                try await store.writeBypassingSync { db in try PullState.setCursor(db, table: table, cursor: next) }
            }
            cursor = page.nextCursor ?? cursor
        }
        if crossesOff {
            try await deleteUnlisted(model, into: &report)
        }
        updatePullProgress(schema.name) { $0.isFinished = true }
        await publishProgress()
    }

    /// Stores one chunk of a page in the current transaction: tombstones, records (a record whose
    /// reference is neither stored nor in the chunk, or that collides on a unique field, is kept
    /// aside for ``settleKeptAside(into:)``), the crossing-off of a full listing, and the cursor.
    private static func apply(
        _ chunk: PullChunk, model: any SyncModel.Type, cursor: String?, crossingOff: Bool, policy: ConflictPolicy,
        in tx: SyncTransaction
    ) throws -> PullReport {
        let table = model.schema.tableName
        var report = PullReport()
        let db = tx.database
        // Looked up once per chunk: in a first sync no record has unsent changes or is kept aside.
        let hasKeptAside = try PulledOrphans.hasRecords(db, table: table)
        let mayHaveLocalChanges = try OutboxStore.hasEntries(db, table: table)
        for id in chunk.deletedIDs where hasKeptAside {
            try PulledOrphans.remove(db, table: table, recordID: id)
        }
        let candidates = try PulledOrphans.candidates([(model, [chunk.records])], includingKeptAside: false, in: tx)
        for candidate in candidates {
            if let reason = candidate.orphanReason {
                try PulledOrphans.park(candidate, reason: reason, in: db)
                continue
            }
            if hasKeptAside { try PulledOrphans.remove(db, table: table, recordID: candidate.id) }
            switch try applyCandidate(candidate, policy: policy, mayHaveLocalChanges: mayHaveLocalChanges, in: tx) {
            case .applied(let outcome): report.count(outcome)
            case .rejected(let rejected): report.rejected.append(rejected)
            case .keptAside(let reason): try PulledOrphans.park(candidate, reason: reason, in: db)
            }
        }
        for id in chunk.deletedIDs where try tx.applyRemoteDelete(id: id, model: model) {
            report.deleted += 1
        }
        if crossingOff {
            for id in chunk.listedIDs { try PullState.crossOff(db, table: table, recordID: id) }
        }
        if let cursor { try PullState.setCursor(db, table: table, cursor: cursor) }
        return report
    }

    /// What became of one pulled record.
    private enum CandidateOutcome {
        case applied(MergeOutcome)
        case rejected(RejectedRecord)
        /// It collides with a local record on a unique field: kept aside with this reason.
        case keptAside(String)
    }

    private static func applyCandidate(
        _ candidate: PulledOrphans.Candidate, policy: ConflictPolicy, mayHaveLocalChanges: Bool = true,
        in tx: SyncTransaction
    ) throws -> CandidateOutcome {
        do {
            return .applied(
                try tx.applyRemote(
                    candidate.fields, model: candidate.model, policy: policy, mayHaveLocalChanges: mayHaveLocalChanges))
        } catch let unreadable as UnreadableRecord {
            return .rejected(
                RejectedRecord(model: candidate.model.schema.name, id: candidate.id, reason: unreadable.reason))
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            // A unique field collides with a local record (one not sent yet): SQLite undid the
            // statement only. Kept aside until the collision is resolved.
            return .keptAside(
                "it collides with a local \(candidate.model.schema.name) on a unique field "
                    + "(\(error.message ?? "constraint failed")); kept aside until the local record changes")
        }
    }

    /// Tries every record kept aside (by this pull's chunks, or by earlier pulls) once more, in one
    /// transaction: those whose references are now stored (or kept aside with them and satisfied)
    /// are applied; the others stay aside and are reported in ``PullReport/rejected``.
    private func settleKeptAside(into report: inout PullReport) async throws {
        let policy = configuration.conflictPolicy
        let settled = try await store.write { tx -> PullReport in
            var report = PullReport()
            let candidates = try PulledOrphans.candidates([], includingKeptAside: true, in: tx)
            for candidate in candidates {
                if let reason = candidate.orphanReason {
                    try PulledOrphans.park(candidate, reason: reason, in: tx.database)
                    report.rejected.append(
                        RejectedRecord(model: candidate.model.schema.name, id: candidate.id, reason: reason))
                    continue
                }
                try PulledOrphans.remove(tx.database, table: candidate.model.schema.tableName, recordID: candidate.id)
                switch try Self.applyCandidate(candidate, policy: policy, in: tx) {
                case .applied(let outcome): report.count(outcome)
                case .rejected(let rejected): report.rejected.append(rejected)
                case .keptAside(let reason):
                    try PulledOrphans.park(candidate, reason: reason, in: tx.database)
                    report.rejected.append(
                        RejectedRecord(model: candidate.model.schema.name, id: candidate.id, reason: reason))
                }
            }
            return report
        }
        report.merge(settled)
    }

    /// The end of a full listing: the local records it did not list were deleted on the server
    /// (unless they have unsent changes, or were never sent: a temporary ID), in chunks.
    private func deleteUnlisted(_ model: any SyncModel.Type, into report: inout PullReport) async throws {
        let table = model.schema.tableName
        let chunkSize = max(1, configuration.pullChunkSize)
        while true {
            let (deleted, more) = try await store.write { tx -> (Int, Bool) in
                let ids = try PullState.unlistedRecords(tx.database, table: table, limit: chunkSize)
                var deleted = 0
                for id in ids {
                    try PullState.crossOff(tx.database, table: table, recordID: id)
                    guard !TemporaryID.isTemporary(id),
                        try !OutboxStore.hasEntries(tx.database, table: table, recordID: id)
                    else { continue }
                    if try tx.applyRemoteDelete(id: id, model: model) { deleted += 1 }
                }
                return (deleted, ids.count == chunkSize)
            }
            report.deleted += deleted
            if !more { return }
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
            failed: counts[.failed, default: 0], pulls: pullProgress)
    }

    private func publishProgress() async {
        let subscribers = progressSubscribers.withLock { Array($0.values) }
        guard !subscribers.isEmpty, let progress = try? await currentProgress() else { return }
        for subscriber in subscribers { subscriber.yield(progress) }
    }

    private func setPullProgress(_ model: String, _ progress: PullProgress) {
        pullProgress[model] = progress
    }

    private func updatePullProgress(_ model: String, _ change: (inout PullProgress) -> Void) {
        change(&pullProgress[model, default: PullProgress()])
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

    /// The notes of a full listing: local records not listed yet.
    static let unlistedTable = "modelsync_pull_unlisted"

    /// Starts a full listing of `model`: notes every local record that has no unsent change; the
    /// listing crosses off what it lists.
    static func noteLocalRecords(_ db: Database, table model: String) throws {
        try db.execute(sql: "DELETE FROM \(unlistedTable) WHERE tableName = ?", arguments: [model])
        let quoted = model.quotedDatabaseIdentifier
        try db.execute(
            sql: """
                INSERT INTO \(unlistedTable) (tableName, recordID)
                SELECT ?, id FROM \(quoted) WHERE id NOT IN (
                    SELECT recordID FROM \(SchemaBuilder.outboxTable) WHERE tableName = ?)
                """,
            arguments: [model, model])
    }

    static func hasUnlistedRecords(_ db: Database, table model: String) throws -> Bool {
        try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM \(unlistedTable) WHERE tableName = ?)", arguments: [model]) ?? false
    }

    static func crossOff(_ db: Database, table model: String, recordID: String) throws {
        try db.cachedStatement(sql: "DELETE FROM \(unlistedTable) WHERE tableName = ? AND recordID = ?")
            .execute(arguments: [model, recordID])
    }

    static func unlistedRecords(_ db: Database, table model: String, limit: Int) throws -> [String] {
        try String.fetchAll(
            db, sql: "SELECT recordID FROM \(unlistedTable) WHERE tableName = ? LIMIT ?", arguments: [model, limit])
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
