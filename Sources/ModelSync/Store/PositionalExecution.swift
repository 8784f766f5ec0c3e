import GRDB
import GRDBSQLite

extension Statement {
    /// Runs the statement with `values` bound by position (the first value to the first `?`).
    ///
    /// The values are bound through SQLite's C API, then the statement runs through GRDB's
    /// `execute()`, so transaction observers and value observations see its changes as with
    /// `execute(arguments:)`. That method checks and converts its `StatementArguments` anew on every
    /// run (through a key path for an array of `DatabaseValue`): for the two statements of a save (the
    /// record's row and its outbox entry), that cost about as much as SQLite's own work.
    ///
    /// - Throws: `DatabaseError` (`SQLITE_MISUSE`) when `values` does not hold one value per parameter
    ///   of the statement (nothing runs), or the error SQLite reports.
    func execute(binding values: [DatabaseValue]) throws {
        // Resets the statement, clears its bindings and marks them valid, so `execute()` binds nothing.
        let parameters = Int(sqlite3_bind_parameter_count(sqliteStatement))
        guard values.count == parameters else {
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE,
                message: "\(values.count) value\(values.count == 1 ? "" : "s") for \(parameters) parameters", sql: sql)
        }
        setUncheckedArguments(StatementArguments())
        for (index, value) in values.enumerated() {
            let code = value.bind(to: sqliteStatement, at: CInt(index + 1))
            guard code == SQLITE_OK else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errstr(code)), sql: sql)
            }
        }
        try execute()
    }
}
