// live-latency: a change saved on client A appears in client B's store, B's observation (a
// `LiveQuery`) firing, through A's push, the generated server, PostgreSQL's NOTIFY and B's live
// stream; p50 and p99 over `count` changes made one after the other on loopback.

import ChatModels
import Foundation
import ModelSync
import Observation

/// Waits on the main actor until `query` holds at least `target` (its observation fires).
@MainActor
func waitUntil(_ query: LiveQuery<Int>, reaches target: Int) async {
    while true {
        let (changed, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let value = withObservationTracking {
            query.value
        } onChange: {
            signal.yield()
        }
        if value >= target { return }
        for await _ in changed { break }
    }
}

/// Runs live-latency against the generated server at `url` (any tenant, no authentication) and
/// prints `BENCH live-latency p50=<ms> p99=<ms> ...`.
@MainActor
func runLiveLatency(url: URL, count: Int) async throws {
    func device() throws -> (SyncStore, SyncEngine) {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let remote = RESTRemote(configuration: .init(baseURL: url), models: GeneratedModels.all)
        return (store, SyncEngine(store: store, remote: remote))
    }
    let (storeA, engineA) = try device()
    let (storeB, engineB) = try device()
    try await engineA.sync()
    try await engineB.sync()
    let live = try await engineB.startLiveChanges()
    while live.state != .live { try await Task.sleep(for: .milliseconds(10)) }
    let before = try await storeB.artifacts.all().count
    let artifactsInB = storeB.live(default: 0) { db in try ChatModels.Artifact.fetchCount(db) }

    var latencies: [Double] = []
    let clock = ContinuousClock()
    for index in 0..<count {
        let start = clock.now
        _ = try await storeA.write { tx in
            try tx.save(
                ChatModels.Artifact(id: ChatModels.Artifact.ID("live-\(index)"), title: "Change \(index)", kind: "doc"))
        }
        try await engineA.push()
        await waitUntil(artifactsInB, reaches: before + index + 1)
        let elapsed = clock.now - start
        latencies.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
    }
    await live.stop()
    let sorted = latencies.sorted()
    func percentile(_ fraction: Double) -> Double {
        sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }
    print(
        "BENCH live-latency p50=\(String(format: "%.2f", percentile(0.5))) p99=\(String(format: "%.2f", percentile(0.99)))"
            + " max=\(String(format: "%.2f", sorted.last ?? 0)) changes=\(count) target_p99=50")
    print(
        "live-latency: \(count) changes saved on A, each pushed and seen by B's LiveQuery through the live stream "
            + "(applied \(live.statistics.applied), already applied \(live.statistics.alreadyApplied), "
            + "streams opened \(live.statistics.connections)); slowest: "
            + latencies.enumerated().sorted { $0.element > $1.element }.prefix(3).map {
                "#\($0.offset) \(String(format: "%.1f", $0.element)) ms"
            }.joined(separator: ", "))
}
