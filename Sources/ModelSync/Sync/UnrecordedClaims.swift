/// The entries a push has claimed whose outcomes are not recorded yet. If the push ends abnormally
/// (the store fails), they are given back to the queue at once instead of waiting for their claim's
/// lease to run out.
///
/// An entry is told apart from others by its sequence number and its idempotency key together. A
/// sequence number alone is not enough: an entry removed while in flight (a pull completes its create
/// by the creation key) frees its number for the next change, which the same push may claim before
/// the removed entry's answer arrives.
struct UnrecordedClaims {
    private struct Identity: Hashable {
        let sequence: Int64
        let idempotencyKey: String?
    }

    private var entries: [Identity: OutboxEntry] = [:]

    private static func identity(of entry: OutboxEntry) -> Identity {
        Identity(sequence: entry.sequence, idempotencyKey: entry.idempotencyKey)
    }

    /// Adds entries just claimed.
    mutating func insert(_ claimed: some Sequence<OutboxEntry>) {
        for entry in claimed { entries[Self.identity(of: entry)] = entry }
    }

    /// Removes an entry whose outcome has been recorded.
    mutating func remove(_ recorded: OutboxEntry) {
        entries.removeValue(forKey: Self.identity(of: recorded))
    }

    /// The entries still waiting for their outcomes to be recorded.
    var all: [OutboxEntry] { Array(entries.values) }
}
