import GRDB

// Reads inside a database access (`store.read { db in … }`, a live query, a write), so that a record
// and its related records come from one snapshot. Generated relationship methods
// (`thread.messages(db)`) call these; IDs a record holds that were replaced by the server's are
// followed to the record's new ID.

extension SyncModel {
    /// The record with this ID, read in `db`; a replaced temporary ID finds the record under its server
    /// ID.
    ///
    /// ```swift
    /// let (thread, messages) = try await store.read { db in
    ///     let thread = try ChatThread.find(db, id: threadID)
    ///     return (thread, try thread?.messages(db) ?? [])
    /// }
    /// ```
    public static func find(_ db: Database, id: ID) throws -> Self? {
        if let record = try fetchOneOrdered(db, id: id.rawValue) { return record }
        // A replaced temporary ID, or the lost server ID of a re-created record.
        guard let newID = try IDMap.replacement(db, table: schema.tableName, id: id.rawValue) else { return nil }
        return try fetchOneOrdered(db, id: newID)
    }

    /// The records whose foreign key `column` references `parentID` (a `hasMany` relationship).
    @_spi(Generated)
    public static func fetchAll<Parent: SyncModel>(
        _ db: Database, whereForeignKey column: String, references parentID: ModelID<Parent>
    ) throws -> [Self] {
        let parent = try IDMap.resolve(db, table: Parent.schema.tableName, id: parentID.rawValue)
        let statement = try db.cachedStatement(
            sql: orderedSelection + " WHERE \(column.quotedDatabaseIdentifier) = ?")
        return try fetchAllOrdered(statement, arguments: [parent])
    }

    /// The first record whose foreign key `column` references `parentID` (a `hasOne` relationship).
    @_spi(Generated)
    public static func fetchOne<Parent: SyncModel>(
        _ db: Database, whereForeignKey column: String, references parentID: ModelID<Parent>
    ) throws -> Self? {
        let parent = try IDMap.resolve(db, table: Parent.schema.tableName, id: parentID.rawValue)
        return try filter(Column(column) == parent).fetchOne(db)
    }

    /// The records linked to `ownerID` through the join model `Join` (a `manyToMany` relationship):
    /// join rows whose `from` column references the owner, followed through their `to` column, in the
    /// order the links were made.
    @_spi(Generated)
    public static func fetchAll<Join: SyncModel, Owner: SyncModel>(
        _ db: Database, through join: Join.Type, from: String, to: String, references ownerID: ModelID<Owner>
    ) throws -> [Self] {
        let owner = try IDMap.resolve(db, table: Owner.schema.tableName, id: ownerID.rawValue)
        let target = schema.tableName.quotedDatabaseIdentifier
        let joinTable = Join.schema.tableName.quotedDatabaseIdentifier
        return try fetchAll(
            db,
            sql: """
                SELECT \(target).* FROM \(target)
                JOIN \(joinTable) ON \(joinTable).\(to.quotedDatabaseIdentifier) = \(target).id
                WHERE \(joinTable).\(from.quotedDatabaseIdentifier) = ?
                ORDER BY \(joinTable).rowid
                """,
            arguments: [owner])
    }
}
