import Foundation
import GRDB
import GRDBSQLite

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#endif

/// The database file of a ``SyncStore``: whether it may be written, how it is opened, and the guard
/// against writing into a file that was deleted or moved while the store was open.
enum StoreFile {
    /// Why a store at `url` must open read-only, or `nil` when it can write.
    ///
    /// - `requested`: the app asked for it (``SyncStore/Configuration/readOnly``); the file must exist.
    /// - The process may not write the file (permissions, a read-only volume).
    /// - The process may not write the folder, and the `-wal` or `-shm` file SQLite keeps next to
    ///   the database in WAL mode is missing or not writable (it could not be created).
    ///
    /// (`access(2)` answers for the real user: a process running as root may write anything but a
    /// read-only volume.)
    static func readOnlyReason(at url: URL, requested: Bool) throws -> String? {
        let path = url.path
        let exists = FileManager.default.fileExists(atPath: path)
        if requested {
            guard exists else {
                throw ModelSyncError.readOnlyStore(
                    path: path, reason: "the file does not exist, and a store opened read-only cannot create it")
            }
            return "it was opened with `readOnly`"
        }
        guard exists else { return nil }
        if access(path, W_OK) != 0 { return "this process may not write the file" }
        if access(url.deletingLastPathComponent().path, W_OK) != 0 {
            for suffix in ["-wal", "-shm"] where access(path + suffix, W_OK) != 0 {
                return "this process may not write its folder, where SQLite needs to keep its `\(suffix)` file"
            }
        }
        return nil
    }

    /// Opens the database file in WAL mode (a `DatabasePool`: reads do not wait for writes).
    ///
    /// A read-only WAL database needs its `-wal` and `-shm` files, or the right to create them; in a
    /// read-only folder without them (SQLite removes both when the last connection closes), the file
    /// is opened as immutable: read as it is, with no locking (nothing this process can do changes it).
    ///
    /// Switching a new file to WAL can meet another process (or store) doing the same: SQLite then
    /// answers "database is locked" at once, without its busy handler, to avoid a deadlock. Opening
    /// tries again, with a short random pause, until `busyTimeout` has passed.
    static func open(path: String, configuration: GRDB.Configuration, busyTimeout: TimeInterval) throws
        -> any DatabaseWriter
    {
        let deadline = Date().addingTimeInterval(busyTimeout)
        while true {
            do {
                return try openOnce(path: path, configuration: configuration)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && Date() < deadline {
                Thread.sleep(forTimeInterval: Double.random(in: 0.005...0.05))
            }
        }
    }

    private static func openOnce(path: String, configuration: GRDB.Configuration) throws -> any DatabaseWriter {
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            if configuration.readonly {
                // Opening is lazy: read once, so that a file that cannot be read fails here.
                _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") }
            }
            return pool
        } catch let error as DatabaseError
            where configuration.readonly
            && (error.resultCode == .SQLITE_CANTOPEN || error.resultCode == .SQLITE_READONLY)
        {
            guard var components = URLComponents(string: "file:") else { throw error }
            components.path = path
            components.queryItems = [URLQueryItem(name: "immutable", value: "1")]
            guard let uri = components.string else { throw error }
            let pool = try DatabasePool(path: uri, configuration: configuration)
            _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") }
            return pool
        }
    }

    /// `true` when SQLite reports that the file this connection opened is no longer at its path
    /// (deleted, or moved: `SQLITE_FCNTL_HAS_MOVED`, one `stat` of the path).
    static func hasMoved(_ connection: OpaquePointer?) -> Bool {
        guard let connection else { return false }
        var moved: CInt = 0
        return sqlite3_file_control(connection, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved != 0
    }

    /// Throws ``ModelSyncError/databaseFileMoved(path:)`` when the connection's file has moved.
    static func checkNotMoved(_ db: Database, path: String) throws {
        if hasMoved(db.sqliteConnection) { throw ModelSyncError.databaseFileMoved(path: path) }
    }

    /// Fails every write transaction of its connection at its commit when the database file was
    /// deleted or moved since the store opened it: in WAL mode SQLite would otherwise commit into
    /// the unlinked file and report success, and the change would be gone at the next open. GRDB
    /// rolls the transaction back and rethrows the error from the commit, so nothing is reported
    /// saved. Added to each writable connection for its whole life.
    final class MovedFileGuard: TransactionObserver {
        /// The connection's SQLite handle; the guard lives exactly as long as the connection.
        private let connection: OpaquePointer?
        private let path: String

        init(_ db: Database, path: String) {
            connection = db.sqliteConnection
            self.path = path
        }

        func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
        func databaseDidChange(with event: DatabaseEvent) {}
        func databaseDidCommit(_ db: Database) {}
        func databaseDidRollback(_ db: Database) {}

        func databaseWillCommit() throws {
            if StoreFile.hasMoved(connection) { throw ModelSyncError.databaseFileMoved(path: path) }
        }
    }
}
