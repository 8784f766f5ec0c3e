import Foundation
import ModelSync
import ModelSyncReferenceServer
@_exported import ModelSyncTestSupport
import PluginChatModels

/// A reference server on loopback and a way to send records through it: saved in one store,
/// pushed by a `SyncEngine` over real HTTP, pulled into a fresh store.
struct RoundTripHarness {
    let server: ReferenceServer
    let baseURL: URL

    static func start() async throws -> RoundTripHarness {
        let server = ReferenceServer(models: GeneratedModels.all)
        return RoundTripHarness(server: server, baseURL: try await server.start())
    }

    func stop() async { await server.stop() }

    func engine(for store: SyncStore) -> SyncEngine {
        SyncEngine(
            store: store,
            remote: RESTRemote(configuration: .init(baseURL: baseURL, timeout: 10), models: GeneratedModels.all),
            configuration: .init(
                maximumConcurrentRequests: 4, retry: RetryPolicy(initialDelay: 0.05, maximumDelay: 0.2, jitter: 0.1),
                maximumRetryWait: 5))
    }

    /// Saves `samples` in a new store, pushes them, pulls them into another new store, and returns
    /// what the second store holds (by ID) with the push report.
    func roundTrip(_ samples: [Sample]) async throws -> (pulled: [Sample.ID: Sample], push: PushReport) {
        let source = try SyncStore(.inMemory, models: GeneratedModels.all)
        try await source.samples.save(samples)
        let push = try await engine(for: source).push()
        let destination = try SyncStore(.inMemory, models: GeneratedModels.all)
        _ = try await engine(for: destination).pull(Sample.self)
        let pulled = try await destination.samples.all()
        return (Dictionary(pulled.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }), push)
    }
}

extension Sample {
    /// A sample with ordinary values; tests change the field under test.
    static func ordinary() -> Sample {
        Sample(
            text: "text", count: 1, big: 2, ratio: 0.5, flag: true,
            when: Date(timeIntervalSinceReferenceDate: 800_000_000.25), blob: Data([1, 2, 3]), token: UUID(),
            link: URL(string: "https://example.com/a")!, amount: Decimal(string: "1.25")!, words: ["w"],
            mood: .calm)
    }
}

/// Bitwise equality for the fields whose `==` hides differences: Doubles (`-0.0 == 0.0`) and the
/// Double inside Dates.
func sameBits(_ first: Sample, _ second: Sample) -> Bool {
    first == second && first.ratio.bitPattern == second.ratio.bitPattern
        && first.when.timeIntervalSinceReferenceDate.bitPattern
            == second.when.timeIntervalSinceReferenceDate.bitPattern
        && first.maybeWhen?.timeIntervalSinceReferenceDate.bitPattern
            == second.maybeWhen?.timeIntervalSinceReferenceDate.bitPattern
        && first.amount.description == second.amount.description
        && first.maybeAmount?.description == second.maybeAmount?.description
}
