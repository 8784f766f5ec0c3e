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
}

/// The reference server's data: records per collection with a change sequence for incremental
/// listings, tombstones, and remembered responses per idempotency key. All access is serialized.
actor ServerStore {
    struct StoredRecord: Sendable {
        var fields: [String: JSONValue]
        var sequence: Int
        var deleted: Bool
    }

    private(set) var collections: [String: Collection] = [:]
    private var records: [String: [String: StoredRecord]] = [:]
    private var sequence = 0
    private var nextID: [String: Int] = [:]
    private var idempotentResponses: [String: [String: JSONValue]] = [:]
    /// How many creates were answered from the idempotency store (repeats of a create).
    private(set) var replayedCreates = 0

    private let rules: @Sendable (String, [String: JSONValue]) -> String?

    init(models: [any SyncModel.Type], validate: @escaping @Sendable (String, [String: JSONValue]) -> String?) {
        rules = validate
        var schemas: [String: ModelSchema] = [:]
        for model in models { schemas[model.schema.tableName] = model.schema }
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
        if let idempotencyKey, let previous = idempotentResponses[table + "\u{0}" + idempotencyKey] {
            replayedCreates += 1
            return previous
        }
        let collection = collections[table]!
        var fields = body
        let id: String
        switch collection.idGeneration {
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
        try validate(fields, in: collection, id: id)
        sequence += 1
        records[table]![id] = StoredRecord(fields: fields, sequence: sequence, deleted: false)
        if let idempotencyKey { idempotentResponses[table + "\u{0}" + idempotencyKey] = fields }
        return fields
    }

    func update(_ body: [String: JSONValue], in table: String, id: String) throws -> [String: JSONValue] {
        let collection = collections[table]!
        guard let existing = records[table]?[id], !existing.deleted else {
            throw ServerError(status: 404, message: "no \(table) has id '\(id)'")
        }
        var fields = body
        fields["id"] = existing.fields["id"]
        try validate(fields, in: collection, id: id)
        sequence += 1
        records[table]![id] = StoredRecord(fields: fields, sequence: sequence, deleted: false)
        return fields
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
        record.deleted = true
        sequence += 1
        record.sequence = sequence
        records[table]![id] = record
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
                    records[reference.table]![childID] = updated
                }
            }
        }
    }

    private func validate(_ fields: [String: JSONValue], in collection: Collection, id: String) throws {
        var problems: [String] = []
        for foreignKey in collection.foreignKeys {
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
            if liveRecords(collection.table).contains(where: { $0.key != id && $0.value.fields[key] == value }) {
                throw ServerError(status: 409, message: "another \(collection.table) already has this '\(key)'")
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
        return record.fields
    }

    /// Records (and, with a cursor, tombstones) changed after `cursor`, oldest change first.
    func list(in table: String, after cursor: Int?, limit: Int) -> (items: [JSONValue], nextCursor: Int) {
        let changed = (records[table] ?? [:]).values
            .filter { $0.sequence > (cursor ?? 0) && (cursor != nil || !$0.deleted) }
            .sorted { $0.sequence < $1.sequence }
            .prefix(limit)
        let items = changed.map { record -> JSONValue in
            record.deleted
                ? .object(["id": record.fields["id"] ?? .null, "deleted": .bool(true)]) : .object(record.fields)
        }
        return (items, changed.last?.sequence ?? (cursor ?? 0))
    }

    /// Every live record of every collection, for tests and the demo.
    func snapshot() -> [String: [[String: JSONValue]]] {
        records.mapValues { table in
            table.values.filter { !$0.deleted }.sorted { $0.sequence < $1.sequence }.map(\.fields)
        }
    }
}
