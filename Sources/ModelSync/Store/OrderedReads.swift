import GRDB

// The runtime's own reads of a model select its columns in schema order (`id`, then each field),
// so generated `init(orderedRow:)` reads them by index, as a hand-written statement cursor would.
// Rows of any other shape (an app's custom SQL, joins, a request with its own selection) go through
// `init(row:)`, which reads columns by name.

extension SyncModel {
    /// `SELECT "id", "field"… FROM "table"`: the model's own selection, in schema order.
    static var orderedSelection: String {
        let columns = (["id"] + schema.fields.map(\.name)).map(\.quotedDatabaseIdentifier).joined(separator: ", ")
        return "SELECT \(columns) FROM \(schema.tableName.quotedDatabaseIdentifier)"
    }

    /// The records `statement` selects; its columns must be the model's own selection.
    static func fetchAllOrdered(_ statement: Statement, arguments: StatementArguments = StatementArguments())
        throws -> [Self]
    {
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        var records: [Self] = []
        while let row = try rows.next() {
            records.append(try Self(orderedRow: row))
        }
        return records
    }

    /// Every record, in the table's order, read by index.
    static func fetchAllOrdered(_ db: Database) throws -> [Self] {
        try fetchAllOrdered(db.cachedStatement(sql: orderedSelection))
    }

    /// The record with this ID (no ID replacement followed), read by index.
    static func fetchOneOrdered(_ db: Database, id: String) throws -> Self? {
        let statement = try db.cachedStatement(sql: orderedSelection + " WHERE \"id\" = ?")
        let rows = try Row.fetchCursor(statement, arguments: [id])
        return try rows.next().map { try Self(orderedRow: $0) }
    }
}
