import ChatModels
import Foundation
@_spi(OutboxInternals) import ModelSync
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The folder of the build products (`.build/debug` or a custom scratch path), next to the test bundle.
func buildProductsDirectory() -> URL {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = executable.deletingLastPathComponent()
    while directory.path.contains(".xctest") { directory = directory.deletingLastPathComponent() }
    return directory
}

/// A `modelsync-server` child process serving the chat spec on a database.
final class ServerProcess: Sendable {
    let port: Int
    /// Its standard output and error.
    let log: URL
    private let process: UncheckedSendableBox<Process>

    private init(port: Int, process: Process, log: URL) {
        self.port = port
        self.log = log
        self.process = UncheckedSendableBox(process)
    }

    /// Waits until it says it listens; throws with its output when it exits first.
    func waitUntilListening() async throws {
        for _ in 0..<1200 {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("listening on") { return }
            if !process.value.isRunning { throw TestFailure(description: "modelsync-server exited: \(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure(description: "modelsync-server did not start")
    }

    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Starts it on `spec` (the chat spec by default) and waits until it listens (unless told not to).
    static func start(
        database: String, port: Int, spec: String = "Tests/Reference/Chat.modelsync.yaml",
        waitUntilListening: Bool = true
    ) async throws -> ServerProcess {
        let executable = buildProductsDirectory().appendingPathComponent("modelsync-server")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw TestFailure(description: "build the server first: swift build --product modelsync-server")
        }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("modelsync-server-\(UUID()).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = executable
        process.arguments = [
            "--spec", packageRoot.appending(path: spec).path, "--database", database,
            "--port", String(port), "--jwt-secret", testSecret,
        ]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        try? output.close()
        let server = ServerProcess(port: port, process: process, log: log)
        if !waitUntilListening { return server }
        // Ready when it says so (a generous bound: a first start creates the schema).
        do {
            try await server.waitUntilListening()
        } catch {
            server.kill()
            throw error
        }
        return server
    }

    /// SIGKILL: no chance to finish a request or answer it.
    func kill() {
        if process.value.isRunning { Glibc.kill(process.value.processIdentifier, SIGKILL) }
    }

    func waitForExit() async {
        await ModelSyncTestSupport.waitForExit(process.value)
    }
}

@Suite("modelsync-server processes")
struct ServerProcessTests {
    /// Half the kills are pinned between commit and answer: a proxy in front of each server holds
    /// the next successful create's answer, kills the server at that moment and never delivers it.
    /// The other half land anywhere (mid-request, mid-transaction, idle).
    @Test(
        "two modelsync-server processes on one database, SIGKILLed (between commit and answer, and anywhere) and restarted under load: clients converge with 0 duplicates, 0 dangling references, 0 lost writes"
    )
    func chaosConvergenceWithKilledServers() async throws {
        let database = try await PostgresCluster.shared().createDatabase("chaos")
        let ports = [try freeLoopbackPort(), try freeLoopbackPort()]
        let servers = Mutex<[ServerProcess]>([])
        for port in ports {
            let server = try await ServerProcess.start(database: database, port: port)
            servers.withLock { $0.append(server) }
        }
        let proxies = try ports.map { try ForwardingProxy(target: URL(string: "http://127.0.0.1:\($0)")!) }
        let authorization = "Bearer " + (try await token(tenant: "chaos", subject: "client"))
        let clients = 4
        let rounds = 10
        let done = Mutex(false)
        let kills = Mutex(0)
        let pinnedKills = Mutex(0)

        let killer = Task {
            var generator = SystemRandomNumberGenerator()
            var pinNext = true
            while !done.withLock({ $0 }) {
                try? await Task.sleep(for: .milliseconds(Int.random(in: 100...400, using: &generator)))
                if done.withLock({ $0 }) { break }
                let index = Int.random(in: 0..<2, using: &generator)
                let victim = servers.withLock { $0[index] }
                if pinNext {
                    let fired = Mutex(false)
                    proxies[index].dropNextSuccessfulResponse(method: "POST", pathPrefix: "/") {
                        victim.kill()
                        fired.withLock { $0 = true }
                    }
                    for _ in 0..<40 where !fired.withLock({ $0 }) && !done.withLock({ $0 }) {
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    proxies[index].cancelDrops()
                    guard fired.withLock({ $0 }) else { continue }  // no create went through it meanwhile
                    pinnedKills.withLock { $0 += 1 }
                } else {
                    victim.kill()
                }
                pinNext.toggle()
                await victim.waitForExit()
                kills.withLock { $0 += 1 }
                if let restarted = try? await ServerProcess.start(database: database, port: victim.port) {
                    servers.withLock { $0[index] = restarted }
                }
            }
        }

        let stores = try await withThrowingTaskGroup(of: SyncStore.self) { group in
            for client in 0..<clients {
                group.addTask {
                    let store = try SyncStore(.inMemory, models: GeneratedModels.all)
                    let remote = RESTRemote(
                        configuration: .init(
                            baseURL: proxies[client % 2].baseURL,
                            headers: { ["Authorization": authorization] }, timeout: 3),
                        models: GeneratedModels.all)
                    let engine = SyncEngine(
                        store: store, remote: remote,
                        configuration: .init(
                            maximumConcurrentRequests: 4,
                            retry: RetryPolicy(initialDelay: 0.05, maximumDelay: 0.3, jitter: 0.2),
                            maximumRetryWait: 60))
                    for round in 0..<rounds {
                        _ = try await makeChat(in: store, messageCount: 2, email: "c\(client)r\(round)@example.com")
                        try await engine.push()
                    }
                    // Whatever a kill left pending goes now.
                    while try await !store.outbox.entries().isEmpty { try await engine.push() }
                    return store
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        done.withLock { $0 = true }
        await killer.value
        for server in servers.withLock({ $0 }) {
            server.kill()
            await server.waitForExit()
        }
        let survivor = try await ServerProcess.start(database: database, port: try freeLoopbackPort())
        let api = ProtocolClient(baseURL: survivor.url, headers: ["Authorization": authorization])
        let threads = try await api.records("/threads")
        let messages = try await api.records("/messages")
        let users = try await api.records("/users")
        #expect(kills.withLock { $0 } >= 2)
        #expect(pinnedKills.withLock { $0 } >= 1, "no kill landed between a commit and its answer")
        #expect(users.count == clients * rounds, "duplicates or lost users")
        #expect(threads.count == clients * rounds, "duplicates or lost threads")
        #expect(messages.count == clients * rounds * 2, "duplicates or lost messages")
        #expect(try await api.records("/thread_artifacts").count == clients * rounds * 2)
        for message in messages.values {
            #expect(threads[message["thread_id"]?.idString ?? ""] != nil, "a dangling message")
        }
        for store in stores {
            #expect(try await store.outbox.entries().isEmpty)
            for thread in try await store.threads.all() {
                #expect(!thread.id.isTemporary)
                #expect(threads[thread.id.rawValue] != nil, "a local thread the server does not have")
            }
            #expect(try await store.messages.all().allSatisfy { messages[$0.id.rawValue] != nil })
        }
        print(
            "chaos: \(kills.withLock { $0 }) server kills (\(pinnedKills.withLock { $0 }) between commit and answer), "
                + "\(threads.count) threads, \(messages.count) messages")
        for proxy in proxies { proxy.stop() }
        await survivor.waitForExitAfterKill()
    }
}

extension ServerProcess {
    func waitForExitAfterKill() async {
        kill()
        await waitForExit()
    }
}
