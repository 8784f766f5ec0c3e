import Foundation
import GRDB

// Push in batches, to a server that takes them (Docs/Protocol.md, "Batches").
//
// Plain batches go in dependency layers: a batch holds entries that are ready now (every record
// they reference exists on the server), so no operation of it depends on another and each one
// succeeds or fails alone; a child waits for its parent's answer and goes in a later batch. Units
// (`SyncStore.writeAsOneUnit`) go as one atomic batch each, whose records may reference each other:
// such a foreign key is sent as a reference to the create that makes the parent, and the server
// fills in the ID (no temporary ID reaches it).
extension SyncEngine {
    /// The push loop for a server that takes batches: up to
    /// ``Configuration/maximumConcurrentRequests`` batches in flight, units first.
    func batchPushLoop(
        _ support: BatchSupport, waitForRetries: Bool, report: inout PushReport,
        unrecorded: inout UnrecordedClaims
    ) async throws {
        let deadline = Date().addingTimeInterval(configuration.maximumRetryWait)
        let limit = max(1, configuration.maximumConcurrentRequests)
        let batchSize = max(1, min(support.maximumOperations, configuration.maximumBatchSize))
        let remote = self.remote
        let store = self.store
        try await withThrowingTaskGroup(of: [Outcome].self) { group in
            var running = 0
            var lastClaim = Date()
            var queueEmpty = false
            while true {
                while running < limit, !queueEmpty, !Task.isCancelled {
                    let outbox = store.outbox
                    let now = Date()
                    lastClaim = now
                    // Not cancellable: entries claimed must reach a send, which requeues them on cancel.
                    let (entries, atomic) = try await Task {
                        let unit = try await outbox.claimReadyUnit(now: now)
                        if !unit.isEmpty { return (unit, true) }
                        return (
                            try await outbox.claimReadyEntries(limit: batchSize, now: now, excludingUnits: true), false
                        )
                    }.value
                    guard !entries.isEmpty else {
                        queueEmpty = true
                        break
                    }
                    unrecorded.insert(entries)
                    await publishProgress()
                    running += 1
                    group.addTask { await Self.sendBatch(entries, atomically: atomic, to: remote, store: store) }
                }
                if running == 0 {
                    guard waitForRetries, !Task.isCancelled, Date() < deadline,
                        let next = try await nextRetryTime(after: lastClaim), next < deadline
                    else { break }
                    let wait = max(0.001, next.timeIntervalSinceNow)
                    try await Task.sleep(for: .milliseconds(Int(wait * 1000) + 1))
                    queueEmpty = false
                    continue
                }
                guard let outcomes = try await group.next() else { break }
                running -= 1
                var answered = outcomes
                // A claim must see every answer so far (a child waits for its parent's ID).
                try await recordAnswered(&answered, report: &report, unrecorded: &unrecorded)
                queueEmpty = false
            }
        }
    }

    /// Sends claimed entries as one batch and returns one outcome per entry, in order.
    static func sendBatch(
        _ entries: [OutboxEntry], atomically: Bool, to remote: any SyncRemote, store: SyncStore
    ) async -> [Outcome] {
        var operations: [BatchOperation] = []
        // Entries that cannot be sent (a payload that cannot be read) fail alone; in a unit, they
        // fail the unit.
        var unsendable: [Int: String] = [:]
        var created: [String: Int] = [:]
        for (position, entry) in entries.enumerated() {
            do {
                let schema = try store.model(forTable: entry.tableName).schema
                var fields: RecordFields
                var references: [String: Int] = [:]
                switch entry.operation {
                case .create:
                    fields = try payloadFields(entry)
                    for foreignKey in schema.foreignKeys {
                        guard let parent = fields[foreignKey.column]?.idString,
                            let creator = created[foreignKey.table + "\u{0}" + parent]
                        else { continue }
                        references[foreignKey.column] = creator
                    }
                    created[entry.tableName + "\u{0}" + entry.recordID] = operations.count
                case .update:
                    fields = try await RecordVersions.basing(
                        try payloadFields(entry), table: entry.tableName, recordID: entry.recordID, in: store)
                case .delete:
                    fields = ["id": .string(entry.recordID)]
                }
                let kind = BatchOperation.Kind(rawValue: entry.operation.rawValue) ?? .delete
                operations.append(
                    BatchOperation(
                        kind: kind, model: schema, fields: fields, idempotencyKey: entry.claimedKey,
                        references: references))
            } catch {
                unsendable[position] = "\(error)"
                if atomically { break }
            }
        }
        if atomically, let first = unsendable.first {
            return entries.enumerated().map { index, entry in
                .permanentFailure(
                    entry,
                    index == first.key
                        ? first.value : "not sent: another change of its unit cannot be sent (\(first.value))")
            }
        }
        let sent = entries.enumerated().filter { unsendable[$0.offset] == nil }.map(\.element)
        let results: [Result<RecordFields?, RemoteError>]
        do {
            results = try await remote.send(
                operations, atomically: atomically, idempotencyKey: atomically ? entries.first?.unitID : nil)
        } catch {
            // The whole request failed: every entry gets the outcome a request of its own would have.
            let outcome = failure(error)
            return entries.enumerated().map { index, entry in
                if let reason = unsendable[index] { return .permanentFailure(entry, reason) }
                return outcome(entry)
            }
        }
        var outcomes: [Outcome] = []
        for (entry, result) in zip(sent, results) {
            switch result {
            case .success(let copy): outcomes.append(.succeeded(entry, serverCopy: copy))
            case .failure(let error): outcomes.append(failure(error)(entry))
            }
        }
        if atomically {
            // The change the server refused (the others of the unit are answered 424, not applied).
            let culprit = zip(outcomes, results).first { _, result in
                if case .failure(let error) = result, !Self.isNotApplied(error) { return true }
                return false
            }?.0
            if let culprit { return unitNotApplied(entries, culprit: culprit) }
            if results.contains(where: { if case .failure = $0 { true } else { false } }) {
                return unitNotApplied(entries, culprit: nil)
            }
            return outcomes
        }
        var bySequence: [Int64: Outcome] = [:]
        for outcome in outcomes { bySequence[outcome.entry.sequence] = outcome }
        return entries.enumerated().map { index, entry in
            bySequence[entry.sequence] ?? .permanentFailure(entry, unsendable[index] ?? "no answer")
        }
    }

    /// `424 Failed Dependency`: an operation not applied because another one of its batch failed.
    static func isNotApplied(_ error: RemoteError) -> Bool {
        if case .http(424, _, _) = error { return true }
        return false
    }

    /// The outcome of an entry whose request failed with `error`, as ``send(_:to:store:)`` decides.
    static func failure(_ error: any Error) -> (OutboxEntry) -> Outcome {
        { entry in
            if error is CancellationError { return .cancelled(entry) }
            guard let error = error as? RemoteError else { return .permanentFailure(entry, "\(error)") }
            if case .conflict(_, let serverCopy) = error, entry.operation == .update {
                return .conflict(entry, serverCopy: serverCopy)
            }
            if error.isTransient { return .transientFailure(entry, error) }
            if case .http(let status, _, _) = error, status == 404 || status == 410 {
                return .permanentFailure(entry, error.description, notFound: true)
            }
            return .permanentFailure(entry, error.description)
        }
    }

    /// A unit the server did not apply: the change it refused (`culprit`) keeps its outcome; the
    /// others were not applied and follow it: retried together when it is transient or a conflict,
    /// failed with its reason when it failed for good.
    static func unitNotApplied(_ entries: [OutboxEntry], culprit: Outcome?) -> [Outcome] {
        entries.map { entry in
            if let culprit, culprit.entry.sequence == entry.sequence { return culprit }
            switch culprit {
            case .transientFailure(_, let error)?: return .transientFailure(entry, error)
            case .cancelled?: return .cancelled(entry)
            case .conflict(let other, _)?:
                return .transientFailure(
                    entry,
                    .http(
                        status: 409,
                        message:
                            "not applied: \(other.tableName) '\(other.recordID)' of its unit met a newer server copy",
                        retryAfter: 0))
            case .permanentFailure(let other, let reason, _)?:
                return .permanentFailure(
                    entry, "not applied: \(other.tableName) '\(other.recordID)' of its unit was refused: \(reason)")
            default:
                return .permanentFailure(entry, "not applied: the server refused its unit")
            }
        }
    }
}
