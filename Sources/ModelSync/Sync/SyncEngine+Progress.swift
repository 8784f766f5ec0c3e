import Foundation
import GRDB
import Logging

// Progress: counts of the outbox and of each model's pull, for a UI.
extension SyncEngine {
    // MARK: Progress

    /// Sync progress, now and after every change the engine makes. The stream ends when the caller
    /// stops iterating.
    public nonisolated func progress() -> AsyncStream<SyncProgress> {
        let (stream, continuation) = AsyncStream<SyncProgress>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let token = nextSubscriber.withLock { value -> Int in
            value += 1
            return value
        }
        progressSubscribers.withLock { $0[token] = continuation }
        continuation.onTermination = { [progressSubscribers] _ in
            _ = progressSubscribers.withLock { $0.removeValue(forKey: token) }
        }
        Task { await self.publishProgress() }
        return stream
    }

    /// The current progress.
    public func currentProgress() async throws -> SyncProgress {
        let counts = try await store.outbox.counts()
        return SyncProgress(
            queued: counts[.pending, default: 0], inFlight: counts[.inFlight, default: 0], sent: sentCount,
            failed: counts[.failed, default: 0], pulls: pullProgress)
    }

    func publishProgress() async {
        let subscribers = progressSubscribers.withLock { Array($0.values) }
        guard !subscribers.isEmpty, let progress = try? await currentProgress() else { return }
        for subscriber in subscribers { subscriber.yield(progress) }
    }

    func setPullProgress(_ model: String, _ progress: PullProgress) {
        pullProgress[model] = progress
    }

    func updatePullProgress(_ model: String, _ change: (inout PullProgress) -> Void) {
        change(&pullProgress[model, default: PullProgress()])
    }
}
