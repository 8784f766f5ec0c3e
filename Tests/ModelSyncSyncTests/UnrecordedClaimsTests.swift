import Foundation
import GRDB
import Testing

@testable import ModelSync

@Suite("A push's claims waiting for their outcomes")
struct UnrecordedClaimsTests {
    static func claimedEntry(sequence: Int64, recordID: String, key: String) throws -> OutboxEntry {
        try OutboxEntry(
            row: [
                "sequence": sequence, "tableName": "message", "recordID": recordID, "operation": "create",
                "payload": nil, "idempotencyKey": key, "state": "inFlight", "attempts": 1, "lastError": nil,
                "nextAttemptAt": nil, "createdAt": 0.0, "claimOwner": "store", "claimProcess": 1,
                "claimExpiresAt": 60.0,
            ])
    }

    @Test(
        "an entry that reuses the sequence number of one removed in flight stays listed when the removed one's answer is recorded"
    )
    func reusedSequenceNumber() throws {
        // Entry 5 is claimed and sent; a pull completes its create and removes it; the next change
        // takes number 5 again and the same push claims it before the first answer arrives.
        let removedInFlight = try Self.claimedEntry(sequence: 5, recordID: "tmp_a", key: "key-a")
        let reusedNumber = try Self.claimedEntry(sequence: 5, recordID: "tmp_b", key: "key-b")
        var claims = UnrecordedClaims()
        claims.insert([removedInFlight])
        claims.insert([reusedNumber])
        claims.remove(removedInFlight)
        #expect(claims.all == [reusedNumber])
        claims.remove(reusedNumber)
        #expect(claims.all.isEmpty)
    }

    @Test("entries leave the list as their outcomes are recorded, in any order")
    func recordedInAnyOrder() throws {
        let entries = try (1...4).map { try Self.claimedEntry(sequence: $0, recordID: "r\($0)", key: "k\($0)") }
        var claims = UnrecordedClaims()
        claims.insert(entries)
        claims.remove(entries[2])
        claims.remove(entries[0])
        #expect(Set(claims.all) == [entries[1], entries[3]])
    }
}
