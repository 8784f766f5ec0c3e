import ChatModels
import Foundation
import GRDB
import GRDBSQLite
@_spi(OutboxInternals) import ModelSync
import ModelSyncReferenceServer
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The store file under stress: another connection (as another process has) writing at the same
/// time, a second store on the same file, the file deleted or moved under a live store, and a file
/// the process may not write.
@Suite("Store file")
struct StoreFileTests {
    // MARK: Waiting for other writers

    @Test("a save waits for another connection's write instead of failing with 'database is locked'")
    func saveWaitsForOtherWriter() async throws {
        let directory = try makeTemporaryDirectory("busy")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let store = try SyncStore(.file(url), models: GeneratedModels.all)
        let lock = try await WriteLockHolder.hold(url, for: 0.5)
        try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        let saved = ContinuousClock.now
        try await lock.finish()
        let released = try #require(lock.releasedAt)
        #expect(saved >= released, "the save returned while another connection still held the write lock")
        #expect(try await store.users.count() == 1)
    }

    @Test("opening a store waits while another connection writes")
    func openWaitsForOtherWriter() async throws {
        let directory = try makeTemporaryDirectory("busy-open")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        }
        let lock = try await WriteLockHolder.hold(url, for: 0.5)
        let store = try SyncStore(.file(url), models: GeneratedModels.all)
        try await lock.finish()
        #expect(try await store.users.count() == 1)
    }

    @Test("stores opened at once on a new file all open, with one schema")
    func concurrentOpensOfNewFile() async throws {
        let directory = try makeTemporaryDirectory("busy-create")
        defer { try? FileManager.default.removeItem(at: directory) }
        for attempt in 0..<5 {
            let url = directory.appendingPathComponent("app-\(attempt).sqlite")
            let failures = Mutex<[String]>([])
            let finished = Mutex(0)
            let openers = 6
            for _ in 0..<openers {
                // Threads, not tasks: opening blocks, and all of them must start together.
                Thread.detachNewThread {
                    do {
                        let store = try SyncStore(.file(url), models: GeneratedModels.all)
                        withExtendedLifetime(store) {}
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                    finished.withLock { $0 += 1 }
                }
            }
            #expect(try await eventually(timeout: .seconds(30)) { finished.withLock { $0 } == openers })
            let errors = failures.withLock { $0 }
            #expect(
                errors.isEmpty, "attempt \(attempt): \(errors.count) of \(openers) opens failed: \(errors.first ?? "")")
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            try await store.users.save(User(name: "Ada", email: "ada-\(attempt)@example.com"))
            #expect(try await store.users.count() == 1)
        }
    }

    @Test("the busy timeout is configurable: a short one gives up with 'database is locked'")
    func shortBusyTimeoutGivesUp() async throws {
        let directory = try makeTemporaryDirectory("busy-short")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let store = try SyncStore(
            .file(url), models: GeneratedModels.all, configuration: .init(busyTimeout: 0.1))
        #expect(store.configuration.busyTimeout == 0.1)
        // Held until released below: however slow the machine, the save meets the lock.
        let lock = try await WriteLockHolder.hold(url, for: 60)
        let started = ContinuousClock.now
        await #expect {
            try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        } throws: { error in
            "\(error)".contains("database is locked")
        }
        let gaveUp = ContinuousClock.now
        lock.release()
        try await lock.finish()
        // It waited its busy timeout, and gave up while the other connection still held the lock.
        #expect(gaveUp - started >= .milliseconds(80), "waited \(gaveUp - started)")
        #expect(gaveUp < (try #require(lock.releasedAt)), "the save waited for the lock to be released")
        #expect(SyncStore.Configuration().busyTimeout == 5)
    }

    // MARK: Claims of a live store

    @Test("a second store on the same file leaves the entries the first one claimed in flight")
    func secondStoreKeepsClaimsOfFirst() async throws {
        let directory = try makeTemporaryDirectory("claims")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let first = try SyncStore(.file(url), models: GeneratedModels.all)
        for index in 0..<3 {
            try await first.users.save(User(name: "user \(index)", email: "user\(index)@example.com"))
        }
        let claimed = try await first.outbox.claimReadyEntries(limit: 10)
        #expect(claimed.count == 3)

        let second = try SyncStore(.file(url), models: GeneratedModels.all)
        let states = try await second.outbox.entries().map(\.state)
        #expect(states == [.inFlight, .inFlight, .inFlight], "opening the second store took the first one's claims")
        let stolen = try await second.outbox.claimReadyEntries(limit: 10)
        #expect(stolen.isEmpty, "the second store claimed \(stolen.count) entries the first one is sending")
        withExtendedLifetime(first) {}
    }

    @Test("claims of a store that was released are taken back by the next claim, with their keys")
    func claimsOfReleasedStoreAreTakenBack() async throws {
        let directory = try makeTemporaryDirectory("claims-released")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        var first: SyncStore? = try SyncStore(.file(url), models: GeneratedModels.all)
        try await first?.users.save(User(name: "Ada", email: "ada@example.com"))
        let claimed = try #require(try await first?.outbox.claimReadyEntries(limit: 10))
        #expect(claimed.count == 1 && claimed.allSatisfy { $0.idempotencyKey != nil })
        let second = try SyncStore(.file(url), models: GeneratedModels.all)
        first = nil
        let reclaimed = try await second.outbox.claimReadyEntries(limit: 10)
        #expect(reclaimed.map(\.idempotencyKey) == claimed.map(\.idempotencyKey))
        #expect(reclaimed.map(\.attempts) == [2])
    }

    @Test("a claim whose lease expired is taken back by another store, with its key and attempts")
    func expiredLeaseIsTakenBack() async throws {
        let directory = try makeTemporaryDirectory("claims-lease")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        // A lease long enough that opening the second store on a loaded machine does not outlast it.
        let first = try SyncStore(.file(url), models: GeneratedModels.all, configuration: .init(claimLease: 3))
        try await first.users.save(User(name: "Ada", email: "ada@example.com"))
        let claimed = try await first.outbox.claimReadyEntries(limit: 10)
        let claim = try #require(claimed.first?.claim)
        #expect(claimed.first?.idempotencyKey != nil)
        #expect(claim.processID == Int64(getpid()))
        #expect(try await first.outbox.entries().first?.claim == claim)

        let second = try SyncStore(.file(url), models: GeneratedModels.all)
        #expect(try await second.outbox.claimReadyEntries(limit: 10).isEmpty)
        try await Task.sleep(for: .seconds(3.2))
        let reclaimed = try await second.outbox.claimReadyEntries(limit: 10)
        #expect(reclaimed.map(\.idempotencyKey) == claimed.map(\.idempotencyKey))
        #expect(reclaimed.map(\.attempts) == [2])
        #expect(reclaimed.first?.claim?.owner != claim.owner)
        withExtendedLifetime(first) {}
    }

    @Test("released claims go back to the queue unsent, with their key and attempts; only the owner releases")
    func releasedClaimsAreQueuedAgain() async throws {
        let directory = try makeTemporaryDirectory("claims-release")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let store = try SyncStore(.file(url), models: GeneratedModels.all)
        let other = try SyncStore(.file(url), models: GeneratedModels.all)
        for index in 0..<3 {
            try await store.users.save(User(name: "user \(index)", email: "user\(index)@example.com"))
        }
        let claimed = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(claimed.count == 3)
        #expect(Set(claimed.compactMap(\.idempotencyKey)).count == 3)
        // Another store cannot release what it does not hold.
        #expect(try await other.outbox.releaseClaims(claimed) == 0)
        #expect(try await store.outbox.counts()[.inFlight] == 3)

        let later = Date().addingTimeInterval(3_600)
        #expect(try await store.outbox.releaseClaims(Array(claimed.prefix(2))) == 2)
        #expect(try await store.outbox.releaseClaims([claimed[2]], retryAt: later) == 1)
        let entries = try await store.outbox.entries()
        #expect(entries.map(\.state) == [.pending, .pending, .pending])
        #expect(entries.map(\.attempts) == [1, 1, 1])
        #expect(entries.map(\.idempotencyKey) == claimed.map(\.idempotencyKey))
        #expect(entries.allSatisfy { $0.claim == nil })
        #expect(entries[2].nextAttemptAt == later.timeIntervalSinceReferenceDate)
        // Released twice: nothing more happens.
        #expect(try await store.outbox.releaseClaims(claimed) == 0)
        let again = try await other.outbox.claimReadyEntries(limit: 10)
        #expect(again.map(\.idempotencyKey) == claimed.prefix(2).map(\.idempotencyKey))
        #expect(again.map(\.attempts) == [2, 2])
    }

    @Test("a database from before claim owners is upgraded on open; its entries in flight are requeued")
    func upgradeFromDatabaseWithoutClaimOwners() async throws {
        let directory = try makeTemporaryDirectory("claims-upgrade")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            try await store.users.save(User(name: "Ada", email: "ada@example.com"))
            try await store.users.save(User(name: "Bob", email: "bob@example.com"))
        }
        // What the previous version left: no claim columns, no migration record, one entry in flight.
        let old = try DatabaseQueue(path: url.path)
        try await old.write { db in
            try db.execute(
                sql: """
                    DROP INDEX modelsync_outbox_claims;
                    ALTER TABLE modelsync_outbox DROP COLUMN claimOwner;
                    ALTER TABLE modelsync_outbox DROP COLUMN claimProcess;
                    ALTER TABLE modelsync_outbox DROP COLUMN claimExpiresAt;
                    DELETE FROM grdb_migrations WHERE identifier = 'modelsync-claims-v1';
                    UPDATE modelsync_outbox SET state = 'inFlight', attempts = 1 WHERE sequence = 1;
                    """)
        }
        try old.close()

        let store = try SyncStore(.file(url), models: GeneratedModels.all)
        let entries = try await store.outbox.entries()
        #expect(entries.map(\.state) == [.pending, .pending])
        #expect(entries.map(\.attempts) == [1, 0])
        let claimed = try await store.outbox.claimReadyEntries(limit: 10)
        #expect(claimed.count == 2)
        #expect(claimed.allSatisfy { $0.claim?.owner != nil })
    }

    @Test(
        "an outbox with the previous release's two indexes by record is upgraded to one: every entry kept as it was, coalescing unchanged"
    )
    func upgradeFromOutboxWithTwoRecordIndexes() async throws {
        let directory = try makeTemporaryDirectory("record-index-upgrade")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let (sender, _, queued, inFlight, failed) = try await Self.makeOutboxInEveryState(at: url)

        // What the previous release has: the two indexes, no computed column, no migration record.
        let old = try DatabaseQueue(path: url.path)
        let columns = Self.outboxColumns
        let before = try await old.write { db in
            try db.execute(
                sql: """
                    DROP INDEX modelsync_outbox_record_unsent;
                    ALTER TABLE modelsync_outbox DROP COLUMN unsentSlot;
                    CREATE INDEX modelsync_outbox_record ON modelsync_outbox(tableName, recordID);
                    CREATE UNIQUE INDEX modelsync_outbox_unsent ON modelsync_outbox(tableName, recordID)
                        WHERE state = 'pending' AND attempts = 0;
                    DELETE FROM grdb_migrations WHERE identifier = 'modelsync-outbox-record-index-v2';
                    """)
            return try Row.fetchAll(db, sql: "SELECT \(columns) FROM modelsync_outbox ORDER BY sequence")
                .map { (state: $0["state"] as String, row: $0.description) }
        }
        try old.close()
        #expect(before.count == 6)
        #expect(before.map(\.state) == ["inFlight", "failed", "pending", "pending", "pending", "pending"])

        // A second store opens the file (the sender's claim stays its own) and upgrades it.
        let upgraded = try SyncStore(.file(url), models: GeneratedModels.all)
        let (after, indexes) = try await upgraded.read { db in
            (
                try Row.fetchAll(db, sql: "SELECT \(columns) FROM modelsync_outbox ORDER BY sequence").map(
                    \.description),
                try Self.outboxIndexes(db)
            )
        }
        #expect(after == before.map(\.row), "the upgrade changes no entry")
        #expect(
            indexes == [
                "modelsync_outbox_claims", "modelsync_outbox_record_unsent", "modelsync_outbox_sent_key",
                "modelsync_outbox_stored_payload", "modelsync_outbox_unit",
            ])

        // Coalescing as before: a save absorbs the record's unsent entry, never the one in flight or
        // the failed one.
        try await upgraded.users.save(User(id: queued.id, name: "Queued, renamed", email: "q@example.com"))
        try await upgraded.users.save(User(id: inFlight.id, name: "Renamed twice", email: "s@example.com"))
        try await upgraded.users.save(User(id: failed.id, name: "Refused, fixed", email: "r2@example.com"))
        let entries = try await upgraded.outbox.entries()
        #expect(entries.count == 7)
        #expect(entries.filter { $0.recordID == queued.id.rawValue }.map(\.operation) == [.create])
        #expect(entries.filter { $0.recordID == inFlight.id.rawValue }.map(\.state) == [.inFlight, .pending])
        #expect(entries.filter { $0.recordID == failed.id.rawValue }.map(\.state) == [.failed, .pending])
        #expect(entries.first { $0.recordID == queued.id.rawValue }?.payload?.contains("Queued, renamed") == true)
        #expect(
            entries.last { $0.recordID == inFlight.id.rawValue }?.payload?.contains("Renamed twice") == true)
        _ = sender
    }

    @Test(
        "an outbox numbered with AUTOINCREMENT (the previous release) is rebuilt without it: every entry and column kept, every index back, the queue then sent as before"
    )
    func upgradeFromAutoincrementOutbox() async throws {
        let directory = try makeTemporaryDirectory("outbox-rowid-upgrade")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let server = ReferenceServer(models: GeneratedModels.all)
        let baseURL = try await server.start()
        defer { Task { await server.stop() } }
        let (sender, claimed, _, _, failed) = try await Self.makeOutboxInEveryState(at: url)

        // What the previous release has: the same table numbered with AUTOINCREMENT (whose counter
        // is past the highest entry, as after removed entries), a key in every entry (it drew one at
        // save time; this release draws it at the first claim), no migration record.
        let old = try DatabaseQueue(path: url.path)
        let columns = Self.outboxColumns
        let keyedAtSave = columns.replacingOccurrences(
            of: "idempotencyKey", with: "COALESCE(idempotencyKey, 'key-drawn-at-save-' || sequence)")
        let before = try await old.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE previous (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT, tableName TEXT NOT NULL, recordID TEXT NOT NULL,
                        operation TEXT NOT NULL, payload TEXT, idempotencyKey TEXT NOT NULL,
                        state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, lastError TEXT,
                        nextAttemptAt DOUBLE, createdAt DOUBLE NOT NULL, claimOwner TEXT, claimProcess INTEGER,
                        claimExpiresAt DOUBLE, unitID TEXT,
                        unsentSlot INTEGER
                            GENERATED ALWAYS AS (CASE WHEN state = 'pending' AND attempts = 0 THEN 0 END) VIRTUAL);
                    INSERT INTO previous (\(columns)) SELECT \(keyedAtSave) FROM modelsync_outbox;
                    DROP TABLE modelsync_outbox;
                    ALTER TABLE previous RENAME TO modelsync_outbox;
                    UPDATE sqlite_sequence SET seq = 40 WHERE name = 'modelsync_outbox';
                    CREATE UNIQUE INDEX modelsync_outbox_record_unsent ON modelsync_outbox(tableName, recordID, unsentSlot);
                    CREATE INDEX modelsync_outbox_claims ON modelsync_outbox(claimOwner, claimProcess)
                        WHERE state = 'inFlight';
                    CREATE INDEX modelsync_outbox_sent_key ON modelsync_outbox(idempotencyKey) WHERE attempts > 0;
                    CREATE INDEX modelsync_outbox_unit ON modelsync_outbox(unitID) WHERE unitID IS NOT NULL;
                    CREATE INDEX modelsync_outbox_stored_payload ON modelsync_outbox(tableName)
                        WHERE payload IS NOT NULL;
                    DELETE FROM grdb_migrations WHERE identifier = 'modelsync-outbox-rowid-v3';
                    """)
            return try Row.fetchAll(db, sql: "SELECT \(columns) FROM modelsync_outbox ORDER BY sequence")
                .map {
                    (
                        state: $0["state"] as String, payload: $0["payload"] as String?,
                        key: $0["idempotencyKey"] as String, row: $0.description
                    )
                }
        }
        try old.close()
        #expect(before.map(\.state) == ["inFlight", "failed", "pending", "pending", "pending", "pending"])
        #expect(before.prefix(2).allSatisfy { $0.payload != nil }, "the entries sent once keep their payload")
        #expect(before.prefix(2).map(\.key) == claimed.compactMap(\.idempotencyKey) && claimed.count == 2)

        // A second store opens the file (the sender's claim stays its own) and rebuilds the table.
        let upgraded = try SyncStore(.file(url), models: GeneratedModels.all)
        let (after, indexes, definition) = try await upgraded.read { db in
            (
                try Row.fetchAll(db, sql: "SELECT \(columns) FROM modelsync_outbox ORDER BY sequence").map(
                    \.description),
                try Self.outboxIndexes(db),
                try String.fetchOne(
                    db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'modelsync_outbox'")
            )
        }
        #expect(after == before.map(\.row), "the rebuild changes no entry (the keys of entries sent once included)")
        let keyColumn = try await upgraded.read { db in
            try Int.fetchOne(
                db, sql: "SELECT \"notnull\" FROM pragma_table_info('modelsync_outbox') WHERE name = 'idempotencyKey'")
        }
        #expect(keyColumn == 0, "the key column is nullable: an entry gets its key at its first claim")
        #expect(
            indexes == [
                "modelsync_outbox_claims", "modelsync_outbox_record_unsent", "modelsync_outbox_sent_key",
                "modelsync_outbox_stored_payload", "modelsync_outbox_unit",
            ])
        #expect(definition?.uppercased().contains("AUTOINCREMENT") == false)

        // The claim is still the sender's (owner and key kept): it gives it back, and the upgraded
        // store sends the queue in order, the create in flight before the change queued behind it.
        #expect(try await sender.outbox.releaseClaims([claimed[0]]) == 1)
        let engine = SyncEngine(
            store: upgraded,
            remote: RESTRemote(configuration: .init(baseURL: baseURL, timeout: 5), models: GeneratedModels.all))
        _ = try await engine.push()
        let names = await server.records(of: User.self).compactMap { $0["name"]?.stringValue }.sorted()
        #expect(names == ["Queued", "Sent, then renamed", "Unit one", "Unit two"])
        let left = try await upgraded.outbox.entries()
        #expect(left.map(\.state) == [.failed])
        #expect(left.map(\.recordID) == [failed.id.rawValue])
        // A new entry takes the highest number plus one (AUTOINCREMENT would have given 41).
        try await upgraded.users.save(User(name: "New", email: "n@example.com"))
        #expect(try await upgraded.outbox.entries().map(\.sequence) == [left[0].sequence, left[0].sequence + 1])
    }

    /// The outbox's stored columns, in order.
    static let outboxColumns =
        "sequence, tableName, recordID, operation, payload, idempotencyKey, state, attempts, lastError, "
        + "nextAttemptAt, createdAt, claimOwner, claimProcess, claimExpiresAt, unitID"

    /// The names of the outbox's indexes, sorted.
    static func outboxIndexes(_ db: Database) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'modelsync_outbox'
                AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name
                """)
    }

    /// A store on `url` whose outbox holds entries in every state, in this order: in flight (claimed
    /// by the returned store, payload stored), failed (payload stored), never sent (`queued`), a change
    /// of the record in flight queued behind it, and a unit of two creates.
    static func makeOutboxInEveryState(at url: URL) async throws -> (
        sender: SyncStore, claimed: [OutboxEntry], queued: User, inFlight: User, failed: User
    ) {
        let sender = try SyncStore(.file(url), models: GeneratedModels.all)
        let (queued, inFlight, failed) = (
            User(name: "Queued", email: "q@example.com"), User(name: "Sent", email: "s@example.com"),
            User(name: "Refused", email: "r@example.com")
        )
        try await sender.users.save(inFlight)
        try await sender.users.save(failed)
        let claimed = try await sender.outbox.claimReadyEntries(limit: 2)
        try #require(claimed.count == 2)
        try await sender.outbox.markFailed(claimed[1], reason: "422 email taken")
        try await sender.users.save(queued)
        try await sender.users.save(User(id: inFlight.id, name: "Sent, then renamed", email: "s@example.com"))
        try await sender.writeAsOneUnit { tx in
            try tx.save(User(name: "Unit one", email: "u1@example.com"))
            try tx.save(User(name: "Unit two", email: "u2@example.com"))
        }
        return (sender, claimed, queued, inFlight, failed)
    }

    // MARK: The file deleted or moved under a live store

    @Test("saves after the database's folder was deleted throw instead of reporting success")
    func savesAfterFolderDeletedThrow() async throws {
        let directory = try makeTemporaryDirectory("deleted")
        defer { try? FileManager.default.removeItem(at: directory) }
        let folder = directory.appendingPathComponent("Library")
        let url = folder.appendingPathComponent("app.sqlite")
        let store = try SyncStore(.file(url), models: GeneratedModels.all)
        try await store.users.save(User(name: "before", email: "before@example.com"))
        try FileManager.default.removeItem(at: folder)

        var reportedSaved: [String] = []
        var errors: [String] = []
        for index in 0..<5 {
            do {
                try await store.users.save(User(name: "after \(index)", email: "after\(index)@example.com"))
                reportedSaved.append("after \(index)")
            } catch {
                errors.append("\(error)")
            }
        }
        #expect(reportedSaved.isEmpty, "\(reportedSaved.count) saves reported success into a deleted file")
        #expect(errors.count == 5)
        #expect(errors.allSatisfy { $0.contains(url.path) && $0.contains("deleted or moved") }, "\(errors.first ?? "")")
        // What reopening finds is what was reported saved: nothing.
        let reopened = try SyncStore(.file(url), models: GeneratedModels.all)
        #expect(try await reopened.users.count() == reportedSaved.count)
    }

    @Test("reads and saves after the database file was moved throw and name the file")
    func storeWhoseFileMovedThrows() async throws {
        let directory = try makeTemporaryDirectory("moved")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("old").appendingPathComponent("app.sqlite")
        let store = try SyncStore(.file(url), models: GeneratedModels.all)
        try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        try FileManager.default.moveItem(
            at: url.deletingLastPathComponent(), to: directory.appendingPathComponent("new"))

        await #expect(throws: (any Error).self, "a save into a moved file reported success") {
            try await store.users.save(User(name: "Bob", email: "bob@example.com"))
        }
        await #expect(throws: (any Error).self, "a read of a moved file returned data as if nothing happened") {
            _ = try await store.users.count()
        }
        do {
            _ = try await store.users.count()
        } catch {
            #expect("\(error)".contains(url.path))
        }
    }
}

extension StoreFileTests {
    // MARK: Read-only

    @Test("a store opened read-only reads; saves, deletes and claims throw a clear error; the file is unchanged")
    func readOnlyStoreReadsAndRefusesWrites() async throws {
        let directory = try makeTemporaryDirectory("read-only-option")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let ada: User
        do {
            let store = try SyncStore(.file(url), models: GeneratedModels.all)
            ada = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
        }
        let before = try Data(contentsOf: url)
        let store = try SyncStore(.file(url), models: GeneratedModels.all, configuration: .init(readOnly: true))
        #expect(store.isReadOnly)
        #expect(try await store.users.find(ada.id)?.name == "Ada")
        #expect(try await store.outbox.entries().count == 1)
        let expected = ModelSyncError.readOnlyStore(path: url.path, reason: "it was opened with `readOnly`")
        await #expect(throws: expected) { try await store.users.save(User(name: "Bob", email: "bob@example.com")) }
        await #expect(throws: expected) { try await store.users.delete(ada.id) }
        await #expect(throws: expected) { try await store.outbox.claimReadyEntries(limit: 10) }
        #expect(expected.description.contains("read-only") && expected.description.contains(url.path))
        #expect(try Data(contentsOf: url) == before)
    }

    @Test("opening a missing file read-only, or one that needs upgrading, throws a clear error")
    func readOnlyStoreThatCannotOpen() async throws {
        let directory = try makeTemporaryDirectory("read-only-missing")
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing.sqlite")
        #expect {
            try SyncStore(.file(missing), models: GeneratedModels.all, configuration: .init(readOnly: true))
        } throws: { error in
            "\(error)".contains("does not exist") && "\(error)".contains(missing.path)
        }
        #expect(!FileManager.default.fileExists(atPath: missing.path))
        #expect {
            try SyncStore(.inMemory, models: GeneratedModels.all, configuration: .init(readOnly: true))
        } throws: { error in
            "\(error)".contains("in-memory")
        }

        let url = directory.appendingPathComponent("old.sqlite")
        do { _ = try SyncStore(.file(url), models: GeneratedModels.all) }
        let queue = try DatabaseQueue(path: url.path)
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'modelsync-claims-v1'")
        }
        try queue.close()
        #expect {
            try SyncStore(.file(url), models: GeneratedModels.all, configuration: .init(readOnly: true))
        } throws: { error in
            "\(error)".contains("modelsync-claims-v1") && "\(error)".contains("upgrade")
        }
    }

    // MARK: Cost of the moved-file check

    @Test("the moved-file check costs a small fraction of a write transaction")
    func movedFileCheckIsCheap() async throws {
        let directory = try makeTemporaryDirectory("moved-cost")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("app.sqlite")
        let store = try SyncStore(.file(url), models: GeneratedModels.all)
        let writes = 2_000
        let clock = ContinuousClock()
        let writeTime = try await clock.measure {
            for index in 0..<writes {
                try await store.write { tx in
                    try tx.databaseBypassingSync.execute(
                        sql: "INSERT INTO modelsync_pull_state (tableName, cursor) VALUES (?, '')",
                        arguments: ["t\(index)"])
                }
            }
        }
        let checks = 100_000
        let checkTime = try await store.writeBypassingSync { db in
            clock.measure {
                var moved = 0
                for _ in 0..<checks {
                    var flag: CInt = 0
                    sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_HAS_MOVED, &flag)
                    moved += Int(flag)
                }
                precondition(moved == 0)
            }
        }
        let perWrite = writeTime / writes
        let perCheck = checkTime / checks
        let share = perCheck / perWrite
        func microseconds(_ duration: Duration) -> String {
            String(
                format: "%.2f µs",
                Double(duration.components.attoseconds) / 1e12 + Double(duration.components.seconds) * 1e6)
        }
        print(
            "moved-file check: \(microseconds(perCheck)) per check, \(microseconds(perWrite)) per write "
                + "transaction (a one-row write, check included): \(String(format: "%.2f", share * 100)) %")
        #expect(share < 0.2, "the check costs \(perCheck), a write transaction \(perWrite)")
    }
}

/// Holds the write lock of a database on another connection, as another process writing does.
final class WriteLockHolder: Sendable {
    private let done = Mutex<Result<Void, any Error>?>(nil)
    private let released = Mutex<ContinuousClock.Instant?>(nil)
    private let releaseNow = DispatchSemaphore(value: 0)

    /// When the other connection started to give the lock back (just before its `COMMIT`).
    var releasedAt: ContinuousClock.Instant? { released.withLock { $0 } }

    /// Takes the write lock (`BEGIN IMMEDIATE`) of the database at `url` on a new connection and
    /// holds it for `duration` seconds, or until ``release()``, on a thread of its own; returns once
    /// the lock is held.
    static func hold(_ url: URL, for duration: TimeInterval) async throws -> WriteLockHolder {
        let holder = WriteLockHolder()
        let held = Mutex(false)
        Thread.detachNewThread {
            let result = Result {
                let connection = try DatabaseQueue(path: url.path)
                try connection.writeWithoutTransaction { db in
                    try db.execute(sql: "BEGIN IMMEDIATE")
                    held.withLock { $0 = true }
                    _ = holder.releaseNow.wait(timeout: .now() + duration)
                    holder.released.withLock { $0 = ContinuousClock.now }
                    try db.execute(sql: "COMMIT")
                }
                try connection.close()
            }
            if case .failure = result { held.withLock { $0 = true } }
            holder.done.withLock { $0 = result }
        }
        try #require(try await eventually { held.withLock { $0 } }, "the other connection never took the lock")
        if let result = holder.done.withLock({ $0 }) { try result.get() }
        return holder
    }

    /// Gives the lock back now.
    func release() {
        releaseNow.signal()
    }

    /// Waits for the other connection to commit and close, and rethrows what it threw.
    func finish() async throws {
        while done.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        try done.withLock { $0 }?.get()
    }
}
