import Foundation
import GRDB

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#endif

// Claim ownership: two stores on one database file (in one process, or in two: an app and its
// extension) never send the same outbox entry at the same time.
//
// - Claiming an entry (`Outbox.claimReadyEntries`) marks it `inFlight` and records, in its row and in
//   the same IMMEDIATE transaction, who holds the claim: `claimOwner` (a random token, one per
//   `SyncStore` instance), `claimProcess` (the process ID) and `claimExpiresAt` (now plus
//   `SyncStore.Configuration.claimLease`). Another store never claims an entry in flight.
// - A claim is stale, and its entry goes back to `pending` with its idempotency key and attempt
//   count, when:
//   - its store instance, in this process, was released (the token is no longer registered);
//   - its process no longer exists (`kill(pid, 0)` fails with `ESRCH`);
//   - its lease expired (for owners that cannot be checked: a process ID reused by an unrelated
//     process; or an owner that lost track of its claim, when recording an outcome and releasing
//     the claim both threw);
//   - it has no owner (claimed by a version of ModelSync that did not record one).
// - Stale claims are taken back when a store opens and at every claim, so that entries orphaned by
//   an extension that ended are sent by the app while it keeps running.
// - An owner gives its claims back at once with `Outbox.releaseClaims` (a push whose outcomes could
//   not be recorded).
//
// A live owner keeps its claims however long its requests take, up to the lease: the lease must
// exceed the longest request (a claim taken back while its request is still running may be sent
// twice at once; a create is still deduplicated by its idempotency key).

/// Who a store's outbox claims belong to: one `SyncStore` instance in one process. Registered as
/// live while the store exists.
final class ClaimOwner: Sendable {
    /// Random, one per store instance.
    let token: String
    let processID: Int64

    /// Tokens of the store instances alive in this process.
    private static let live = Locked(Set<String>())

    init() {
        token = UUID().uuidString.lowercased()
        processID = Int64(getpid())
        Self.live.withLock { _ = $0.insert(token) }
    }

    deinit {
        let token = self.token
        Self.live.withLock { _ = $0.remove(token) }
    }

    /// Whether the owner of a claim still exists: a store instance alive in this process, or
    /// another process that still runs (or that this process may not signal: it exists).
    static func isAlive(token: String, processID: Int64) -> Bool {
        if processID == Int64(getpid()) { return live.withLock { $0.contains(token) } }
        guard processID > 0, processID <= Int64(Int32.max) else { return false }
        return kill(pid_t(processID), 0) == 0 || errno != ESRCH
    }
}

extension OutboxStore {
    /// Puts entries whose claim is stale (see the top of this file) back in the queue: pending,
    /// with their idempotency key and attempt count. Runs in the caller's write transaction.
    ///
    /// - Returns: How many entries were put back.
    @discardableResult
    static func requeueStaleClaims(_ db: Database, now: Date = Date()) throws -> Int {
        let table = SchemaBuilder.outboxTable
        var staleOwners: [String] = []
        let claims = try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT DISTINCT claimOwner, claimProcess FROM \(table) WHERE state = 'inFlight'"))
        for claim in claims {
            guard let token: String = claim["claimOwner"], let processID: Int64 = claim["claimProcess"] else {
                continue  // no owner: taken back below
            }
            if !ClaimOwner.isAlive(token: token, processID: processID) { staleOwners.append(token) }
        }
        try db.cachedStatement(
            sql: """
                UPDATE \(table)
                SET state = 'pending', claimOwner = NULL, claimProcess = NULL, claimExpiresAt = NULL
                WHERE state = 'inFlight' AND (
                    claimOwner IS NULL OR claimProcess IS NULL OR claimExpiresAt IS NULL OR claimExpiresAt <= ?
                    OR claimOwner IN (SELECT value FROM json_each(?)))
                """
        ).execute(arguments: [
            now.timeIntervalSinceReferenceDate, String(decoding: try JSONEncoder().encode(staleOwners), as: UTF8.self),
        ])
        return db.changesCount
    }
}

/// Hooks for tests of claims (a process stopped in the middle of one).
@_spi(Testing) public enum OutboxClaimHooks {
    /// Called inside the claim transaction (`Outbox.claimReadyEntries`, `Outbox.claimReadyUnit`), after
    /// each entry is marked in flight and, for an entry never sent, its payload written; given how
    /// many entries the transaction has claimed so far.
    static let didClaimEntry = Locked<(@Sendable (_ claimedSoFar: Int) -> Void)?>(nil)

    /// Sets what runs inside the claim transactions of every store in this process, after each entry
    /// is claimed (given how many the transaction has claimed so far), before the transaction
    /// commits; `nil` removes it.
    public static func setDidClaimEntry(_ hook: (@Sendable (_ claimedSoFar: Int) -> Void)?) {
        didClaimEntry.withLock { $0 = hook }
    }
}
