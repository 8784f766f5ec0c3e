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
    static func record(_ db: Database, table recordTable: String, fields: RecordFields) throws {
        guard let version = fields[RecordMetadata.version]?.idString, let id = fields["id"]?.idString else { return }
        try set(db, table: recordTable, recordID: id, version: version)
    }

    static func set(_ db: Database, table recordTable: String, recordID: String, version: String) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO \(table) (tableName, recordID, version) VALUES (?, ?, ?)
                ON CONFLICT (tableName, recordID) DO UPDATE SET version = excluded.version
                """
        ).execute(arguments: [recordTable, recordID, version])
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
