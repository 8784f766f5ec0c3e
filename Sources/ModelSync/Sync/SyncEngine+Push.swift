import Foundation
import GRDB
import Logging

// Push: claim ready entries, send them side by side, record the answers in batches.
extension SyncEngine {
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
        var unrecorded = UnrecordedClaims()
        do {
            try await pushLoop(waitForRetries: waitForRetries, report: &report, unrecorded: &unrecorded)
        } catch {
            // The store failed (or the wait was cancelled): whatever was claimed and not recorded goes
            // back to the queue, so that no entry stays in flight for the rest of the process.
            let stranded = unrecorded.all
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

    func pushLoop(
        waitForRetries: Bool, report: inout PushReport, unrecorded: inout UnrecordedClaims
    ) async throws {
        // A server that takes batches gets them (SyncEngine+Batch.swift); asking may fail: then per record.
        if let support = try? await remote.batchSupport() {
            return try await batchPushLoop(
                support, waitForRetries: waitForRetries, report: &report, unrecorded: &unrecorded)
        }
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
                        unrecorded.insert(claimedAhead)
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
    func recordAnswered(
        _ answered: inout [Outcome], report: inout PushReport, unrecorded: inout UnrecordedClaims
    ) async throws {
        guard !answered.isEmpty else { return }
        let batch = answered
        answered.removeAll()
        try await record(batch, into: &report)
        for outcome in batch { unrecorded.remove(outcome.entry) }
        // The server no longer accepts this app's models: stop, the changes stay queued (not failed).
        for case .transientFailure(_, let error) in batch where error.isClientTooOld { throw error }
    }

    static func send(_ entry: OutboxEntry, to remote: any SyncRemote, store: SyncStore) async -> Outcome {
        do {
            let schema = try store.model(forTable: entry.tableName).schema
            switch entry.operation {
            case .create:
                let fields = try payloadFields(entry)
                let created = try await remote.create(fields, of: schema, idempotencyKey: entry.claimedKey)
                return .succeeded(entry, serverCopy: created)
            case .update:
                let fields = try await RecordVersions.basing(
                    try payloadFields(entry), table: entry.tableName, recordID: entry.recordID, in: store)
                let updated = try await remote.update(fields, of: schema, idempotencyKey: entry.claimedKey)
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

    static func payloadFields(_ entry: OutboxEntry) throws -> RecordFields {
        guard let payload = entry.payload, let object = try JSONValue.parse(Data(payload.utf8)).objectValue else {
            throw RemoteError.invalidResponse("outbox entry \(entry.sequence) has no payload")
        }
        return object
    }

    /// Records a batch of outcomes in one transaction. The write runs even when the push is being
    /// cancelled: an answer the server gave must not be forgotten.
    func record(_ outcomes: [Outcome], into report: inout PushReport) async throws {
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
    func nextRetryTime(after lastClaim: Date) async throws -> Date? {
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
}
