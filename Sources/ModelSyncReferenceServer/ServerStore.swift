import Foundation
import ModelSync

/// One collection of the reference server, derived from a model's schema and REST conventions.
struct Collection: Sendable {
    struct ForeignKey: Sendable {
        var wireKey: String
        var table: String
        var isOptional: Bool
        var onDelete: DeleteRule
    }

    var table: String
    var path: String
    var idType: RemoteIDType
    var idGeneration: IDGeneration
    var foreignKeys: [ForeignKey]
    var uniqueKeys: [String]
    /// Incoming references: (table, wire key, rule).
    var referencedBy: [(table: String, wireKey: String, onDelete: DeleteRule)]

    init(schema: ModelSchema, all: [String: ModelSchema]) {
        table = schema.tableName
        path = schema.remote.path.hasSuffix("/") ? String(schema.remote.path.dropLast()) : schema.remote.path
        idType = schema.remote.idType
        idGeneration = schema.idGeneration
        let naming = schema.remote.fieldNaming
        foreignKeys = schema.foreignKeys.map {
            ForeignKey(
                wireKey: naming.wireKey(for: $0.column), table: $0.table, isOptional: $0.isOptional,
                onDelete: $0.onDelete)
        }
        uniqueKeys = schema.fields.filter(\.isUnique).map { naming.wireKey(for: $0.name) }
        referencedBy = schema.referencedBy.map { reference in
            let childNaming = all[reference.table]?.remote.fieldNaming ?? naming
            return (reference.table, childNaming.wireKey(for: reference.column), reference.onDelete)
        }
    }
}

/// A server error answer.
struct ServerError: Error {
    var status: Int
    var message: String
    /// The server's copy of the record, for a 409 on a stale version.
    var current: [String: JSONValue]? = nil
}

/// The reference server's data: records per collection with a change sequence for incremental
/// listings, tombstones, and remembered responses per idempotency key. All access is serialized.
actor ServerStore {
    struct StoredRecord: Sendable {
        var fields: [String: JSONValue]
        var sequence: Int
        var deleted: Bool
        /// Starts at 1 and grows with every update: what `If-Match` is checked against.
        var version: Int = 1
        /// The `Idempotency-Key` of the request that created the record, echoed to clients so that
        /// one can recognise its own create in a listing.
        var creationKey: String?

        /// The record as clients see it: its fields plus the sync metadata (`_version`, and
        /// `_idempotency_key` when it was created with a key).
        var wireObject: [String: JSONValue] {
            var object = fields
            object[ServerStore.versionKey] = .integer(Int64(version))
            if let creationKey { object[ServerStore.creationKeyKey] = .string(creationKey) }
            return object
        }
    }

    /// The latest change of one record in the change log, with the record's listing item already
    /// encoded: a record is encoded once per change, when it is stored, instead of once per listing
    /// that pages through it.
    struct Change: Sendable {
        var sequence: Int
        var id: String
        var deleted: Bool
        /// The listing item as JSON text: the record's wire object, or `{"deleted":true,"id":…}`.
        var item: [UInt8]
    }

    /// The wire key of a record's version.
    static let versionKey = "_version"
    /// The wire key of the idempotency key that created a record.
    static let creationKeyKey = "_idempotency_key"

    private(set) var collections: [String: Collection] = [:]
    private var records: [String: [String: StoredRecord]] = [:]
    private var sequence = 0
    /// Per table, the latest change of every record (live or tombstone), ordered by sequence: what
    /// listings page through.
    private var changeLog: [String: [Change]] = [:]
    /// Per table, how many records are tombstones.
    private var tombstones: [String: Int] = [:]
    private var nextID: [String: Int] = [:]
    private var idempotentResponses: [String: [String: JSONValue]] = [:]
    /// The body of the create that first used each idempotency key (same keys as `idempotentResponses`):
    /// the key coming back with another body is refused.
    private var idempotentBodies: [String: [String: JSONValue]] = [:]
    /// Fault injection: `Idempotency-Key` is ignored (every create creates), as a server without
    /// idempotency would.
    private var ignoringIdempotencyKeys = false
    /// How many creates were answered from the idempotency store (repeats of a create).
    private(set) var replayedCreates = 0
    /// How many updates were answered from the idempotency store (repeats of an update).
    private(set) var replayedUpdates = 0
    /// Per table, per unique wire key: value -> ID of the live record holding it.
    private var uniqueIndex: [String: [String: [JSONValue: String]]] = [:]
    /// Fault injection: listings answer cursors that cycle (a -> b -> a) instead of advancing.
    private var cyclingCursors = false

    private let rules: @Sendable (String, [String: JSONValue]) -> String?
    /// Answers of atomic batches per tenant-less `Idempotency-Key`, with the body they answered.
    var batchAnswers: [String: (body: JSONValue, answer: [String: JSONValue])] = [:]
    /// How many batches were applied, and how many operations they held.
    var batchCount = (batches: 0, operations: 0)
    var batchCounts: (batches: Int, operations: Int) { batchCount }

    /// Runs `body`; when it throws, every change it made is undone (an atomic batch that failed).
    func undoingOnFailure<Result>(_ body: () throws -> Result) rethrows -> Result {
        let saved = (
            records, sequence, changeLog, tombstones, nextID, idempotentResponses, idempotentBodies, replayedCreates,
            replayedUpdates, uniqueIndex
        )
        do {
            return try body()
        } catch {
            (
                records, sequence, changeLog, tombstones, nextID, idempotentResponses, idempotentBodies,
                replayedCreates, replayedUpdates, uniqueIndex
            ) = saved
            throw error
        }
    }

    init(schemas list: [ModelSchema], validate: @escaping @Sendable (String, [String: JSONValue]) -> String?) {
        rules = validate
        var schemas: [String: ModelSchema] = [:]
        for schema in list { schemas[schema.tableName] = schema }
        for schema in schemas.values {
            collections[schema.tableName] = Collection(schema: schema, all: schemas)
            records[schema.tableName] = [:]
        }
    }

    /// The collection a request path addresses, and the record ID when it names one. `path` is
    /// still percent-encoded: the ID is its last segment, decoded once.
    func collection(forPath path: String) -> (Collection, id: String?)? {
        for collection in collections.values {
            if path == collection.path || path == collection.path + "/" { return (collection, nil) }
            if path.hasPrefix(collection.path + "/") {
                let id = String(path.dropFirst(collection.path.count + 1))
                if !id.isEmpty, !id.contains("/") { return (collection, id.removingPercentEncoding ?? id) }
            }
        }
        return nil
    }

    // MARK: Writes

    func create(_ body: [String: JSONValue], in table: String, idempotencyKey: String?) throws -> [String: JSONValue] {
        let idempotencyKey = ignoringIdempotencyKeys ? nil : idempotencyKey
        if let idempotencyKey, let previous = idempotentResponses[table + "\u{0}" + idempotencyKey] {
            guard idempotentBodies[table + "\u{0}" + idempotencyKey] == body else {
                throw ServerError(
                    status: 422,
                    message:
                        "the Idempotency-Key '\(idempotencyKey)' was used before with another body; a retry must send "
                        + "the same body, and a new create needs a new key")
            }
            replayedCreates += 1
            return previous
        }
        let created = try insert(
            body, in: table, idempotencyKey: idempotencyKey, checkingReferences: true, keepingGivenID: false)
        if let idempotencyKey { idempotentBodies[table + "\u{0}" + idempotencyKey] = body }
        return created
    }

    func setIgnoringIdempotencyKeys(_ ignoring: Bool) {
        ignoringIdempotencyKeys = ignoring
    }

    /// Stores a new record. Without `checkingReferences`, foreign keys are not checked (a server with
    /// a bug, or one that lists a record whose parent it does not list). With `keepingGivenID`, a
    /// server-ID record that comes with an `id` keeps it (records made by "another client" in tests).
    func insert(
        _ body: [String: JSONValue], in table: String, idempotencyKey: String?, checkingReferences: Bool,
        keepingGivenID: Bool
    ) throws -> [String: JSONValue] {
        let collection = collections[table]!
        var fields = body
        let id: String
        switch collection.idGeneration {
        case .server where keepingGivenID && body["id"]?.idString != nil:
            id = body["id"]!.idString!
        case .server:
            let next = (nextID[table] ?? 0) + 1
            nextID[table] = next
            id = collection.idType == .int ? String(next) : "srv_\(table)_\(next)"
        case .client:
            guard let clientID = body["id"]?.idString else {
                throw ServerError(status: 422, message: "a \(table) needs a client-generated 'id'")
            }
            if let existing = records[table]?[clientID], !existing.deleted {
                throw ServerError(status: 409, message: "a \(table) with id '\(clientID)' already exists")
            }
            id = clientID
        }
        fields["id"] = collection.idType == .int ? .integer(Int64(id) ?? 0) : .string(id)
        fields.removeValue(forKey: Self.versionKey)
        fields.removeValue(forKey: Self.creationKeyKey)
        try validate(fields, in: collection, id: id, checkingReferences: checkingReferences)
        sequence += 1
        let stored = StoredRecord(fields: fields, sequence: sequence, deleted: false, creationKey: idempotencyKey)
        store(stored, in: table, id: id)
        let answer = stored.wireObject
        if let idempotencyKey { idempotentResponses[table + "\u{0}" + idempotencyKey] = answer }
        return answer
    }

    /// Makes the next server-generated IDs start again from 1, as a server restored from an old
    /// backup or with a reset sequence would: new records then get IDs that clients already hold.
    func resetIDSequence() {
        nextID = [:]
    }

    func setCyclingCursors(_ cycling: Bool) {
        cyclingCursors = cycling
    }

    /// Replaces a record's fields.
    ///
    /// - `ifMatch`: the version the client's change is based on; another version gets a 409 whose
    ///   body carries the server's copy under `current`.
    /// - `idempotencyKey`: a repeated update (its answer was lost, or a late copy of it arrives after
    ///   the retry) gets the first answer and changes nothing.
    func update(
        _ body: [String: JSONValue], in table: String, id: String, ifMatch: String? = nil,
        idempotencyKey: String? = nil
    ) throws -> [String: JSONValue] {
        let replayKey = idempotencyKey.map { "update\u{0}" + table + "\u{0}" + $0 }
        if let replayKey, let previous = idempotentResponses[replayKey] {
            replayedUpdates += 1
            return previous
        }
        let collection = collections[table]!
        guard let existing = records[table]?[id], !existing.deleted else {
            throw ServerError(status: 404, message: "no \(table) has id '\(id)'")
        }
        if let ifMatch, ifMatch != "*", ifMatch != String(existing.version) {
            throw ServerError(
                status: 409,
                message:
                    "\(table) '\(id)' is at version \(existing.version), the change was based on version \(ifMatch)",
                current: existing.wireObject)
        }
        var fields = body
        fields["id"] = existing.fields["id"]
        fields.removeValue(forKey: Self.versionKey)
        fields.removeValue(forKey: Self.creationKeyKey)
        try validate(fields, in: collection, id: id, checkingReferences: true)
        sequence += 1
        var updated = existing
        updated.fields = fields
        updated.sequence = sequence
        updated.version += 1
        store(updated, in: table, id: id)
        let answer = updated.wireObject
        if let replayKey { idempotentResponses[replayKey] = answer }
        return answer
    }

    /// Another client's write to a live record: a new version and change-log position, the same
    /// fields (``InjectedFault/changedElsewhere``).
    func changeElsewhere(in table: String, id: String) {
        guard var record = records[table]?[id], !record.deleted else { return }
        sequence += 1
        record.sequence = sequence
        record.version += 1
        store(record, in: table, id: id)
    }

    /// Stores a record and keeps the unique-field index in step.
    private func store(_ record: StoredRecord, in table: String, id: String) {
        if let previous = records[table]?[id], !previous.deleted { unindex(previous, in: table, id: id) }
        put(record, in: table, id: id)
        guard !record.deleted, let keys = collections[table]?.uniqueKeys else { return }
        for key in keys {
            guard let value = record.fields[key], !value.isNull else { continue }
            uniqueIndex[table, default: [:]][key, default: [:]][value] = id
        }
    }

    private func unindex(_ record: StoredRecord, in table: String, id: String) {
        for key in collections[table]?.uniqueKeys ?? [] {
            guard let value = record.fields[key], uniqueIndex[table]?[key]?[value] == id else { continue }
            uniqueIndex[table]?[key]?[value] = nil
        }
    }

    func delete(in table: String, id: String) throws {
        guard let existing = records[table]?[id], !existing.deleted else {
            throw ServerError(status: 404, message: "no \(table) has id '\(id)'")
        }
        try checkRestrict(table: table, id: id)
        deleteCascading(table: table, id: id)
    }

    private func checkRestrict(table: String, id: String) throws {
        for reference in collections[table]!.referencedBy {
            let children = liveRecords(reference.table).filter { $0.value.fields[reference.wireKey]?.idString == id }
            if reference.onDelete == .restrict, let child = children.first {
                throw ServerError(
                    status: 409, message: "\(reference.table) '\(child.key)' still references \(table) '\(id)'")
            }
            if reference.onDelete == .cascade {
                for child in children where !(reference.table == table && child.key == id) {
                    try checkRestrict(table: reference.table, id: child.key)
                }
            }
        }
    }

    private func deleteCascading(table: String, id: String) {
        guard var record = records[table]?[id], !record.deleted else { return }
        unindex(record, in: table, id: id)
        record.deleted = true
        sequence += 1
        record.sequence = sequence
        put(record, in: table, id: id)
        for reference in collections[table]!.referencedBy {
            for (childID, child) in liveRecords(reference.table) where child.fields[reference.wireKey]?.idString == id {
                switch reference.onDelete {
                case .cascade, .restrict:
                    deleteCascading(table: reference.table, id: childID)
                case .nullify:
                    var updated = child
                    updated.fields[reference.wireKey] = .null
                    sequence += 1
                    updated.sequence = sequence
                    updated.version += 1
                    put(updated, in: reference.table, id: childID)
                }
            }
        }
    }

    private func validate(
        _ fields: [String: JSONValue], in collection: Collection, id: String, checkingReferences: Bool
    ) throws {
        var problems: [String] = []
        for foreignKey in collection.foreignKeys where checkingReferences {
            let value = fields[foreignKey.wireKey] ?? .null
            if value.isNull {
                if !foreignKey.isOptional { problems.append("'\(foreignKey.wireKey)' is required") }
                continue
            }
            guard let parentID = value.idString else {
                problems.append("'\(foreignKey.wireKey)' must be an ID")
                continue
            }
            let parentType = collections[foreignKey.table]?.idType ?? .string
            if parentType == .int, case .string = value {
                problems.append("'\(foreignKey.wireKey)' must be an integer, got \"\(parentID)\"")
                continue
            }
            let isSelf = foreignKey.table == collection.table && parentID == id
            if !isSelf, records[foreignKey.table]?[parentID].map({ !$0.deleted }) != true {
                problems.append("'\(foreignKey.wireKey)' references unknown \(foreignKey.table) '\(parentID)'")
            }
        }
        for key in collection.uniqueKeys {
            guard let value = fields[key], !value.isNull else { continue }
            if let holder = uniqueIndex[collection.table]?[key]?[value], holder != id {
                problems.append("'\(key)' must be unique: \(collection.table) '\(holder)' already has this value")
            }
        }
        if let problem = rules(collection.table, fields) { problems.append(problem) }
        if !problems.isEmpty {
            throw ServerError(status: 422, message: problems.joined(separator: "; "))
        }
    }

    // MARK: Reads

    private func liveRecords(_ table: String) -> [(key: String, value: StoredRecord)] {
        (records[table] ?? [:]).filter { !$0.value.deleted }.sorted { $0.value.sequence < $1.value.sequence }
    }

    func record(in table: String, id: String) -> [String: JSONValue]? {
        guard let record = records[table]?[id], !record.deleted else { return nil }
        return record.wireObject
    }

    /// Writes a record and keeps the change log in step: the record's previous change leaves the
    /// log, its new one goes to the end.
    private func put(_ record: StoredRecord, in table: String, id: String) {
        if let previous = records[table]?[id] {
            if previous.deleted { tombstones[table, default: 0] -= 1 }
            var log = changeLog[table] ?? []
            changeLog[table] = nil  // unique reference: removing in place does not copy the log
            let index = Self.firstIndex(in: log, after: previous.sequence - 1)
            if index < log.count, log[index].sequence == previous.sequence { log.remove(at: index) }
            changeLog[table] = log
        }
        if record.deleted { tombstones[table, default: 0] += 1 }
        records[table]![id] = record
        let item: JSONValue =
            record.deleted
            ? .object(["id": record.fields["id"] ?? .null, "deleted": .bool(true)]) : .object(record.wireObject)
        // A stored record's fields are checked JSON values (finite numbers): encoding cannot fail.
        let encoded = (try? item.serialized()).map { [UInt8]($0) } ?? Array("null".utf8)
        changeLog[table, default: []].append(
            Change(sequence: record.sequence, id: id, deleted: record.deleted, item: encoded))
    }

    /// The position of the first change after `sequence` in a log ordered by sequence.
    private static func firstIndex(in log: [Change], after sequence: Int) -> Int {
        var low = 0
        var high = log.count
        while low < high {
            let middle = (low + high) / 2
            if log[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Records (and, with a cursor, tombstones) changed after `cursor`, oldest change first, as the
    /// listing's JSON body `{"data":[…],"next_cursor":"…","total":…}` (keys sorted, as
    /// `JSONValue.serialized()` writes them), where `total` is how many items this page and the pages
    /// after it hold.
    func list(in table: String, after cursor: Int?, limit: Int) -> Data {
        let log = changeLog[table] ?? []
        let start = Self.firstIndex(in: log, after: cursor ?? 0)
        var body: [UInt8] = []
        body.append(contentsOf: #"{"data":["#.utf8)
        var count = 0
        var lastSequence: Int?
        var position = start
        while position < log.count, count < max(0, limit) {
            let change = log[position]
            // Without a cursor the listing skips tombstones (every one is in the log after sequence 0).
            if cursor != nil || !change.deleted {
                if count > 0 { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: change.item)
                count += 1
                lastSequence = change.sequence
            }
            position += 1
        }
        let total = log.count - start - (cursor == nil ? tombstones[table, default: 0] : 0)
        let nextCursor: Int
        if cyclingCursors {
            // a -> b -> a: the second page points back at the first.
            nextCursor = cursor == nil || cursor == 0 ? 1 : 0
        } else {
            nextCursor = lastSequence ?? (cursor ?? 0)
        }
        body.append(contentsOf: #"],"next_cursor":"\#(nextCursor)","total":\#(total)}"#.utf8)
        return Data(body)
    }

    /// Every live record of every collection, for tests and the demo.
    func snapshot() -> [String: [[String: JSONValue]]] {
        records.mapValues { table in
            table.values.filter { !$0.deleted }.sorted { $0.sequence < $1.sequence }.map(\.fields)
        }
    }
}
