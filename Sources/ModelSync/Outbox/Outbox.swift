import Foundation
import GRDB

/// What a queued outbox entry asks the server to do.
public enum OutboxOperation: String, Sendable, Hashable, Codable {
    case create
    case update
    case delete
}

/// Where a queued outbox entry is in its life.
public enum OutboxEntryState: String, Sendable, Hashable, Codable {
    /// Waiting to be sent (again, if `attempts` is above zero).
    case pending
    /// Claimed by a sync engine and being sent.
    case inFlight
    /// Refused by the server for good (a 4xx other than 408/425/429); `lastError` says why.
    case failed
}

/// One queued change, durable in the store's SQLite file.
public struct OutboxEntry: Sendable, Hashable, Codable, FetchableRecord, TableRecord {
    public static let databaseTableName = SchemaBuilder.outboxTable

    /// Higher than every entry queued before it: entries of one record are sent in this order. The
    /// number of the newest entry can be given again to a later one once that entry is gone.
    public var sequence: Int64
    /// The table of the record (``ModelSchema/tableName``).
    public var tableName: String
    /// The record's ID (rewritten when its temporary ID is replaced).
    public var recordID: String
    public var operation: OutboxOperation
    /// The record as JSON (property names as keys), `nil` for a delete. An entry never sent stores
    /// none: it sends the record as stored when it is first claimed, and keeps that payload for every
    /// retry (``Outbox/entries()`` shows the record as stored now).
    public var payload: String?
    /// Sent as the `Idempotency-Key` header; stable across retries and restarts. `nil` until the entry
    /// is first claimed for sending: the claim gives it a key, in the same transaction that counts the
    /// attempt, and every later attempt uses that key. (A change already sent once outside the outbox,
    /// by a remote-first save, keeps the key it was sent with.)
    public var idempotencyKey: String?
    public var state: OutboxEntryState
    /// How many times a sync engine claimed the entry for sending.
    public var attempts: Int
    public var lastError: String?
    /// Seconds since 2001-01-01 before which the entry is not sent again (backoff).
    public var nextAttemptAt: Double?
    public var createdAt: Double
    /// Who is sending the entry, while it is ``OutboxEntryState/inFlight`` (`nil` otherwise).
    public var claim: OutboxClaim?
    /// The unit the entry belongs to, for changes saved with ``SyncStore/writeAsOneUnit(_:)``: the
    /// server applies all the entries of a unit or none. Also the unit's `Idempotency-Key`.
    public var unitID: String?

    public init(row: Row) throws {
        sequence = try row.decode(forColumn: "sequence")
        tableName = try row.decode(forColumn: "tableName")
        recordID = try row.decode(forColumn: "recordID")
        operation = try row.decode(OutboxOperation.self, forColumn: "operation")
        payload = try row.decode(forColumn: "payload")
        idempotencyKey = try row.decode(forColumn: "idempotencyKey")
        state = try row.decode(OutboxEntryState.self, forColumn: "state")
        attempts = try row.decode(forColumn: "attempts")
        lastError = try row.decode(forColumn: "lastError")
        nextAttemptAt = try row.decode(forColumn: "nextAttemptAt")
        createdAt = try row.decode(forColumn: "createdAt")
        unitID = row["unitID"]
        // Claim columns left behind by an outcome recorded without clearing them mean nothing.
        if state == .inFlight, let owner: String = row["claimOwner"], let processID: Int64 = row["claimProcess"],
            let expiresAt: Double = row["claimExpiresAt"]
        {
            claim = OutboxClaim(owner: owner, processID: processID, expiresAt: expiresAt)
        }
    }
}

extension OutboxEntry {
    /// The key a claimed entry is sent with: every claim gives an entry that has none its key, in the
    /// claim's transaction, before the entry is returned to be sent.
    ///
    /// - Precondition: The entry comes from a claim (`Outbox.claimReadyEntries(limit:now:)` or a unit's).
    var claimedKey: String {
        guard let idempotencyKey else {
            preconditionFailure("outbox entry \(sequence) is sent without a claim: it has no idempotency key yet")
        }
        return idempotencyKey
    }
}

/// The claim on an entry being sent: which store, in which process, sends it, and until when the
/// claim holds against other stores on the same file (see ``SyncStore/Configuration/claimLease``).
public struct OutboxClaim: Sendable, Hashable, Codable {
    /// The claiming store: a random token, one per opened ``SyncStore``.
    public var owner: String
    /// The ID of the claiming process.
    public var processID: Int64
    /// Seconds since 2001-01-01 after which any store may take the entry back.
    public var expiresAt: Double

    public init(owner: String, processID: Int64, expiresAt: Double) {
        self.owner = owner
        self.processID = processID
        self.expiresAt = expiresAt
    }
}

extension OutboxOperation: DatabaseValueConvertible {}
extension OutboxEntryState: DatabaseValueConvertible {}

/// A record's sync state, derived from the outbox.
public enum SyncStatus: Sendable, Hashable {
    /// Nothing is waiting to be sent for this record.
    case synced
    /// Changes are queued or being sent. `attempts` counts the sends of the oldest queued change so
    /// far; after a failed attempt (network, timeout, 5xx…) `lastError` says why and `nextAttempt`
    /// says when it is tried again.
    case pending(attempts: Int, lastError: String?, nextAttempt: Date?)
    /// The server refused a change for good; `reason` is its message. See ``Repository/retry(_:)``,
    /// ``SyncEngine/discardChanges(of:id:)`` and ``SyncEngine/recreate(_:id:)``.
    case failed(reason: String)

    /// Queued, not yet sent (no attempt so far).
    public static let queued = SyncStatus.pending(attempts: 0, lastError: nil, nextAttempt: nil)

    /// `true` while changes wait to be sent or are being sent.
    public var isPending: Bool {
        if case .pending = self { return true }
        return false
    }
}

/// The queue of local changes waiting for the server. A sync engine claims ready entries, sends
/// them, and reports each outcome; every step is one transaction.
public struct Outbox: Sendable {
    let store: SyncStore
    private static let table = SchemaBuilder.outboxTable

    /// Every queued entry, oldest first.
    ///
    /// An entry never sent stores no payload: its ``OutboxEntry/payload`` is the record as stored
    /// now, which is what it will send.
    public func entries() async throws -> [OutboxEntry] {
        let store = self.store
        return try await store.read { db in
            try OutboxEntry.fetchAll(db, sql: "SELECT * FROM \(Self.table) ORDER BY sequence").map {
                try OutboxStore.withPayload($0, db, store: store)
            }
        }
    }

    /// How many entries are in each state.
    public func counts() async throws -> [OutboxEntryState: Int] {
        try await store.read { db in try Self.counts(db) }
    }

    /// The entry counts per state, now and after every change. A slow consumer skips intermediate
    /// counts and gets the latest.
    public func observeCounts() -> AsyncThrowingStream<[OutboxEntryState: Int], any Error> {
        observationStream(ValueObservation.tracking { db in try Self.counts(db) }.removeDuplicates(), in: store)
    }

    static func counts(_ db: Database) throws -> [OutboxEntryState: Int] {
        var counts: [OutboxEntryState: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS count FROM \(table) GROUP BY state") {
            if let state = OutboxEntryState(rawValue: row["state"]) { counts[state] = row["count"] }
        }
        return counts
    }

    /// Claims up to `limit` entries that can be sent now, marks them in flight and counts the
    /// attempt. An entry is ready when:
    /// - it is pending and its backoff (`nextAttemptAt`) has passed;
    /// - no earlier entry of the same record is still queued (a record's changes go in order);
    /// - every record its payload references exists on the server: no referenced record still has a
    ///   temporary ID or a queued create (a child waits for its own parents; unrelated records go
    ///   ahead).
    ///
    /// An entry claimed for the first time stores, in the claim's transaction, what it sends from then
    /// on: its payload (the record as stored now) and its idempotency key (drawn now).
    ///
    /// Each claim records its owner (this store, this process) and a lease
    /// (``SyncStore/Configuration/claimLease``): other stores on the same file, in this process or
    /// another, never claim an entry in flight. Entries whose claim is stale (its store was
    /// released, its process ended, or its lease expired) are taken back first, with their
    /// idempotency key and attempt count. A claim ends when its outcome is recorded, or with
    /// `releaseClaims(_:retryAt:)`.
    ///
    /// - Parameters:
    ///   - limit: The most entries to claim.
    ///   - now: The time backoffs are compared with (leases always use the clock).
    @_spi(OutboxInternals)
    public func claimReadyEntries(limit: Int, now: Date = Date()) async throws -> [OutboxEntry] {
        try await claimReadyEntries(limit: limit, now: now, excludingUnits: false)
    }

    /// As ``claimReadyEntries(limit:now:)``; with `excludingUnits`, entries of a unit are left for
    /// `claimReadyUnit(now:)` (a push that sends units as batches).
    func claimReadyEntries(limit: Int, now: Date, excludingUnits: Bool) async throws -> [OutboxEntry] {
        let store = self.store
        try store.checkWritable()
        let owner = store.claimOwner
        let lease = store.configuration.claimLease
        return try await store.database.write { db in
            let clock = Date()
            try OutboxStore.requeueStaleClaims(db, now: clock)
            let claim = OutboxClaim(
                owner: owner.token, processID: owner.processID,
                expiresAt: clock.timeIntervalSinceReferenceDate + max(0, lease))
            let markInFlight = try db.cachedStatement(
                sql: """
                    UPDATE \(Self.table)
                    SET state = 'inFlight', attempts = attempts + 1, claimOwner = ?, claimProcess = ?, claimExpiresAt = ?,
                        payload = COALESCE(payload, ?), idempotencyKey = ?
                    WHERE sequence = ?
                    """)
            // Scan the queue in chunks, oldest first, until enough entries are claimed: entries that
            // wait for a parent are skipped without loading the whole queue.
            let chunkSize = max(32, limit * 2)
            var claimed: [OutboxEntry] = []
            var lastSequence: Int64 = 0
            scanning: while claimed.count < limit {
                let candidates = try OutboxEntry.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT * FROM \(Self.table) AS entry
                            WHERE sequence > ? AND state = 'pending' AND (nextAttemptAt IS NULL OR nextAttemptAt <= ?)
                            AND (? = 0 OR unitID IS NULL)
                            AND NOT EXISTS (
                                SELECT 1 FROM \(Self.table) AS earlier
                                WHERE earlier.tableName = entry.tableName AND earlier.recordID = entry.recordID
                                AND earlier.sequence < entry.sequence)
                            ORDER BY sequence
                            LIMIT ?
                            """),
                    arguments: [lastSequence, now.timeIntervalSinceReferenceDate, excludingUnits, chunkSize])
                for candidate in candidates {
                    lastSequence = candidate.sequence
                    // An entry never sent sends the row as stored now, kept from this claim on.
                    guard var entry = try Self.readyToSend(candidate, store: store, db: db) else { continue }
                    if try Self.waitsForParent(entry, store: store, db: db) { continue }
                    // An entry never sent gets its key now, kept for every retry.
                    if entry.idempotencyKey == nil { entry.idempotencyKey = IDClock.randomUUID() }
                    try markInFlight.execute(arguments: [
                        claim.owner, claim.processID, claim.expiresAt, entry.payload, entry.idempotencyKey,
                        entry.sequence,
                    ])
                    entry.state = .inFlight
                    entry.attempts += 1
                    entry.claim = claim
                    claimed.append(entry)
                    if let hook = OutboxClaimHooks.didClaimEntry.withLock({ $0 }) { hook(claimed.count) }
                    if claimed.count >= limit { break scanning }
                }
                if candidates.count < chunkSize { break }
            }
            return claimed
        }
    }

    /// Gives entries this store claimed back to the queue, unsent: each stays pending with its
    /// idempotency key and attempt count, and may be claimed again (by any store) at once, or from
    /// `retryAt` on. For a push that claimed entries whose outcome it could not record (recording
    /// threw): without this, the entries would wait in flight until the store is released or the
    /// lease expires.
    ///
    /// Entries this store no longer holds (their outcome was recorded, or the claim was taken back
    /// as stale) are left alone.
    ///
    /// - Returns: How many entries went back to the queue.
    @discardableResult
    @_spi(OutboxInternals)
    public func releaseClaims(_ entries: [OutboxEntry], retryAt: Date? = nil) async throws -> Int {
        guard !entries.isEmpty else { return 0 }
        let store = self.store
        try store.checkWritable()
        let sequences = String(decoding: try JSONEncoder().encode(entries.map(\.sequence)), as: UTF8.self)
        return try await store.database.write { db in
            try db.execute(
                sql: """
                    UPDATE \(Self.table)
                    SET state = 'pending', claimOwner = NULL, claimProcess = NULL, claimExpiresAt = NULL,
                        nextAttemptAt = COALESCE(?, nextAttemptAt)
                    WHERE sequence IN (SELECT value FROM json_each(?)) AND state = 'inFlight' AND claimOwner = ?
                    """,
                arguments: [retryAt?.timeIntervalSinceReferenceDate, sequences, store.claimOwner.token])
            return db.changesCount
        }
    }

    /// The entry with the payload it sends (see ``OutboxStore/withPayload(_:_:store:)``), or `nil`
    /// when it cannot be sent: a create or update of a record the store no longer has (deleted around
    /// the store's API), or whose stored values JSON cannot carry. Such an entry is marked failed
    /// with the reason, and its record's status shows it.
    static func readyToSend(_ entry: OutboxEntry, store: SyncStore, db: Database) throws -> OutboxEntry? {
        let reason: String
        do {
            let entry = try OutboxStore.withPayload(entry, db, store: store)
            if entry.payload != nil || entry.operation == .delete { return entry }
            reason =
                "\(entry.tableName) '\(entry.recordID)' is no longer in the store (deleted without going through "
                + "the store's API?), so its queued \(entry.operation.rawValue) cannot be sent; discard the change"
        } catch {
            reason =
                "the queued \(entry.operation.rawValue) of \(entry.tableName) '\(entry.recordID)' cannot be sent: \(error)"
        }
        try db.execute(
            sql: "UPDATE \(table) SET state = 'failed', lastError = ? WHERE sequence = ?",
            arguments: [reason, entry.sequence])
        return nil
    }

    /// `true` when the entry's payload references a record the server does not have yet (other than
    /// `unitCreates`, the records created by the entry's own unit: `table\u{0}id`).
    static func waitsForParent(
        _ entry: OutboxEntry, store: SyncStore, db: Database, unitCreates: Set<String> = []
    ) throws -> Bool {
        if entry.operation == .delete { return try waitsForChildren(entry, store: store, db: db) }
        guard let payload = entry.payload else { return false }
        let foreignKeys = try store.model(forTable: entry.tableName).schema.foreignKeys
        guard !foreignKeys.isEmpty else { return false }
        let object = try JSONValue.parse(Data(payload.utf8)).objectValue ?? [:]
        let queuedCreate = try db.cachedStatement(
            sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE tableName = ? AND recordID = ? AND operation = 'create')")
        for foreignKey in foreignKeys {
            guard let parentID = object[foreignKey.column]?.stringValue else { continue }
            if parentID == entry.recordID && foreignKey.table == entry.tableName { continue }
            if unitCreates.contains(foreignKey.table + "\u{0}" + parentID) { continue }
            if TemporaryID.isTemporary(parentID) { return true }
            if try Bool.fetchOne(queuedCreate, arguments: [foreignKey.table, parentID]) ?? false { return true }
        }
        return false
    }

    /// A delete waits while a queued create or update of another record still references the record
    /// (a thread's create retried after its owner was deleted locally): sent first, the delete would
    /// make that change fail for good with an unknown reference. Changes that failed for good do not
    /// hold it back.
    ///
    /// A change that stores its payload references the record in it; one never sent references it in
    /// its row (which it sends).
    static func waitsForChildren(_ entry: OutboxEntry, store: SyncStore, db: Database) throws -> Bool {
        let references = try store.model(forTable: entry.tableName).schema.referencedBy
        guard !references.isEmpty else { return false }
        let storedReference = try db.cachedStatement(
            sql: """
                SELECT EXISTS (
                    SELECT 1 FROM \(table) INDEXED BY \(table)_stored_payload
                    WHERE tableName = ? AND payload IS NOT NULL AND operation != 'delete'
                    AND state IN ('pending', 'inFlight') AND json_extract(payload, '$."' || ? || '"') = ?)
                """)
        for reference in references {
            if try Bool.fetchOne(storedReference, arguments: [reference.table, reference.column, entry.recordID])
                ?? false
            {
                return true
            }
            let rowReference = try db.cachedStatement(
                sql: """
                    SELECT EXISTS (
                        SELECT 1 FROM \(reference.table.quotedDatabaseIdentifier) AS child
                        JOIN \(table) AS change ON change.tableName = ? AND change.recordID = child.id
                        WHERE child.\(reference.column.quotedDatabaseIdentifier) = ? AND change.payload IS NULL
                        AND change.operation != 'delete' AND change.state IN ('pending', 'inFlight'))
                    """)
            if try Bool.fetchOne(rowReference, arguments: [reference.table, entry.recordID]) ?? false { return true }
        }
        return false
    }

    /// Records that the server accepted an entry: removes it and, for the create of a record with a
    /// temporary ID, replaces that ID by `serverID` everywhere, in the same transaction.
    ///
    /// An entry this store no longer holds in flight (dropped because the server deleted its record,
    /// or taken back by another store) is ignored.
    ///
    /// - Parameters:
    ///   - entry: The entry the server accepted.
    ///   - serverID: The ID the server answered with (required for server-ID creates).
    /// - Throws: ``ModelSyncError/serverIDHeldByAnotherRecord(table:temporaryID:serverID:)`` when a
    ///   different local record already has `serverID`; nothing is changed then.
    @_spi(OutboxInternals)
    public func markSucceeded(_ entry: OutboxEntry, serverID: String? = nil) async throws {
        let answer: RecordFields? = serverID.map { ["id": .string($0)] }
        let retry = RetryPolicy()
        try await store.write { tx in
            _ = try OutcomeRecorder.apply(
                .succeeded(entry, serverCopy: answer), in: tx, retry: retry, policy: .keepLocalChanges)
        }
    }

    /// Records that sending failed for a transient reason: the entry waits until `retryAt`.
    @_spi(OutboxInternals)
    public func scheduleRetry(_ entry: OutboxEntry, at retryAt: Date, reason: String) async throws {
        let owner = store.claimOwner
        try await store.database.write { db in
            try db.execute(
                sql: """
                    UPDATE \(Self.table) SET state = 'pending', nextAttemptAt = :next, lastError = :reason,
                        \(OutcomeRecorder.clearClaim)
                    WHERE sequence = :sequence AND \(OutcomeRecorder.stillOurs)
                    """,
                arguments: OutcomeRecorder.claimArguments(entry, owner: owner)
                    + ["next": retryAt.timeIntervalSinceReferenceDate, "reason": reason])
        }
    }

    /// Records that the server refused the entry for good; the record's status becomes `failed`.
    @_spi(OutboxInternals)
    public func markFailed(_ entry: OutboxEntry, reason: String) async throws {
        let owner = store.claimOwner
        try await store.database.write { db in
            try db.execute(
                sql: """
                    UPDATE \(Self.table) SET state = 'failed', lastError = :reason, \(OutcomeRecorder.clearClaim)
                    WHERE sequence = :sequence AND \(OutcomeRecorder.stillOurs)
                    """,
                arguments: OutcomeRecorder.claimArguments(entry, owner: owner) + ["reason": reason])
        }
    }

    /// Puts every failed entry back in the queue (after the user fixed the cause).
    @discardableResult
    public func retryFailed() async throws -> Int {
        try await store.database.write { db in
            try db.execute(
                sql: """
                    UPDATE \(Self.table) SET state = 'pending', nextAttemptAt = NULL, conflictRetries = 0
                    WHERE state = 'failed'
                    """)
            return db.changesCount
        }
    }

    static func syncStatus(
        _ db: Database, table: String, recordID: String, foreignKeys: [ForeignKeySchema] = []
    ) throws -> SyncStatus {
        let entries = try OutboxEntry.fetchAll(
            db.cachedStatement(
                sql: "SELECT * FROM \(Self.table) WHERE tableName = ? AND recordID = ? ORDER BY sequence"),
            arguments: [table, recordID])
        if let failed = entries.first(where: { $0.state == .failed }) {
            return .failed(reason: failed.lastError ?? "refused by the server")
        }
        guard let oldest = entries.first else { return .synced }
        let nextAttempt = oldest.nextAttemptAt.map { Date(timeIntervalSinceReferenceDate: $0) }
        let lastError =
            try oldest.attempts > 0
            ? oldest.lastError : Self.blockingParent(of: oldest, foreignKeys: foreignKeys, db: db)
        return .pending(
            attempts: oldest.attempts, lastError: lastError, nextAttempt: oldest.attempts > 0 ? nextAttempt : nil)
    }

    /// Why an entry that was never sent cannot be sent: a record it references was refused by the
    /// server (it waits until that record is retried, discarded or re-created).
    private static func blockingParent(of entry: OutboxEntry, foreignKeys: [ForeignKeySchema], db: Database) throws
        -> String?
    {
        guard !foreignKeys.isEmpty, entry.operation != .delete else { return nil }
        // What the entry sends: its stored payload, or (never sent) the record's row.
        var parents: [String: String] = [:]
        if let payload = entry.payload {
            guard let object = try JSONValue.parse(Data(payload.utf8)).objectValue else { return nil }
            for foreignKey in foreignKeys { parents[foreignKey.column] = object[foreignKey.column]?.stringValue }
        } else {
            // Read as text, as IDs are: foreign-key columns are TEXT (the generated schema's `.text`),
            // so SQLite's affinity already stores an ID such as 42 as '42'; the CAST keeps the read
            // exact for a value stored otherwise, which GRDB's `String` subscript would not convert
            // (it traps).
            let columns = foreignKeys.map { "CAST(\($0.column.quotedDatabaseIdentifier) AS TEXT)" }
                .joined(separator: ", ")
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT \(columns) FROM \(entry.tableName.quotedDatabaseIdentifier) WHERE id = ?",
                    arguments: [entry.recordID])
            else { return nil }
            for (index, foreignKey) in foreignKeys.enumerated() { parents[foreignKey.column] = row[index] }
        }
        for foreignKey in foreignKeys {
            guard let parentID = parents[foreignKey.column] else { continue }
            let reason = try String.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT lastError FROM \(Self.table)
                        WHERE tableName = ? AND recordID = ? AND state = 'failed' ORDER BY sequence LIMIT 1
                        """),
                arguments: [foreignKey.table, parentID])
            if let reason {
                return "waiting for \(foreignKey.table) '\(parentID)', whose change the server refused: \(reason)"
            }
        }
        return nil
    }
}

/// Runs a GRDB value observation as an `AsyncThrowingStream`, stopped when the stream ends.
///
/// The stream buffers one value, the newest (`.bufferingNewest(1)`): a consumer slower than the
/// store's writes skips intermediate states and gets the latest, as a UI wants, and memory stays
/// bounded however fast the store changes.
func observationStream<Reducer: ValueReducer>(
    _ observation: ValueObservation<Reducer>, in store: SyncStore
) -> AsyncThrowingStream<Reducer.Value, any Error> where Reducer.Value: Sendable {
    AsyncThrowingStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
        let cancellable = observation.start(
            in: store.database, scheduling: .async(onQueue: DispatchQueue(label: "ModelSync.observation")),
            onError: { continuation.finish(throwing: $0) },
            onChange: { continuation.yield($0) })
        continuation.onTermination = { _ in cancellable.cancel() }
    }
}
