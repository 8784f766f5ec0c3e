/// Errors thrown by the ModelSync runtime. Each message says what is wrong, where, and what to do.
public enum ModelSyncError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A model type was used that is not in the `models` list the store was opened with.
    case unknownModel(String)
    /// A delete was refused: records still reference the record through a `restrict` foreign key.
    case deleteRestricted(model: String, id: String, referencingTable: String, column: String, count: Int)
    /// The store holds a table whose columns do not match the model and cannot be migrated.
    case incompatibleSchema(table: String, reason: String)
    /// A temporary ID was already replaced by a different server ID.
    case conflictingIDReplacement(table: String, temporaryID: String, existingID: String, newID: String)
    /// The server answered a create with an ID that a different local record already holds (a record
    /// pulled earlier, or a server whose IDs were reset). The two records are never merged.
    case serverIDHeldByAnotherRecord(table: String, temporaryID: String, serverID: String)
    /// No record has this ID.
    case recordNotFound(table: String, id: String)
    /// A change of the record is being sent right now; it cannot be discarded or re-created until
    /// its answer is recorded.
    case changeBeingSent(table: String, id: String)
    /// The database file was deleted or moved while the store had it open. The write that found it
    /// out was rolled back (nothing was saved); reads stop too.
    case databaseFileMoved(path: String)
    /// The store is read-only (opened with `readOnly`, or a file or folder the process may not
    /// write): reads work, this change was refused. `reason` says why the store is read-only.
    case readOnlyStore(path: String, reason: String)
    /// A save was refused: the value of `field` cannot be stored and sent to the server exactly
    /// (NaN, an infinity, a Decimal that does not read back from its text). Nothing was saved.
    case invalidValue(model: String, field: String, reason: String)

    public var description: String {
        switch self {
        case .unknownModel(let name):
            return "model '\(name)' is not registered with this store; "
                + "open the store with every generated model (GeneratedModels.all)"
        case .deleteRestricted(let model, let id, let table, let column, let count):
            return "cannot delete \(model) '\(id)': \(count) record(s) of '\(table)' reference it through "
                + "'\(column)' (onDelete: restrict); delete or re-point those records first"
        case .incompatibleSchema(let table, let reason):
            return "table '\(table)' does not match its model: \(reason)"
        case .conflictingIDReplacement(let table, let temporaryID, let existingID, let newID):
            return "temporary ID '\(temporaryID)' of '\(table)' was already replaced by '\(existingID)'; "
                + "refusing to replace it again by '\(newID)'"
        case .serverIDHeldByAnotherRecord(let table, let temporaryID, let serverID):
            return "the server answered the create of '\(table)' record '\(temporaryID)' with ID '\(serverID)', "
                + "which the local record '\(serverID)' already has, with other values: the two are kept apart; "
                + "check the server's ID sequence, then discard or re-create '\(temporaryID)'"
        case .recordNotFound(let table, let id):
            return "no record of '\(table)' has ID '\(id)'"
        case .changeBeingSent(let table, let id):
            return "a change of '\(table)' record '\(id)' is being sent right now; "
                + "try again once the push that sends it has finished"
        case .databaseFileMoved(let path):
            return "the database file '\(path)' was deleted or moved while the store had it open; this change "
                + "was not saved. Open the store again: at this path a new, empty database is created "
                + "(changes already pushed come back with the next pull), or open the file where it was moved"
        case .readOnlyStore(let path, let reason):
            return "the store '\(path)' is read-only (\(reason)); it can be read, but saving, deleting and "
                + "syncing need a database this process may write: open it from a writable location, "
                + "or without `readOnly`"
        case .invalidValue(let model, let field, let reason):
            return "cannot save \(model).\(field): \(reason)"
        }
    }
}
