import Foundation
import GRDB

/// A record of a table, by ID: what a pulled record's reference names.
struct RecordKey: Hashable {
    var table: String
    var id: String
}

/// Which records a pull's references name are stored, looked up in bulk: a chunk of pulled records
/// names hundreds of parents, and one query per table answers for all of them (instead of one
/// query per parent).
struct StoredRecords {
    private var known: [RecordKey: Bool] = [:]

    /// The most IDs one query binds.
    static let idsPerQuery = 500

    /// Looks up `keys` (duplicates allowed) with one query per table and `idsPerQuery` IDs.
    static func lookUp(_ keys: some Sequence<RecordKey>, in tx: SyncTransaction) throws -> StoredRecords {
        var lookup = StoredRecords()
        var idsByTable: [String: [String]] = [:]
        for key in keys where lookup.known.updateValue(false, forKey: key) == nil {
            idsByTable[key.table, default: []].append(key.id)
        }
        for (table, ids) in idsByTable {
            var start = 0
            while start < ids.count {
                var batch = Array(ids[start..<min(ids.count, start + idsPerQuery)])
                start += batch.count
                // Padded (with its last ID) to a power of two: a few cached statements per table
                // serve every batch, instead of a statement prepared per chunk.
                let size = min(idsPerQuery, 1 << (Int.bitWidth - (batch.count - 1).leadingZeroBitCount))
                batch += repeatElement(batch[batch.count - 1], count: max(0, size - batch.count))
                let placeholders = Array(repeating: "?", count: batch.count).joined(separator: ", ")
                let statement = try tx.database.cachedStatement(
                    sql: "SELECT id FROM \(table.quotedDatabaseIdentifier) WHERE id IN (\(placeholders))")
                let found = try String.fetchCursor(statement, arguments: StatementArguments(batch))
                while let id = try found.next() { lookup.known[RecordKey(table: table, id: id)] = true }
            }
        }
        return lookup
    }

    /// `true` when the record is stored (looked up now when it was not among the keys looked up).
    mutating func contains(_ key: RecordKey, in tx: SyncTransaction) throws -> Bool {
        if let stored = known[key] { return stored }
        let stored = try tx.recordExists(table: key.table, id: key.id)
        known[key] = stored
        return stored
    }
}
