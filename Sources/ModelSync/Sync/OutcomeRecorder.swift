import Foundation
import GRDB

/// Records the outcome of sending one outbox entry, inside a push's batch transaction.
///
/// Each outcome is recorded in a savepoint of its own: when recording one throws (the server
/// answered with an ID another record holds, a conflict the policy cannot apply…), that outcome is
/// rolled back and its entry fails with the reason, and the other outcomes of the batch stand.
enum OutcomeRecorder {
    enum Result: Sendable {
        /// Removed from the outbox; for a create, the server ID it got.
        case sent(serverID: String?)
        case willRetry(reason: String)
        case failed(reason: String)
        /// An update met a newer server copy; the conflict policy's resolution, for the log.
        case conflict(resolution: String)
        /// Back in the queue, unchanged (a cancelled send).
        case requeued
    }

    /// An update that meets a newer server copy this many times in a row fails (it is sent again
    /// after each earlier one). Sends that failed on the way (timeouts, 5xx) do not count.
    static let maximumConflictRetries = 5

    private static let outbox = SchemaBuilder.outboxTable
    /// Ends an entry's claim (its owner, process and lease).
    static let clearClaim = "claimOwner = NULL, claimProcess = NULL, claimExpiresAt = NULL"
    /// An outcome is recorded only on the entry this claim sent, while this store still holds it:
    /// in flight, claimed by this store, under the key it was sent with. Otherwise the outcome changes
    /// nothing: another store may have taken back a claim whose lease expired (the entry is then its
    /// to record), and an entry removed while in flight (a pulled server delete) may have left its
    /// sequence number to a change queued since, which a late answer must not remove or fail.
    static let stillOurs = "(state = 'inFlight' AND claimOwner = :owner AND idempotencyKey = :key)"

    /// The arguments of ``stillOurs`` for `entry`, with its `:sequence`.
    static func claimArguments(_ entry: OutboxEntry, owner: ClaimOwner) -> StatementArguments {
        ["sequence": entry.sequence, "owner": owner.token, "key": entry.idempotencyKey]
    }

    static func record(
        _ outcome: SyncEngine.Outcome, in tx: SyncTransaction, retry: RetryPolicy, policy: ConflictPolicy
    ) -> Result {
        let entry = outcome.entry
        let eventCount = tx.events.count
        var result = Result.requeued
        do {
            try tx.database.inSavepoint {
                result = try apply(outcome, in: tx, retry: retry, policy: policy)
                return .commit
            }
            return result
        } catch {
            tx.events.removeSubrange(eventCount...)
            let reason = "the server's answer could not be stored: \(error)"
            do {
                try markFailed(entry, reason: reason, in: tx)
                return .failed(reason: reason)
            } catch {
                // The store itself fails: the batch transaction fails too, and the push releases
                // every claim it could not record.
                return .failed(reason: "\(reason); recording the failure failed too: \(error)")
            }
        }
    }

    /// Records one outcome; throws when it cannot be recorded (nothing is then changed by it).
    static func apply(
        _ outcome: SyncEngine.Outcome, in tx: SyncTransaction, retry: RetryPolicy, policy: ConflictPolicy
    ) throws -> Result {
        let db = tx.database
        switch outcome {
        case .succeeded(let entry, let serverCopy):
            // The entry as stored now (its record ID may have been rewritten since it was claimed).
            guard
                let removed = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            DELETE FROM \(outbox) WHERE sequence = :sequence AND \(stillOurs)
                            RETURNING tableName, recordID, operation
                            """),
                    arguments: claimArguments(entry, owner: tx.store.claimOwner))
            else { return .sent(serverID: nil) }
            let table: String = removed["tableName"]
            var recordID: String = removed["recordID"]
            var serverID: String?
            switch entry.operation {
            case .create:
                let schema = try tx.store.model(forTable: table).schema
                // A server-ID record gets the server's ID: a new record replaces its temporary ID, a
                // re-created one (``SyncEngine/recreate(_:id:)``) the ID the server had lost.
                if schema.idGeneration == .server {
                    guard let id = serverCopy?["id"]?.idString else {
                        throw RemoteError.invalidResponse("the server's answer to the create has no ID")
                    }
                    _ = try tx.replaceTemporaryID(
                        inTable: table, from: recordID, to: id, evidence: entry.payload.map { .sentPayload($0) })
                    recordID = id
                    serverID = id
                }
                if let version = serverCopy?[RecordMetadata.version]?.idString {
                    try RecordVersions.set(
                        db, table: table, recordID: recordID, version: version,
                        base: try baseAfterAnswer(entry, recordID: recordID, in: db))
                }
            case .update:
                if let version = serverCopy?[RecordMetadata.version]?.idString {
                    try RecordVersions.set(
                        db, table: table, recordID: recordID, version: version,
                        base: try baseAfterAnswer(entry, recordID: recordID, in: db))
                }
            case .delete:
                try RecordVersions.remove(db, table: table, recordID: recordID)
            }
            return .sent(serverID: serverID)

        case .transientFailure(let entry, let error):
            let delay = retry.delay(afterAttempts: entry.attempts, retryAfter: error.retryAfter)
            try db.execute(
                sql: """
                    UPDATE \(outbox) SET state = 'pending', nextAttemptAt = :next, lastError = :reason, \(clearClaim)
                    WHERE sequence = :sequence AND \(stillOurs)
                    """,
                arguments: claimArguments(entry, owner: tx.store.claimOwner)
                    + [
                        "next": Date().addingTimeInterval(delay).timeIntervalSinceReferenceDate,
                        "reason": error.description,
                    ])
            return .willRetry(reason: error.description)

        case .permanentFailure(let entry, let reason, let notFound):
            // An update of a record the server no longer has, which this device deleted since (a
            // delete is queued behind the update): both agree the record is gone, nothing is lost.
            if notFound, entry.operation == .update,
                try Bool.fetchOne(
                    db,
                    sql: """
                        SELECT EXISTS (SELECT 1 FROM \(outbox) WHERE tableName = ? AND recordID = ?
                        AND operation = 'delete' AND sequence > ?)
                        """,
                    arguments: [entry.tableName, entry.recordID, entry.sequence]) == true
            {
                try db.execute(
                    sql: "DELETE FROM \(outbox) WHERE sequence = :sequence AND \(stillOurs)",
                    arguments: claimArguments(entry, owner: tx.store.claimOwner))
                return .sent(serverID: nil)
            }
            try markFailed(entry, reason: reason, in: tx)
            return .failed(reason: reason)

        case .cancelled(let entry):
            try db.execute(
                sql: """
                    UPDATE \(outbox) SET state = 'pending', nextAttemptAt = :now, \(clearClaim)
                    WHERE sequence = :sequence AND \(stillOurs)
                    """,
                arguments: claimArguments(entry, owner: tx.store.claimOwner)
                    + ["now": Date().timeIntervalSinceReferenceDate])
            return .requeued

        case .conflict(let entry, let serverCopy):
            return try resolveConflict(entry, serverCopy: serverCopy, in: tx, policy: policy)
        }
    }

    /// The base of the record's next pending change once the server accepted `entry`: what was sent
    /// (the server's copy at its new version) when later changes of the record are queued behind it,
    /// else none.
    private static func baseAfterAnswer(_ entry: OutboxEntry, recordID: String, in db: Database) throws -> String? {
        guard let payload = entry.payload, try OutboxStore.hasEntries(db, table: entry.tableName, recordID: recordID),
            var fields = try JSONValue.parse(Data(payload.utf8)).objectValue
        else { return nil }
        fields["id"] = .string(recordID)
        return String(decoding: try JSONValue.object(fields).serialized(), as: UTF8.self)
    }

    /// An update met a newer server copy: the conflict policy decides, as it does for a pull.
    private static func resolveConflict(
        _ entry: OutboxEntry, serverCopy: RecordFields, in tx: SyncTransaction, policy: ConflictPolicy
    ) throws -> Result {
        let db = tx.database
        guard
            let current = try OutboxEntry.fetchOne(
                db, sql: "SELECT * FROM \(outbox) WHERE sequence = :sequence AND \(stillOurs)",
                arguments: claimArguments(entry, owner: tx.store.claimOwner))
        else { return .requeued }
        let model = try tx.store.model(forTable: current.tableName)
        var remote = serverCopy
        remote["id"] = .string(current.recordID)
        let local = try current.payload.flatMap { try JSONValue.parse(Data($0.utf8)).objectValue } ?? [:]
        let base = try RecordVersions.base(db, table: current.tableName, recordID: current.recordID)
        switch policy.resolve(SyncConflict(model: model.schema, local: local, remote: remote, base: base)) {
        case .keepLocal:
            // Conflicts met in a row, this one included (sends that failed on the way do not count).
            let conflicts =
                try Int.fetchOne(
                    db, sql: "SELECT conflictRetries FROM \(outbox) WHERE sequence = ?", arguments: [current.sequence]
                )
                .map { $0 + 1 } ?? 1
            guard conflicts < maximumConflictRetries else {
                let reason =
                    "the server's copy changed \(conflicts) times while this update was being sent; "
                    + "retry it, or discard the local change"
                try markFailed(current, reason: reason, in: tx)
                return .failed(reason: reason)
            }
            // Sent again at once, based on the server's version: the local change overwrites it. The
            // refused request changed nothing, so the new one gets a key of its own.
            try RecordVersions.record(db, table: current.tableName, fields: remote, base: remote)
            try db.execute(
                sql: """
                    UPDATE \(outbox) SET state = 'pending', nextAttemptAt = NULL, idempotencyKey = ?, lastError = ?,
                        conflictRetries = conflictRetries + 1, \(clearClaim)
                    WHERE sequence = ?
                    """,
                arguments: [
                    IDClock.randomUUID(), "the server's copy was newer; sending the local change again",
                    current.sequence,
                ])
            return .conflict(resolution: "keep local")
        case .acceptRemote:
            try OutboxStore.removeEntries(db, table: current.tableName, recordID: current.recordID)
            _ = try tx.applyRemote(remote, model: model, policy: .acceptRemote)
            return .conflict(resolution: "accept remote")
        case .merged(var merged):
            merged["id"] = .string(current.recordID)
            try db.execute(sql: "DELETE FROM \(outbox) WHERE sequence = ?", arguments: [current.sequence])
            try RecordVersions.record(db, table: current.tableName, fields: remote, base: remote)
            func save<Model: SyncModel>(_: Model.Type) throws {
                try tx.save(try tx.decodeRecord(Model.self, merged))
            }
            try save(model)
            return .conflict(resolution: "merged")
        }
    }

    private static func markFailed(_ entry: OutboxEntry, reason: String, in tx: SyncTransaction) throws {
        try tx.database.execute(
            sql: """
                UPDATE \(outbox) SET state = 'failed', lastError = :reason, \(clearClaim)
                WHERE sequence = :sequence AND \(stillOurs)
                """,
            arguments: claimArguments(entry, owner: tx.store.claimOwner) + ["reason": reason])
    }
}
