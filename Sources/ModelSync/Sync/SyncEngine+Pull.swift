import Foundation
import GRDB
import Logging

// Pull: list each model after its cursor and store the pages as they arrive, in chunks.
extension SyncEngine {
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

    func pullModel(_ model: any SyncModel.Type) async throws -> PullReport {
        try await pullModels([model])
    }

    /// Pulls `models`, parents before children, each as a stream of pages applied in chunks, then
    /// settles the records kept aside on the way (see ``pull(_:)``).
    func pullModels(_ models: [any SyncModel.Type]) async throws -> PullReport {
        var report = PullReport()
        for model in Self.parentsFirst(models) {
            try await pullFromCursorOrAgain(model, into: &report)
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
    func streamModel(_ model: any SyncModel.Type, into report: inout PullReport) async throws {
        let schema = model.schema
        let table = schema.tableName
        let remote = self.remote
        let store = self.store
        let policy = configuration.conflictPolicy
        let chunkSize = max(1, configuration.pullChunkSize)
        let budget = configuration.pullTransactionBudget
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
        // Each page is listed and prepared (its records made into rows, see `PreparedPage`) in a task
        // of its own: the next page while the current one is stored.
        var fetching: Task<PreparedPage, any Error>? = Task { [cursor] in
            PreparedPage(try await remote.list(schema, after: cursor), model: model)
        }
        defer { fetching?.cancel() }
        while let current = fetching {
            let prepared = try await current.value
            let page = prepared.page
            pageCount += 1
            fetching = nil
            if page.hasMore, let next = page.nextCursor {
                guard seenCursors.insert(next).inserted else {
                    throw RemoteError.invalidResponse(
                        "the listing of \(schema.name) returned cursor '\(next)' a second time after "
                            + "\(pageCount) pages: the server's cursors cycle, so the pull stopped after storing "
                            + "the pages before")
                }
                fetching = Task { PreparedPage(try await remote.list(schema, after: next), model: model) }
            }
            updatePullProgress(schema.name) { progress in
                if let remaining = page.remainingTotal { progress.total = progress.received + remaining }
                progress.received += page.itemCount
            }
            await publishProgress()
            report.rejected += page.rejected
            // One transaction stores pieces of the page until it holds `chunkSize` items or has run
            // for the budget: a save waits for one such transaction at most, however slow the device.
            // Pieces tile a chunk exactly (120 items: three of 40), so a fast transaction holds a whole chunk.
            let piecesPerChunk = (chunkSize + Self.pullPieceSize - 1) / Self.pullPieceSize
            let pieces = PullChunk.split(prepared, size: (chunkSize + piecesPerChunk - 1) / piecesPerChunk)
            var next = 0
            while next < pieces.count {
                let first = next
                let started = ContinuousClock.now
                var (applied, pieceCount, itemCount) = try await store.write { tx in
                    var applied = PullReport()
                    var index = first
                    var items = 0
                    repeat {
                        let storedCursor = index == pieces.count - 1 ? page.nextCursor : nil
                        applied.merge(
                            try Self.apply(
                                pieces[index], model: model, cursor: storedCursor, crossingOff: crossesOff,
                                policy: policy, in: tx))
                        items += pieces[index].itemCount
                        index += 1
                    } while index < pieces.count && items + pieces[index].itemCount <= chunkSize
                        && ContinuousClock.now - started < budget
                    return (applied, index - first, items)
                }
                applied.longestTransaction = ContinuousClock.now - started
                report.merge(applied)
                next += pieceCount
                updatePullProgress(schema.name) { $0.applied += itemCount }
                await publishProgress()
            }
            if pieces.isEmpty, let next = page.nextCursor {
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

    /// The most items of a page stored between two looks at the transaction budget.
    static let pullPieceSize = 50

    /// Stores one chunk of a page in the current transaction: tombstones, records (a record whose
    /// reference is neither stored nor in the chunk, or that collides on a unique field, is kept
    /// aside for ``settleKeptAside(into:)``), the crossing-off of a full listing, and the cursor.
    static func apply(
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
        // The rows prepared with the page, one per candidate: candidates follow the chunk's records
        // unless the chunk lists an ID twice (then the rows are made here). Checked by ID, row by row.
        let preparedRows =
            candidates.count == chunk.prepared.count
                && zip(candidates, chunk.prepared).allSatisfy { candidate, row in
                    row.map { $0.id == candidate.id } ?? true
                }
            ? chunk.prepared : nil
        var ready: [PulledOrphans.Candidate] = []
        var readyRows: [PreparedRow?] = []
        ready.reserveCapacity(candidates.count)
        readyRows.reserveCapacity(candidates.count)
        for (index, candidate) in candidates.enumerated() {
            if let reason = candidate.orphanReason {
                try PulledOrphans.park(candidate, reason: reason, in: db)
                continue
            }
            if hasKeptAside { try PulledOrphans.remove(db, table: table, recordID: candidate.id) }
            ready.append(candidate)
            readyRows.append(preparedRows?[index] ?? nil)
        }
        // With no unsent change in the table, the records not stored yet (all of them in a first
        // sync) are inserted with one statement; the others are applied one by one below.
        let insertedTogether =
            mayHaveLocalChanges
            ? Array(repeating: false, count: ready.count)
            : try insertNewRecords(ready, rows: preparedRows == nil ? [] : readyRows, model: model, in: tx)
        // The server versions of the records stored, written together at the end of the piece.
        var versions: [(recordID: String, version: String)] = []
        versions.reserveCapacity(ready.count)
        for (index, candidate) in ready.enumerated() {
            let outcome: MergeOutcome
            if insertedTogether[index] {
                outcome = .inserted
            } else {
                switch try applyCandidate(
                    candidate, policy: policy, mayHaveLocalChanges: mayHaveLocalChanges, recordingVersion: false,
                    in: tx)
                {
                case .applied(let applied): outcome = applied
                case .rejected(let rejected):
                    report.rejected.append(rejected)
                    continue
                case .keptAside(let reason):
                    try PulledOrphans.park(candidate, reason: reason, in: db)
                    continue
                }
            }
            report.count(outcome)
            switch outcome {
            case .inserted, .updated, .unchanged:
                if let version = candidate.fields[RecordMetadata.version]?.idString {
                    versions.append((candidate.id, version))
                }
            case .keptLocal, .merged: break  // stored by applyRemote, with the base of the local change
            }
        }
        try RecordVersions.setMany(db, table: table, versions: versions)
        for id in chunk.deletedIDs where try tx.applyRemoteDelete(id: id, model: model) {
            report.deleted += 1
        }
        if crossingOff {
            for id in chunk.listedIDs { try PullState.crossOff(db, table: table, recordID: id) }
        }
        if let cursor { try PullState.setCursor(db, table: table, cursor: cursor) }
        return report
    }

    /// Inserts the records of `candidates` whose IDs are not stored yet with one statement per
    /// ``insertRowsPerStatement`` records (`INSERT … ON CONFLICT ("id") DO NOTHING RETURNING "id"`),
    /// and returns, for each candidate, whether it inserted it. The caller applies the others one by one: records already
    /// stored (compared, then updated), and records that cannot be read (rejected with the reason).
    /// A statement refused by a constraint (a unique field colliding with a local record) inserts
    /// nothing: its records are applied one by one too, and the colliding one is kept aside.
    ///
    /// Only for a table with no unsent change (no conflict to resolve, no create of this store to
    /// complete). The versions are the caller's to store. `rows` holds, per candidate, its row made
    /// before the transaction (``PreparedPage``), or `nil` to make it here.
    static func insertNewRecords(
        _ candidates: [PulledOrphans.Candidate], rows: [PreparedRow?] = [], model: any SyncModel.Type,
        in tx: SyncTransaction
    ) throws -> [Bool] {
        func insert<Model: SyncModel>(_: Model.Type) throws -> [Bool] {
            let db = tx.database
            let table = Model.schema.tableName
            var inserted = Array(repeating: false, count: candidates.count)
            var sql: (rows: Int, text: String)?
            var start = 0
            while start < candidates.count {
                let end = min(candidates.count, start + insertRowsPerStatement)
                var records: [(index: Int, id: String, record: any SyncModel)] = []
                var values: [DatabaseValue] = []
                records.reserveCapacity(end - start)
                for index in start..<end {
                    let candidate = candidates[index]
                    let row =
                        index < rows.count
                        ? rows[index] : PreparedRow(fields: candidate.fields, id: candidate.id, as: Model.self)
                    // A record that cannot be read is applied one by one, and rejected with the reason.
                    guard let row else { continue }
                    records.append((index, candidate.id, row.record))
                    values.append(contentsOf: row.values)
                }
                start = end
                guard !records.isEmpty else { continue }
                if sql?.rows != records.count {
                    sql = (records.count, insertManySQL(Model.schema, rows: records.count))
                }
                let statement = try db.cachedStatement(sql: sql!.text)
                let ids: [String]
                do {
                    ids = try fetchIDs(statement, binding: values)
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    continue  // nothing inserted: applied one by one
                }
                // Usually all of them (a first sync); otherwise those whose IDs came back.
                let returned = ids.count == records.count ? nil : Set(ids)
                for (index, id, record) in records where returned?.contains(id) ?? true {
                    inserted[index] = true
                    tx.appendEvent(.created(table: table, record: record))
                }
            }
            return inserted
        }
        return try insert(model)
    }

    /// The IDs a `… RETURNING "id"` statement returns, its parameters bound by position from
    /// `values` (one per parameter): without building `StatementArguments`, whose generic
    /// conversion of each value costs as much as binding it.
    private static func fetchIDs(_ statement: Statement, binding values: [DatabaseValue]) throws -> [String] {
        try statement.bind(positional: values)
        return try String.fetchAll(statement)
    }

    /// The most records one statement of ``insertNewRecords(_:model:in:)`` inserts.
    static let insertRowsPerStatement = 50

    /// `INSERT INTO <table> (<columns>) VALUES (…), … ON CONFLICT ("id") DO NOTHING RETURNING "id"`
    /// for `rows` records, columns in ``SyncModel/databaseValues()`` order.
    static func insertManySQL(_ schema: ModelSchema, rows: Int) -> String {
        let columns = (["id"] + schema.fields.map(\.name)).map(\.quotedDatabaseIdentifier)
        let row = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        return "INSERT INTO \(schema.tableName.quotedDatabaseIdentifier) (\(columns.joined(separator: ", "))) VALUES "
            + Array(repeating: row, count: rows).joined(separator: ", ")
            + " ON CONFLICT (\"id\") DO NOTHING RETURNING \"id\""
    }

    /// What became of one pulled record.
    enum CandidateOutcome {
        case applied(MergeOutcome)
        case rejected(RejectedRecord)
        /// It collides with a local record on a unique field: kept aside with this reason.
        case keptAside(String)
    }

    static func applyCandidate(
        _ candidate: PulledOrphans.Candidate, policy: ConflictPolicy, mayHaveLocalChanges: Bool = true,
        recordingVersion: Bool = true, in tx: SyncTransaction
    ) throws -> CandidateOutcome {
        do {
            return .applied(
                try tx.applyRemote(
                    candidate.fields, model: candidate.model, policy: policy, mayHaveLocalChanges: mayHaveLocalChanges,
                    recordingVersion: recordingVersion))
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
    func settleKeptAside(into report: inout PullReport) async throws {
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
    func deleteUnlisted(_ model: any SyncModel.Type, into report: inout PullReport) async throws {
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
}

/// A listed page whose records are already made into their models' values and table rows: done
/// while the previous page is stored (outside its transaction), so that inserting a new record in
/// the transaction only binds its row.
struct PreparedPage: Sendable {
    var page: RemotePage
    /// Per record of `page` (same index): its row, or `nil` when the record cannot be read (it is
    /// applied one by one, and rejected with the reason).
    var rows: [PreparedRow?]

    init(_ page: RemotePage, model: any SyncModel.Type) {
        func prepare<Model: SyncModel>(_: Model.Type) -> [PreparedRow?] {
            page.records.map { fields in
                fields["id"]?.idString.flatMap { PreparedRow(fields: fields, id: $0, as: Model.self) }
            }
        }
        self.page = page
        rows = prepare(model)
    }
}

/// A pulled record as its model's value and its table row (`id`, then each field).
struct PreparedRow: Sendable {
    var id: String
    var record: any SyncModel
    var values: [DatabaseValue]

    /// `nil` when `fields` do not make a `Model` (the one-by-one apply reports why).
    init?<Model: SyncModel>(fields: RecordFields, id: String, as _: Model.Type) {
        var fields = fields
        if fields["id"] != .string(id) { fields["id"] = .string(id) }
        guard let record = try? Model(fields: fields), let row = try? record.databaseValues() else { return nil }
        self.id = id
        self.record = record
        values = row.map { $0?.databaseValue ?? .null }
    }
}

/// A part of a listed page stored in one transaction.
struct PullChunk: Sendable {
    var records: [RecordFields]
    var deletedIDs: [String]
    /// IDs of the page's unreadable items in this chunk: they exist on the server.
    var rejectedIDs: [String]
    /// The rows of `records` prepared with the page (same index), or none.
    var prepared: [PreparedRow?] = []

    var itemCount: Int { records.count + deletedIDs.count + rejectedIDs.count }

    /// Every ID the chunk lists (a full listing crosses them off its notes).
    var listedIDs: [String] { records.compactMap { $0["id"]?.idString } + deletedIDs + rejectedIDs }

    /// `prepared`'s page in chunks of at most `size` items (records first, with their rows, then
    /// tombstones; the unreadable items go with the last chunk); none for an empty page.
    static func split(_ prepared: PreparedPage, size: Int) -> [PullChunk] {
        let page = prepared.page
        let rejectedIDs = page.rejected.compactMap(\.id)
        var chunks: [PullChunk] = []
        var start = 0
        while start < page.records.count {
            let end = min(page.records.count, start + size)
            chunks.append(
                PullChunk(
                    records: Array(page.records[start..<end]), deletedIDs: [], rejectedIDs: [],
                    prepared: Array(prepared.rows[start..<end])))
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
