import Foundation
import GRDB

/// Pulled records that cannot be stored yet: they reference a record neither stored locally nor
/// listed by the server (an orphan), or collide with a local record on a unique field. They are kept
/// aside, with the reason, instead of failing the pull, and tried again by every later pull: once
/// the record they reference arrives (or the collision is gone), they are applied.
enum PulledOrphans {
    static let table = "modelsync_pulled_orphan"

    /// A record a pull is about to apply, and why it cannot be applied yet (if so).
    struct Candidate {
        var model: any SyncModel.Type
        var id: String
        var fields: RecordFields
        var orphanReason: String?
    }

    /// The records of `fetched` followed (`includingKeptAside`) by the records kept aside that
    /// `fetched` does not list again, each marked when it references a record neither stored nor
    /// among the candidates (directly, or through another candidate marked so).
    static func candidates(
        _ fetched: [(model: any SyncModel.Type, pages: [[RecordFields]])], includingKeptAside: Bool,
        in tx: SyncTransaction
    ) throws -> [Candidate] {
        let db = tx.database
        var candidates: [Candidate] = []
        var listed: [RecordKey: Int] = [:]  // index in candidates
        var listedTables: Set<String> = []
        for (model, pages) in fetched {
            let table = model.schema.tableName
            listedTables.insert(table)
            for page in pages {
                listed.reserveCapacity(listed.count + page.count)
                for fields in page {
                    guard let id = fields["id"]?.idString else { continue }
                    let key = RecordKey(table: table, id: id)
                    if let index = listed[key] {
                        candidates[index].fields = fields  // a later page lists a newer state
                    } else {
                        listed[key] = candidates.count
                        candidates.append(Candidate(model: model, id: id, fields: fields))
                    }
                }
            }
        }
        let keptAside =
            includingKeptAside ? try Row.fetchAll(db, sql: "SELECT tableName, recordID, fields FROM \(table)") : []
        for parked in keptAside {
            let tableName: String = parked["tableName"]
            let id: String = parked["recordID"]
            let key = RecordKey(table: tableName, id: id)
            guard listed[key] == nil, let model = try? tx.store.model(forTable: tableName),
                let fields = try JSONValue.parse(Data((parked["fields"] as String).utf8)).objectValue
            else { continue }
            listed[key] = candidates.count
            listedTables.insert(tableName)
            candidates.append(Candidate(model: model, id: id, fields: fields))
        }

        // The references of each candidate (parents other than itself), read once.
        // `mayBeListed`: the parent's table has candidates (otherwise no look-up among them).
        var references: [[(column: String, parent: RecordKey, mayBeListed: Bool)]] = []
        references.reserveCapacity(candidates.count)
        var foreignKeysByTable: [String: [(key: ForeignKeySchema, mayBeListed: Bool)]] = [:]
        for candidate in candidates {
            let schema = candidate.model.schema
            let foreignKeys =
                foreignKeysByTable[schema.tableName]
                ?? {
                    let keys = schema.foreignKeys.map { ($0, listedTables.contains($0.table)) }
                    foreignKeysByTable[schema.tableName] = keys
                    return keys
                }()
            var parents: [(column: String, parent: RecordKey, mayBeListed: Bool)] = []
            for (foreignKey, mayBeListed) in foreignKeys {
                guard let parentID = candidate.fields[foreignKey.column]?.idString else { continue }
                if foreignKey.table == schema.tableName, parentID == candidate.id { continue }
                parents.append((foreignKey.column, RecordKey(table: foreignKey.table, id: parentID), mayBeListed))
            }
            references.append(parents)
        }

        // Which referenced records are stored: one query per table for the references the
        // candidates do not satisfy themselves (a chunk of messages names hundreds of threads).
        var stored = try StoredRecords.lookUp(
            references.lazy.flatMap { $0 }.filter { !$0.mayBeListed || listed[$0.parent] == nil }.map(\.parent),
            in: tx)

        // Each reference, looked up once: a listed candidate (by index), or stored or not.
        var parents: [[Parent]] = []
        parents.reserveCapacity(references.count)
        for candidateReferences in references {
            var resolved: [Parent] = []
            resolved.reserveCapacity(candidateReferences.count)
            for (_, parent, mayBeListed) in candidateReferences {
                if mayBeListed, let parentIndex = listed[parent] {
                    resolved.append(.listed(parentIndex))
                } else {
                    resolved.append(.stored(try stored.contains(parent, in: tx)))
                }
            }
            parents.append(resolved)
        }

        // A reference is satisfied by a stored record or a listed one that is not an orphan itself.
        var changed = true
        while changed {
            changed = false
            for index in candidates.indices where candidates[index].orphanReason == nil {
                for (position, (column, parent, _)) in references[index].enumerated() {
                    let satisfied: Bool
                    switch parents[index][position] {
                    case .listed(let parentIndex):
                        // A listed parent kept aside itself may still be stored (an older version).
                        satisfied = try candidates[parentIndex].orphanReason == nil || stored.contains(parent, in: tx)
                    case .stored(let isStored): satisfied = isStored
                    }
                    if !satisfied {
                        let parentModel = (try? tx.store.model(forTable: parent.table))?.schema.name ?? parent.table
                        candidates[index].orphanReason =
                            "its '\(column)' references \(parentModel) '\(parent.id)', which the server did "
                            + "not list and this device does not have; kept aside until it arrives"
                        changed = true
                        break
                    }
                }
            }
        }
        return candidates
    }

    /// A reference of a candidate: to another candidate (its index), or to a record stored or not.
    private enum Parent {
        case listed(Int)
        case stored(Bool)
    }

    static func park(_ candidate: Candidate, reason: String, in db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO \(table) (tableName, recordID, fields, reason) VALUES (?, ?, ?, ?)
                ON CONFLICT (tableName, recordID) DO UPDATE SET fields = excluded.fields, reason = excluded.reason
                """,
            arguments: [
                candidate.model.schema.tableName, candidate.id,
                String(decoding: try JSONValue.object(candidate.fields).serialized(), as: UTF8.self), reason,
            ])
    }

    /// `true` when records of `recordTable` are kept aside.
    static func hasRecords(_ db: Database, table recordTable: String) throws -> Bool {
        try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE tableName = ?)"),
            arguments: [recordTable]) ?? false
    }

    static func remove(_ db: Database, table recordTable: String, recordID: String) throws {
        try db.cachedStatement(sql: "DELETE FROM \(table) WHERE tableName = ? AND recordID = ?")
            .execute(arguments: [recordTable, recordID])
    }
}
