import Foundation

/// A fault the reference server injects into one request.
public enum InjectedFault: Sendable, Hashable {
    /// Answer 500 without storing anything.
    case failBeforeCommit
    /// Store the change, then answer only after `delay` (longer than the client's timeout), as if the
    /// response was lost on the way back.
    case dropResponseAfterCommit
    /// Store the change, then answer this status (503, 504…) instead of the stored record, as a
    /// gateway that lost the server's answer would: the client sees a failure for a change the server
    /// made. Unlike ``dropResponseAfterCommit`` it does not depend on the client's timeout.
    case failAfterCommit(status: Int)
    /// Answer 429 with this `Retry-After` (seconds), storing nothing.
    case rateLimit(retryAfter: Int)
    /// Answer this status (500, 503…) without storing anything.
    case status(Int)
    /// Wait this long, then handle the request normally.
    case delay(milliseconds: Int)
    /// Another client changes the record this update names just before it is handled (its version
    /// goes up, its fields stay), so an update based on the version before meets a newer copy.
    case changedElsewhere
}

/// Which faults the server injects: scripted one-shot faults first, then random ones at the given
/// rates, from a seeded generator so that a run is reproducible.
public struct FaultPlan: Sendable {
    /// Faults for the next matching writes (POST, PUT, DELETE), in order.
    public var script: [InjectedFault]
    /// Probability that a write fails before commit (500).
    public var failBeforeCommitRate: Double
    /// Probability that a write commits and its response is lost.
    public var dropResponseRate: Double
    /// Random extra latency for every request, in milliseconds.
    public var latency: ClosedRange<Int>
    /// How long a "lost" response is held back; keep it above the client's timeout.
    public var droppedResponseDelay: Duration
    public var seed: UInt64

    public init(
        script: [InjectedFault] = [], failBeforeCommitRate: Double = 0, dropResponseRate: Double = 0,
        latency: ClosedRange<Int> = 0...0, droppedResponseDelay: Duration = .seconds(2), seed: UInt64 = 1
    ) {
        self.script = script
        self.failBeforeCommitRate = failBeforeCommitRate
        self.dropResponseRate = dropResponseRate
        self.latency = latency
        self.droppedResponseDelay = droppedResponseDelay
        self.seed = seed
    }

    /// No faults.
    public static let none = FaultPlan()
}

/// A small deterministic generator (SplitMix64) for reproducible fault injection.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
