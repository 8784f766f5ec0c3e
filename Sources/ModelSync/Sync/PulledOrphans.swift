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
        var listed: [String: Int] = [:]  // "table\0id" -> index in candidates
        for (model, pages) in fetched {
            for page in pages {
                for fields in page {
                    guard let id = fields["id"]?.idString else { continue }
                    let key = model.schema.tableName + "\u{0}" + id
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
            let key = tableName + "\u{0}" + id
            guard listed[key] == nil, let model = try? tx.store.model(forTable: tableName),
                let fields = try JSONValue.parse(Data((parked["fields"] as String).utf8)).objectValue
            else { continue }
            listed[key] = candidates.count
            candidates.append(Candidate(model: model, id: id, fields: fields))
        }

        // A reference is satisfied by a stored record or a listed one that is not an orphan itself.
        var storedCache: [String: Bool] = [:]
        func isStored(_ table: String, _ id: String) throws -> Bool {
            let key = table + "\u{0}" + id
            if let known = storedCache[key] { return known }
            let exists = try tx.recordExists(table: table, id: id)
            storedCache[key] = exists
            return exists
        }
        var changed = true
        while changed {
            changed = false
            for index in candidates.indices where candidates[index].orphanReason == nil {
                let candidate = candidates[index]
                for foreignKey in candidate.model.schema.foreignKeys {
                    guard let parentID = candidate.fields[foreignKey.column]?.idString else { continue }
                    if foreignKey.table == candidate.model.schema.tableName, parentID == candidate.id { continue }
                    let parentKey = foreignKey.table + "\u{0}" + parentID
                    let satisfied: Bool
                    if let parentIndex = listed[parentKey] {
                        satisfied =
                            try candidates[parentIndex].orphanReason == nil || isStored(foreignKey.table, parentID)
                    } else {
                        satisfied = try isStored(foreignKey.table, parentID)
                    }
                    if !satisfied {
                        let parentModel =
                            (try? tx.store.model(forTable: foreignKey.table))?.schema.name ?? foreignKey.table
                        candidates[index].orphanReason =
                            "its '\(foreignKey.column)' references \(parentModel) '\(parentID)', which the server did "
                            + "not list and this device does not have; kept aside until it arrives"
                        changed = true
                        break
                    }
                }
            }
        }
        return candidates
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
