import Foundation
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
    /// Text is bound from the string's own UTF-8 storage, up to its first NUL character as GRDB binds
    /// it (GRDB's `DatabaseValue.bind(to:at:)` first copies the string into a new C string).
    ///
    /// Any statement can be run this way; a statement run many times in a transaction (a save's)
    /// uses ``executePrepared(binding:)``, which skips GRDB's per-run reset.
    ///
    /// - Throws: `DatabaseError` (`SQLITE_MISUSE`) when `values` does not hold one value per parameter
    ///   of the statement (nothing runs), or the error SQLite reports.
    func execute(binding values: [DatabaseValue]) throws {
        try bind(positional: values)
        try execute()
    }

    /// Binds `values` by position in place of any arguments, so that GRDB then runs or fetches the
    /// statement (`execute()`, `String.fetchAll(statement)`…) with them, binding nothing itself.
    ///
    /// - Throws: `DatabaseError` (`SQLITE_MISUSE`) when `values` does not hold one value per parameter
    ///   of the statement, or the error SQLite reports.
    func bind(positional values: [DatabaseValue]) throws {
        try checkCount(of: values)
        prepareForPositionalBinding()
        try bindValues(values)
    }

    /// ``execute(binding:)`` for a statement prepared with ``prepareForPositionalBinding()`` (GRDB
    /// then binds nothing of its own when it runs it). Between runs, only SQLite's reset is repeated:
    /// GRDB's own reset and `setUncheckedArguments` check the dispatch queue and clear every binding
    /// each time, which a save paid twice. Should other code have run the statement with arguments
    /// of its own since (GRDB would then bind those again in `execute()`), it is prepared again.
    ///
    /// A statement never prepared fails with GRDB's "wrong number of statement arguments" error.
    func executePrepared(binding values: [DatabaseValue]) throws {
        try checkCount(of: values)
        if arguments.isEmpty {
            // Prepared: GRDB binds nothing in `execute()`; a finished statement must be reset before
            // it is bound again (the code of a failed run was already reported by that run).
            sqlite3_reset(sqliteStatement)
        } else {
            prepareForPositionalBinding()
        }
        try bindValues(values)
        try execute()
    }

    private func checkCount(of values: [DatabaseValue]) throws {
        let parameters = Int(sqlite3_bind_parameter_count(sqliteStatement))
        guard values.count == parameters else {
            throw DatabaseError(
                resultCode: .SQLITE_MISUSE,
                message: "\(values.count) value\(values.count == 1 ? "" : "s") for \(parameters) parameters", sql: sql)
        }
    }

    private func bindValues(_ values: [DatabaseValue]) throws {
        for (index, value) in values.enumerated() {
            let code: CInt
            if case .string(var text) = value.storage {
                code = text.withUTF8 { bytes in Self.bindText(bytes, to: sqliteStatement, at: CInt(index + 1)) }
            } else {
                code = value.bind(to: sqliteStatement, at: CInt(index + 1))
            }
            guard code == SQLITE_OK else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errstr(code)), sql: sql)
            }
        }
    }

    /// Resets the statement, clears its bindings and tells GRDB they are set and valid (no
    /// arguments of its own), so that ``execute(binding:)`` can bind by position and run it.
    func prepareForPositionalBinding() {
        setUncheckedArguments(StatementArguments())
    }

    /// Binds UTF-8 text up to its first NUL character, as SQLite does with a length of -1 (how GRDB
    /// binds a string); SQLite copies the bytes.
    private static func bindText(
        _ bytes: UnsafeBufferPointer<UInt8>, to statement: SQLiteStatement, at index: CInt
    ) -> CInt {
        guard let start = bytes.baseAddress, !bytes.isEmpty else {
            return sqlite3_bind_text(statement, index, "", 0, transient)
        }
        let length = memchr(start, 0, bytes.count).map { UnsafeRawPointer($0) - UnsafeRawPointer(start) } ?? bytes.count
        return UnsafeRawPointer(start).withMemoryRebound(to: CChar.self, capacity: bytes.count) {
            sqlite3_bind_text(statement, index, $0, CInt(length), transient)
        }
    }
}

/// SQLite's `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the call returns.
private let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
