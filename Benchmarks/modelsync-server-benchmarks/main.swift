// modelsync-server-benchmarks: the generated sync server against a hand-written Hummingbird +
// postgres-nio handler, measured in the same run on the same private PostgreSQL cluster. A target of
// its own so that the store benchmarks (`modelsync-benchmarks`) never wait for a release build of
// Hummingbird and postgres-nio.
//
//     swift run -c release modelsync-server-benchmarks [--quick] [--filter server-create8|push5000-batched|live-latency]
//
// Prints `BENCH server-create8 ours=<ms> baseline=<ms> ratio=<ours/baseline>` (median of several runs)
// and the creates per second of each; then `BENCH push5000-batched …` (BatchedPush.swift) and
// `BENCH live-latency p50=<ms> p99=<ms>` (LiveLatency.swift).

import ChatServer
import Foundation
import Hummingbird
import Logging
import ModelSyncServer
import ModelSyncTestSupport
import PostgresNIO

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

let quick = CommandLine.arguments.contains("--quick")
/// `--filter NAME`: only the benchmark of that name.
let filter = CommandLine.arguments.firstIndex(of: "--filter").flatMap {
    $0 + 1 < CommandLine.arguments.count ? CommandLine.arguments[$0 + 1] : nil
}
let creates = quick ? 800 : 4000
let repetitions = quick ? 3 : 5
let concurrency = 8

/// Serves `router` on a free loopback port until the returned task is cancelled.
func serve(_ router: Router<BasicRequestContext>) async -> (URL, Task<Void, any Error>) {
    let port = AsyncStream<Int>.makeStream()
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let app = Application(
        router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            port.continuation.yield(channel.localAddress?.port ?? 0)
            port.continuation.finish()
        }, logger: logger)
    let task = Task { try await app.run() }
    var bound = 0
    for await value in port.stream { bound = value }
    return (URL(string: "http://127.0.0.1:\(bound)")!, task)
}

/// The baseline: decode the body, `INSERT … RETURNING`, encode the row. No idempotency, history,
/// versions, tenancy or change cursor.
struct Artifact: Codable {
    var id: String
    var title: String
    var kind: String
}

func baselineRouter(_ database: PostgresClient) -> Router<BasicRequestContext> {
    let router = Router()
    router.post("/artifacts") { request, _ -> Response in
        let body = try await request.body.collect(upTo: 1 << 20)
        let artifact = try JSONDecoder().decode(Artifact.self, from: Data(buffer: body))
        var stored = artifact
        for try await (id, title, kind) in try await database.query(
            "INSERT INTO baseline_artifact (id, title, kind) VALUES (\(artifact.id), \(artifact.title), \(artifact.kind)) RETURNING id, title, kind"
        ).decode((String, String, String).self) {
            stored = Artifact(id: id, title: title, kind: kind)
        }
        return Response(
            status: .created, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(data: try JSONEncoder().encode(stored))))
    }
    return router
}

/// `creates` POSTs from `concurrency` clients at once; milliseconds for all of them.
func load(_ url: URL, run: Int) async throws -> Double {
    let session = URLSession(configuration: .ephemeral)
    let clock = ContinuousClock()
    let elapsed = try await clock.measure {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<concurrency {
                group.addTask {
                    for index in stride(from: client, to: creates, by: concurrency) {
                        let id = "r\(run)-\(index)"
                        var request = URLRequest(url: url.appendingPathComponent("artifacts"))
                        request.httpMethod = "POST"
                        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                        request.setValue(id, forHTTPHeaderField: "Idempotency-Key")
                        request.httpBody = Data(#"{"id":"\#(id)","title":"Plan \#(index)","kind":"doc"}"#.utf8)
                        let (_, response) = try await session.data(for: request)
                        guard (response as? HTTPURLResponse)?.statusCode == 201 else {
                            throw CocoaError(
                                .fileWriteUnknown, userInfo: [NSDebugDescriptionErrorKey: "create \(id) failed"])
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

let cluster = try await PostgresCluster.shared()
let databaseURL = try await cluster.createDatabase("bench")
var configuration = try DatabaseURL.configuration(databaseURL)
configuration.options.maximumConnections = 16
let database = PostgresClient(configuration: configuration)
let databaseTask = Task { await database.run() }
try await database.query(
    "CREATE TABLE baseline_artifact (id text PRIMARY KEY, title text NOT NULL, kind text NOT NULL)")

let oursRouter = Router()
oursRouter.add(middleware: BatchTimingMiddleware())
let service = ServerModels.addRoutes(to: oursRouter, database: database, authenticator: DevelopmentAuthenticator())
try await service.migrate()
let (oursURL, oursTask) = await serve(oursRouter)
let (baselineURL, baselineTask) = await serve(baselineRouter(database))

if filter == nil || filter == "server-create8" {
    var ours: [Double] = []
    var baseline: [Double] = []
    for run in 0..<repetitions {
        ours.append(try await load(oursURL, run: run))
        baseline.append(try await load(baselineURL, run: run))
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    let (oursMedian, baselineMedian) = (median(ours), median(baseline))
    print(
        "BENCH server-create8 ours=\(String(format: "%.2f", oursMedian)) baseline=\(String(format: "%.2f", baselineMedian))"
            + " ratio=\(String(format: "%.2f", oursMedian / baselineMedian))")
    print(
        "server-create8: \(creates) creates, 8 clients: ours \(Int(Double(creates) / oursMedian * 1000))/s "
            + "(idempotency record, history, change stamp, tenancy), baseline \(Int(Double(creates) / baselineMedian * 1000))/s "
            + "(INSERT … RETURNING)")
}
if filter == nil || filter == "push5000-batched" {
    try await runBatchedPushBenchmark(url: oursURL, repetitions: quick ? 1 : 3)
}
if filter == nil || filter == "live-latency" {
    try await runLiveLatency(url: oursURL, count: quick ? 200 : 1000)
}
oursTask.cancel()
baselineTask.cancel()
_ = await oursTask.result
_ = await baselineTask.result
databaseTask.cancel()
exit(0)
