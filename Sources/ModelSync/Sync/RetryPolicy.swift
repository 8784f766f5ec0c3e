import Foundation

/// When and how often failed sends are retried.
public struct RetryPolicy: Sendable, Hashable {
    /// Delay before the first retry, in seconds.
    public var initialDelay: TimeInterval
    /// Upper bound of the delay (a server's `Retry-After` is honoured even when longer).
    public var maximumDelay: TimeInterval
    public var multiplier: Double
    /// Fraction of each delay that is randomised (0 = none, 1 = "full jitter").
    public var jitter: Double

    public init(
        initialDelay: TimeInterval = 0.5, maximumDelay: TimeInterval = 60, multiplier: Double = 2, jitter: Double = 0.5
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The delay before attempt number `attempts + 1`.
    public func delay(afterAttempts attempts: Int, retryAfter: TimeInterval? = nil) -> TimeInterval {
        if let retryAfter { return retryAfter }
        let exponential = initialDelay * pow(multiplier, Double(max(0, attempts - 1)))
        let capped = min(maximumDelay, exponential)
        return capped * (1 - jitter * Double.random(in: 0...1))
    }
}
