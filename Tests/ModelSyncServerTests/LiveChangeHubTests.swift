import Foundation
import Logging
import PostgresNIO
import Testing

@testable import ModelSyncServer

#if canImport(Glibc)
    import Glibc
#endif

/// The server's one LISTEN per process: while it is not up, the streams are still woken.
@Suite("Live change hub")
struct LiveChangeHubTests {
    /// A loopback port that takes connections and never answers: a database whose connections
    /// hang until the client's connect timeout.
    static func silentPort() throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure(description: "socket() failed: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && listen(descriptor, 16) == 0
                    && getsockname(descriptor, address, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw TestFailure(description: "binding a loopback port failed: \(errno)")
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test(
        "while the LISTEN connection is still being opened (a database that does not answer), the hub wakes the tenant's streams anyway"
    )
    func streamsAreWokenWhileNotListening() async throws {
        let (descriptor, port) = try Self.silentPort()
        defer { close(descriptor) }
        var configuration = PostgresClient.Configuration(
            host: "127.0.0.1", port: port, username: "postgres", password: nil, database: "none", tls: .disable)
        // The LISTEN connection never opens during the test (the default timeout is 10 s).
        configuration.options.connectTimeout = .seconds(3600)
        let client = PostgresClient(configuration: configuration)
        let running = Task { await client.run() }
        defer { running.cancel() }
        let hub = LiveChangeHub(database: client, logger: Logger(label: "test-hub"))
        let (wakes, subscription) = hub.subscribe(tenant: "acme")
        defer { hub.unsubscribe(subscription) }

        // A hang guard, not a speed check: a wake-up comes within milliseconds, or never.
        let first = try await withThrowingTaskGroup(of: LiveChangeHub.Wake?.self) { group in
            group.addTask {
                var iterator = wakes.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try await Task.sleep(for: .seconds(60))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        #expect(first == .change)
    }
}
