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
    /// A server ID is already used by another record of the same table.
    case idAlreadyInUse(table: String, id: String)
    /// No record has this ID.
    case recordNotFound(table: String, id: String)
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
        case .idAlreadyInUse(let table, let id):
            return "ID '\(id)' is already used by another record of '\(table)'"
        case .recordNotFound(let table, let id):
            return "no record of '\(table)' has ID '\(id)'"
        case .invalidValue(let model, let field, let reason):
            return "cannot save \(model).\(field): \(reason)"
        }
    }
}
