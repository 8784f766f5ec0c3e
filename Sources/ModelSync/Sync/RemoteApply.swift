import Foundation
import GRDB

/// What a pull does with a server record that has local changes not yet sent.
public enum ConflictResolution: Sendable, Hashable {
    /// Keep the local record and its queued changes; they overwrite the server's on the next push.
    case keepLocal
    /// Take the server's record and drop the local queued changes.
    case acceptRemote
    /// Store these fields (local form) and queue them for the server.
    case merged(RecordFields)
}

/// A server record that arrived while the local record had unsent changes (a pull), or that refused
/// a local change as stale (a `409` to an update).
public struct SyncConflict: Sendable {
    public var model: ModelSchema
    /// The local record (local form), as stored.
    public var local: RecordFields
    /// The server's record (local form).
    public var remote: RecordFields
    /// The server's copy the local change was made on (local form), when known: with a server that
    /// sends versions (`_version`), the record as it was last received from or accepted by the
    /// server before the local change. A three-way merge compares `local` and `remote` with it.
    public var base: RecordFields?

    public init(model: ModelSchema, local: RecordFields, remote: RecordFields, base: RecordFields? = nil) {
        self.model = model
        self.local = local
        self.remote = remote
        self.base = base
    }
}

/// How pulls resolve conflicts. The default, ``keepLocalChanges``, never overwrites a record that
/// has pending local changes: the local edit is pushed and wins (last writer wins, per record).
public enum ConflictPolicy: Sendable {
    case keepLocalChanges
    case acceptRemote
    case custom(@Sendable (SyncConflict) -> ConflictResolution)

    func resolve(_ conflict: SyncConflict) -> ConflictResolution {
        switch self {
        case .keepLocalChanges: return .keepLocal
        case .acceptRemote: return .acceptRemote
        case .custom(let resolve): return resolve(conflict)
        }
    }
}

/// What a typed conflict resolver (``ConflictPolicy/resolving(_:with:)``) keeps.
public enum ConflictChoice<Model: SyncModel>: Sendable {
    /// Keep the local record and its queued changes; they overwrite the server's on the next push.
    case keepLocal
    /// Take the server's record and drop the local queued changes.
    case acceptRemote
    /// Store this record and send it to the server.
    case merged(Model)
}

extension ConflictPolicy {
    /// This policy, except for conflicts of `Model`, which `resolve` decides with typed records: the
    /// local record (as stored, with its unsent changes) and the server's.
    ///
    /// ```swift
    /// let policy = ConflictPolicy.keepLocalChanges.resolving(Thread.self) { local, remote in
    ///     var merged = remote
    ///     merged.tags = Array(Set(local.tags).union(remote.tags)).sorted()
    ///     return .merged(merged)
    /// }
    /// ```
    ///
    /// A server record that cannot be read as a `Model` falls back to this policy.
    public func resolving<Model: SyncModel>(
        _ model: Model.Type,
        with resolve: @escaping @Sendable (_ local: Model, _ remote: Model) -> ConflictChoice<Model>
    ) -> ConflictPolicy {
        resolving(model) { local, remote, _ in resolve(local, remote) }
    }

    /// This policy, except for conflicts of `Model`, which `resolve` decides with typed records: the
    /// local record, the server's, and the server's copy the local change was made on (`base`, when
    /// known: see ``SyncConflict/base``), for three-way merges.
    ///
    /// ```swift
    /// let policy = ConflictPolicy.keepLocalChanges.resolving(ChatThread.self) { local, remote, base in
    ///     var merged = remote
    ///     // The title the user changed wins; a title only the server changed is kept.
    ///     if local.title != base?.title { merged.title = local.title }
    ///     return .merged(merged)
    /// }
    /// ```
    public func resolving<Model: SyncModel>(
        _ model: Model.Type,
        withBase resolve: @escaping @Sendable (_ local: Model, _ remote: Model, _ base: Model?) -> ConflictChoice<Model>
    ) -> ConflictPolicy {
        let otherwise = self
        return .custom { conflict in
            guard conflict.model.tableName == Model.schema.tableName,
                let local = try? Self.decode(Model.self, conflict.local),
                let remote = try? Self.decode(Model.self, conflict.remote)
            else { return otherwise.resolve(conflict) }
            let base = conflict.base.flatMap { try? Self.decode(Model.self, $0) }
            switch resolve(local, remote, base) {
            case .keepLocal: return .keepLocal
            case .acceptRemote: return .acceptRemote
            case .merged(let merged):
                guard let fields = try? PayloadWriter.fields(values: merged.databaseValues(), schema: Model.schema)
                else { return otherwise.resolve(conflict) }
                return .merged(fields)
            }
        }
    }

    private static func decode<Model: SyncModel>(_: Model.Type, _ fields: RecordFields) throws -> Model {
        try Model(fields: fields)
    }
}

/// A server record that cannot be decoded into its model (a value of the wrong type…).
struct UnreadableRecord: Error {
    var reason: String
}

/// The outcome of merging one server record.
enum MergeOutcome: Sendable {
    case inserted, updated, unchanged, keptLocal, merged
}

extension SyncTransaction {
    /// Stores a server record without queuing anything, unless the local record has unsent changes,
    /// in which case `policy` decides. The record's server version is remembered for its next update.
    ///
    /// A record that carries the creation key (``RecordMetadata/creationKey``) of a create this store
    /// sent is that create's result, even when the create's answer never arrived: the create is done
    /// and its temporary ID is replaced first.
    ///
    /// `mayHaveLocalChanges: false` skips the look-up of unsent changes: the caller knows that no
    /// record of the model has any (a pull checks once per chunk).
    ///
    /// `recordingVersion: false` leaves the version of a record inserted, updated or unchanged to the
    /// caller, which must then store it in this transaction (a pull stores a piece's versions with
    /// one statement: ``RecordVersions/setMany(_:table:versions:)``). The versions of conflicts
    /// (kept local, merged) are always stored here, with their base.
    func applyRemote(
        _ fields: RecordFields, model: any SyncModel.Type, policy: ConflictPolicy, mayHaveLocalChanges: Bool = true,
        recordingVersion: Bool = true
    ) throws -> MergeOutcome {
        func apply<Model: SyncModel>(_: Model.Type) throws -> MergeOutcome {
            guard let id = fields["id"]?.idString else { return .unchanged }
            let table = Model.schema.tableName
            var remote = fields
            // Set only when it differs: writing the same value would copy the whole dictionary.
            if fields["id"] != .string(id) { remote["id"] = .string(id) }
            // Read before anything is written: an unreadable record changes nothing.
            let record: Model
            do {
                record = try decodeRecord(Model.self, remote)
            } catch {
                throw UnreadableRecord(
                    reason: "a \(Model.schema.name) '\(id)' from the server cannot be read: \(error)")
            }
            try completeOwnCreate(remote, table: table, serverID: id)
            let hasLocalChanges =
                try mayHaveLocalChanges && OutboxStore.hasEntries(database, table: table, recordID: id)
            if hasLocalChanges {
                guard let local = try Model.fetchOne(database, key: Model.ID(id)) else { return .keptLocal }
                let localFields = try PayloadWriter.fields(values: local.databaseValues(), schema: Model.schema)
                let base = try RecordVersions.base(database, table: table, recordID: id)
                switch policy.resolve(SyncConflict(model: Model.schema, local: localFields, remote: remote, base: base))
                {
                case .keepLocal:
                    // The local change is to replace this server version: it is sent based on it.
                    try RecordVersions.record(database, table: table, fields: remote, base: remote)
                    return .keptLocal
                case .acceptRemote:
                    try OutboxStore.removeEntries(database, table: table, recordID: id)
                case .merged(var merged):
                    merged["id"] = .string(id)
                    try save(try decodeRecord(Model.self, merged))
                    try RecordVersions.record(database, table: table, fields: remote, base: remote)
                    return .merged
                }
            }
            let statements = try store.statements(for: Model.self)
            let values = try record.databaseValues()
            if recordingVersion { try RecordVersions.record(database, table: table, fields: remote) }
            // Inserted unless the ID exists (one statement for a new record, the common case of a
            // first sync); otherwise compared with the stored row and updated when it differs.
            try database.cachedStatement(sql: statements.insertIgnoringExistingID)
                .execute(arguments: StatementArguments(values))
            if database.changesCount > 0 {
                appendEvent(.created(table: table, record: record))
                return .inserted
            }
            if let existing = try Row.fetchOne(
                database.cachedStatement(sql: statements.selectByID), arguments: [record.id.rawValue]
            ).map(Model.init(orderedRow:)),
                try Self.sameStoredValues(existing, record)
            {
                return .unchanged
            }
            try database.cachedStatement(sql: statements.updateByID)
                .execute(arguments: StatementArguments(Array(values.dropFirst()) + [values[0]]))
            appendEvent(.updated(table: table, record: record))
            return .updated
        }
        return try apply(model)
    }

    /// When `fields` carries the creation key of a create this store sent (its answer may have been
    /// lost), that create is done: its entry leaves the outbox and its temporary ID becomes the
    /// server's, before the record is applied.
    private func completeOwnCreate(_ fields: RecordFields, table: String, serverID: String) throws {
        guard let key = fields[RecordMetadata.creationKey]?.stringValue,
            let entry = try OutboxStore.sentCreate(database, table: table, idempotencyKey: key)
        else { return }
        try database.execute(
            sql: "DELETE FROM \(SchemaBuilder.outboxTable) WHERE sequence = ?", arguments: [entry.sequence])
        if entry.recordID != serverID, TemporaryID.isTemporary(entry.recordID) {
            _ = try replaceTemporaryID(inTable: table, from: entry.recordID, to: serverID, evidence: .sameCreationKey)
        }
    }

    /// Applies a server delete: the record and what its delete rules reach are deleted locally (a
    /// `restrict` rule cascades: the server already deleted the record), and nothing is queued.
    func applyRemoteDelete(id: String, model: any SyncModel.Type) throws -> Bool {
        try deleteRecord(schema: model.schema, id: id, queueForServer: false)
    }

    /// `true` when two versions of a record store the same values. With a `dateTolerance`, dates
    /// that differ by less count as equal (what a server that keeps milliseconds sends back).
    static func sameStoredValues<Model: SyncModel>(
        _ first: Model, _ second: Model, dateTolerance: TimeInterval = 0
    ) throws -> Bool {
        if first == second { return true }
        guard dateTolerance > 0 else { return false }
        let firstValues = try first.databaseValues().map { $0?.databaseValue ?? .null }
        let secondValues = try second.databaseValues().map { $0?.databaseValue ?? .null }
        let types = [ColumnType.text] + Model.schema.fields.map(\.type)
        for (index, type) in types.enumerated() where firstValues[index] != secondValues[index] {
            guard type == .date, let a = Double.fromDatabaseValue(firstValues[index]),
                let b = Double.fromDatabaseValue(secondValues[index]), abs(a - b) < dateTolerance
            else { return false }
        }
        return true
    }

    /// The record `fields` (local form) hold, read by the model's generated codec.
    ///
    /// - Throws: ``FieldDecodingError`` naming the model, the field and the value that does not fit.
    func decodeRecord<Model: SyncModel>(_: Model.Type, _ fields: RecordFields) throws -> Model {
        try Model(fields: fields)
    }
}
