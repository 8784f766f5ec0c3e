// modelsync-benchmarks: ModelSync against hand-written baselines, measured in the same run.
//
//     swift run -c release modelsync-benchmarks [--quick] [--filter <case>]
//
// Prints one line per case: `BENCH <case> ours=<ms> baseline=<ms> ratio=<ours/baseline>` (median of
// several runs; every run starts from a fresh database so runs do not warm each other up).

import Foundation

let arguments = CommandLine.arguments.dropFirst()
let quick = arguments.contains("--quick")
let filter = arguments.firstIndex(of: "--filter").flatMap { index in
    arguments.index(after: index) < arguments.endIndex ? arguments[arguments.index(after: index)] : nil
}
let repetitions = quick ? 3 : 9

func shouldRun(_ name: String) -> Bool { filter.map { name.contains($0) } ?? true }

func report(_ name: String, ours: [Double], baseline: [Double]) {
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    let (oursMedian, baselineMedian) = (median(ours), median(baseline))
    print(
        "BENCH \(name) ours=\(String(format: "%.2f", oursMedian)) baseline=\(String(format: "%.2f", baselineMedian))"
            + " ratio=\(String(format: "%.2f", oursMedian / baselineMedian))")
}

/// Milliseconds taken by `body`.
func measure(_ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let elapsed = try await clock.measure { try await body() }
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

/// Runs ours and the baseline alternately `repetitions` times, each after its own `setUp`.
func compare<Fixture>(
    _ name: String,
    setUp: () async throws -> Fixture,
    ours: (Fixture) async throws -> Void,
    baseline: (Fixture) async throws -> Void
) async throws {
    guard shouldRun(name) else { return }
    var oursTimes: [Double] = []
    var baselineTimes: [Double] = []
    for _ in 0..<repetitions {
        let first = try await setUp()
        oursTimes.append(try await measure { try await ours(first) })
        let second = try await setUp()
        baselineTimes.append(try await measure { try await baseline(second) })
    }
    report(name, ours: oursTimes, baseline: baselineTimes)
}

defer { try? FileManager.default.removeItem(at: benchmarkFolder) }
try await runStoreBenchmarks()
try await runPushBenchmark()
try await runObservedPushBenchmark()
try await runPullBenchmark()
try await runMigrationBenchmark()
if shouldRun("generate500") {
    let (ours, baseline) = try runGeneratorBenchmark(quick: quick)
    report("generate500", ours: [ours], baseline: [baseline])
}
