import Foundation
import GRDB

/// The server version each record was last seen at (from a create or update answer, or a pull).
/// An update is sent based on it (`If-Match`), so that a server that keeps versions can refuse an
/// update older than its copy instead of letting it overwrite a newer one.
enum RecordVersions {
    static let table = "modelsync_record_version"

    static func version(_ db: Database, table recordTable: String, recordID: String) throws -> String? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT version FROM \(table) WHERE tableName = ? AND recordID = ?"),
            arguments: [recordTable, recordID])
    }

    /// `fields` with the record's known server version (``RecordMetadata/version``) added, so that an
    /// update is sent based on it (`If-Match`); unchanged when no version is known.
    static func basing(_ fields: RecordFields, table recordTable: String, recordID: String, in store: SyncStore)
        async throws -> RecordFields
    {
        guard let version = try await store.read({ db in try Self.version(db, table: recordTable, recordID: recordID) })
        else { return fields }
        var based = fields
        based[RecordMetadata.version] = .string(version)
        return based
    }

    /// Remembers the version of `fields` (``RecordMetadata/version``), if the server sent one.
    ///
    /// - Parameter base: The server's copy a local change is now based on (a conflict kept the local
    ///   change): the `base` a later conflict's resolver gets. `nil` when no local change is pending.
    static func record(_ db: Database, table recordTable: String, fields: RecordFields, base: RecordFields? = nil)
        throws
    {
        guard let version = fields[RecordMetadata.version]?.idString, let id = fields["id"]?.idString else { return }
        let baseText = try base.map { String(decoding: try JSONValue.object($0).serialized(), as: UTF8.self) }
        try set(db, table: recordTable, recordID: id, version: version, base: baseText)
    }

    /// The most rows one ``setMany(_:table:versions:)`` statement writes (4 arguments each).
    static let rowsPerStatement = 50

    /// The text of a statement setting `count` versions (no base), built once per count: a pull sets
    /// a version per record, and the statement cache is keyed by this text.
    private static let setManySQL: [String] = (0...rowsPerStatement).map { count in
        """
        INSERT INTO \(table) (tableName, recordID, version, base) VALUES \(
            Array(repeating: "(?, ?, ?, NULL)", count: max(1, count)).joined(separator: ", "))
        ON CONFLICT (tableName, recordID) DO UPDATE SET version = excluded.version, base = excluded.base
        """
    }

    /// Sets the versions of many records of `recordTable` (no base: no local change is pending), with
    /// one statement per ``rowsPerStatement`` records instead of one per record. A record listed twice
    /// ends with its last version.
    static func setMany(_ db: Database, table recordTable: String, versions: [(recordID: String, version: String)])
        throws
    {
        var start = 0
        while start < versions.count {
            let end = min(versions.count, start + rowsPerStatement)
            // Bound by position: no `StatementArguments`, whose generic conversion of each value costs
            // about as much as binding it.
            var arguments: [DatabaseValue] = []
            arguments.reserveCapacity((end - start) * 3)
            let tableValue = recordTable.databaseValue
            for (recordID, version) in versions[start..<end] {
                arguments.append(tableValue)
                arguments.append(recordID.databaseValue)
                arguments.append(version.databaseValue)
            }
            try db.cachedStatement(sql: setManySQL[end - start]).execute(binding: arguments)
            start = end
        }
    }

    /// Sets the version (and the base: JSON text, or `nil`) of a record.
    static func set(_ db: Database, table recordTable: String, recordID: String, version: String, base: String? = nil)
        throws
    {
        try db.cachedStatement(sql: setSQL).execute(arguments: [recordTable, recordID, version, base])
    }

    /// Built once: a pull sets a version per record, and the statement cache is keyed by this text.
    private static let setSQL = """
        INSERT INTO \(table) (tableName, recordID, version, base) VALUES (?, ?, ?, ?)
        ON CONFLICT (tableName, recordID) DO UPDATE SET version = excluded.version, base = excluded.base
        """

    /// The server's copy of a record its pending local change is based on, when known: the record as
    /// the server last answered or listed it, kept once a local change is made (servers that send
    /// versions only).
    static func base(_ db: Database, table recordTable: String, recordID: String) throws -> RecordFields? {
        guard
            let text = try String.fetchOne(
                db.cachedStatement(sql: "SELECT base FROM \(table) WHERE tableName = ? AND recordID = ?"),
                arguments: [recordTable, recordID])
        else { return nil }
        return try JSONValue.parse(Data(text.utf8)).objectValue
    }

    /// Before a local change overwrites a record the server has a version of, keeps the stored row
    /// (the server's copy, as no local change is pending) as the base of that change. Does nothing
    /// when a base is already kept (an earlier change is pending) or no version is known.
    static func keepBase(_ db: Database, table recordTable: String, recordID: String, row: () throws -> String) throws {
        guard
            let needsBase = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT base IS NULL FROM \(table) WHERE tableName = ? AND recordID = ?"),
                arguments: [recordTable, recordID]),
            needsBase
        else { return }
        try db.cachedStatement(sql: "UPDATE \(table) SET base = ? WHERE tableName = ? AND recordID = ?")
            .execute(arguments: [try row(), recordTable, recordID])
    }

    static func remove(_ db: Database, table recordTable: String, recordID: String) throws {
        try db.cachedStatement(sql: "DELETE FROM \(table) WHERE tableName = ? AND recordID = ?")
            .execute(arguments: [recordTable, recordID])
    }

    static func rename(_ db: Database, table recordTable: String, from oldID: String, to newID: String) throws {
        try db.execute(
            sql: "UPDATE OR REPLACE \(table) SET recordID = ? WHERE tableName = ? AND recordID = ?",
            arguments: [newID, recordTable, oldID])
    }
}
