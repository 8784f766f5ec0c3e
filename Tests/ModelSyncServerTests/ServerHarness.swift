import ChatModels
import ChatServer
import Foundation
import Hummingbird
import Logging
import ModelSync
import ModelSyncReferenceServer
import ModelSyncServer
@_exported import ModelSyncTestSupport
import PostgresNIO

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

typealias ChatThread = ChatModels.Thread

/// The HS256 secret of the test servers' tokens.
let testSecret = "modelsync-test-secret-of-at-least-32-bytes"

/// The generated chat server (Tests/Reference/ChatServer) on a database of the test cluster, served
/// over HTTP on a free loopback port. Several may serve one database (scale-out).
final class GeneratedServer: Sendable {
    let url: URL
    let databaseURL: String
    let service: SyncService
    private let client: PostgresClient
    private let clientTask: Task<Void, Never>
    private let appTask: Task<Void, any Error>

    private init(
        url: URL, databaseURL: String, service: SyncService, client: PostgresClient, clientTask: Task<Void, Never>,
        appTask: Task<Void, any Error>
    ) {
        self.url = url
        self.databaseURL = databaseURL
        self.service = service
        self.client = client
        self.clientTask = clientTask
        self.appTask = appTask
    }

    /// A new database with the chat schema (`nil`), or another server on `databaseURL`; with `schema`,
    /// a server of that schema (built at run time, as `modelsync-server` does) instead of the chat's.
    static func start(
        databaseURL: String? = nil, authenticator: (any SyncAuthenticator)? = nil, schema: ServerSchema? = nil
    ) async throws -> GeneratedServer {
        let database: String
        if let databaseURL {
            database = databaseURL
        } else {
            database = try await PostgresCluster.shared().createDatabase("chat")
        }
        var configuration = try DatabaseURL.configuration(database)
        configuration.options.maximumConnections = 40
        let client = PostgresClient(configuration: configuration)
        let clientTask = Task { await client.run() }
        let auth: any SyncAuthenticator
        if let authenticator { auth = authenticator } else { auth = try await JWTAuthenticator(secret: testSecret) }
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        let service: SyncService
        if let schema {
            service = SyncService(schema: schema, database: client, authenticator: auth)
            service.addRoutes(to: router)
        } else {
            service = ServerModels.addRoutes(to: router, database: client, authenticator: auth)
        }
        do {
            try await service.migrate()
        } catch {
            clientTask.cancel()
            _ = await clientTask.value
            throw error
        }
        let port = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "test-server")
        logger.logLevel = .error
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                port.continuation.yield(channel.localAddress?.port ?? 0)
                port.continuation.finish()
            }, logger: logger)
        let appTask = Task { try await app.run() }
        var bound = 0
        for await value in port.stream { bound = value }
        return GeneratedServer(
            url: URL(string: "http://127.0.0.1:\(bound)")!, databaseURL: database, service: service, client: client,
            clientTask: clientTask, appTask: appTask)
    }

    func stop() async {
        appTask.cancel()
        _ = await appTask.result
        clientTask.cancel()
        _ = await clientTask.value
    }
}

/// A token of `tenant` for `subject`, valid for an hour (or already expired).
func token(tenant: String, subject: String = "tester", expired: Bool = false) async throws -> String {
    let authenticator = try await JWTAuthenticator(secret: testSecret)
    return try await authenticator.token(
        for: .init(subject: subject, tenant: tenant, expires: Date().addingTimeInterval(expired ? -60 : 3600)))
}

/// An HTTP client speaking the protocol by hand: "another client", and the checks of the tests.
struct ProtocolClient: Sendable {
    var baseURL: URL
    var headers: [String: String] = [:]

    struct Answer: Sendable {
        var status: Int
        var json: JSONValue?
        var text: String
        var object: [String: JSONValue] { json?.objectValue ?? [:] }
        var error: String { object["error"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? "" }
    }

    @discardableResult
    func send(_ method: String, _ path: String, _ body: JSONValue? = nil, headers extra: [String: String] = [:])
        async throws -> Answer
    {
        try await sendRaw(method, path, body: try body.map { try $0.serialized() }, headers: extra)
    }

    func sendRaw(_ method: String, _ path: String, body: Data?, headers extra: [String: String] = [:]) async throws
        -> Answer
    {
        var request = URLRequest(url: URL(string: baseURL.absoluteString + path)!)
        request.httpMethod = method
        for (name, value) in headers.merging(extra, uniquingKeysWith: { $1 }) {
            request.setValue(value, forHTTPHeaderField: name)
        }
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        return Answer(status: status, json: try? JSONValue.parse(data), text: String(decoding: data, as: UTF8.self))
    }

    /// Every live record of a collection (listing pages from no cursor), keyed by ID.
    func records(_ path: String) async throws -> [String: [String: JSONValue]] {
        var byID: [String: [String: JSONValue]] = [:]
        var cursor: String?
        while true {
            let query =
                cursor.map { "?cursor=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) }
                ?? ""
            let page = try await send("GET", path + query)
            guard page.status == 200, case .array(let items)? = page.object["data"] else {
                throw TestFailure(description: "listing \(path) failed: \(page.status) \(page.text)")
            }
            if items.isEmpty { return byID }
            for item in items {
                guard let object = item.objectValue, let id = object["id"]?.idString else { continue }
                if object["deleted"] == .bool(true) { byID[id] = nil } else { byID[id] = object }
            }
            guard case .string(let next)? = page.object["next_cursor"], next != cursor else { return byID }
            cursor = next
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// The two servers the end-to-end suite runs against.
enum ServerKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case reference
    case generatedPostgres

    var description: String { self == .reference ? "reference server" : "generated server on PostgreSQL" }
}

/// A server of either kind behind a forwarding proxy, and an engine syncing a store with it.
final class Backend: Sendable {
    let kind: ServerKind
    let proxy: ForwardingProxy
    let headers: [String: String]
    let serverURL: URL
    /// Whether engines send batches (the server takes them); per record otherwise.
    let batches: Bool
    private let reference: ReferenceServer?
    private let generated: GeneratedServer?

    private init(
        kind: ServerKind, proxy: ForwardingProxy, headers: [String: String], reference: ReferenceServer?,
        generated: GeneratedServer?, batches: Bool
    ) {
        self.kind = kind
        self.batches = batches
        self.proxy = proxy
        self.headers = headers
        self.serverURL = generated?.url ?? proxy.target
        self.reference = reference
        self.generated = generated
    }

    /// A server of `kind`; with `batches`, engines send batches (the reference server takes them),
    /// without, every change alone.
    static func start(_ kind: ServerKind, batches: Bool = false) async throws -> Backend {
        switch kind {
        case .reference:
            let server = ReferenceServer(models: GeneratedModels.all)
            server.setAcceptingBatches(batches)
            let url = try await server.start()
            return Backend(
                kind: kind, proxy: try ForwardingProxy(target: url), headers: [:], reference: server, generated: nil,
                batches: batches)
        case .generatedPostgres:
            let server = try await GeneratedServer.start()
            let headers = ["Authorization": "Bearer " + (try await token(tenant: "acme", subject: "ada"))]
            return Backend(
                kind: kind, proxy: try ForwardingProxy(target: server.url), headers: headers, reference: nil,
                generated: server, batches: batches)
        }
    }

    var baseURL: URL { proxy.baseURL }

    /// "Another client" that talks to the server directly (not through the proxy).
    var otherClient: ProtocolClient { ProtocolClient(baseURL: serverURL, headers: headers) }

    func makeEngine(
        store: SyncStore, timeout: TimeInterval = 5,
        conflictPolicy: ConflictPolicy = .keepLocalChanges
    ) -> SyncEngine {
        let headers = self.headers
        var configuration = RESTRemote.Configuration(baseURL: baseURL, headers: { headers }, timeout: timeout)
        configuration.usesBatches = batches
        let remote = RESTRemote(configuration: configuration, models: GeneratedModels.all)
        return SyncEngine(
            store: store, remote: remote,
            configuration: .init(
                maximumConcurrentRequests: 4, retry: RetryPolicy(initialDelay: 0.05, maximumDelay: 0.5, jitter: 0.2),
                conflictPolicy: conflictPolicy, maximumRetryWait: 30))
    }

    func makeRemote() -> RESTRemote {
        let headers = self.headers
        return RESTRemote(configuration: .init(baseURL: baseURL, headers: { headers }), models: GeneratedModels.all)
    }

    func stop() async {
        proxy.stop()
        await reference?.stop()
        await generated?.stop()
    }
}

extension GeneratedServer {
    /// A new server (the chat schema, a fresh database) and a client of `tenant` talking to it
    /// directly. Stop the server at the end of the test.
    static func startWithClient(tenant: String = "acme") async throws -> (
        server: GeneratedServer, client: ProtocolClient
    ) {
        let server = try await start()
        return (server, try await GeneratedServerTests.client(server, tenant: tenant))
    }
}

extension Backend {
    /// A backend of `kind` that takes batches, and "another client" of it (``otherClient``) that
    /// already created the user `usr_1`, the owner of the threads the batch tests create. Stop the
    /// backend at the end of the test.
    static func startForBatches(_ kind: ServerKind) async throws -> (backend: Backend, client: ProtocolClient) {
        let backend = try await start(kind, batches: true)
        let client = backend.otherClient
        let owner = try await client.send(
            "POST", "/users", .object(["id": .string("usr_1"), "name": .string("A"), "email": .string("a@x.org")]))
        guard owner.status == 201 else {
            await backend.stop()
            throw TestFailure(description: "creating the owner usr_1 on \(kind): \(owner.status) \(owner.text)")
        }
        return (backend, client)
    }
}

/// Creates, offline, a user, a thread, `messageCount` messages replying to each other, and two
/// artifacts linked to the thread.
func makeChat(in store: SyncStore, messageCount: Int = 3, email: String = "ada@example.com") async throws
    -> (user: User, thread: ChatThread, messages: [Message], artifacts: [Artifact])
{
    try await store.write { tx in
        let user = try tx.save(User(name: "Ada", email: email))
        let thread = try tx.save(
            ChatThread(
                title: "Trip", createdAt: Date(timeIntervalSinceReferenceDate: 800_000_000.5), tags: ["t"],
                ownerId: user.id))
        var messages: [Message] = []
        for index in 0..<messageCount {
            messages.append(
                try tx.save(
                    Message(
                        role: index.isMultiple(of: 2) ? .user : .assistant, body: "message \(index)",
                        threadId: thread.id, replyToId: messages.last?.id)))
        }
        let artifacts = [Artifact(title: "Plan", kind: "doc"), Artifact(title: "Map", kind: "image")]
        try tx.save(artifacts)
        for artifact in artifacts {
            try tx.save(ThreadArtifact(relation: .created, threadId: thread.id, artifactId: artifact.id))
        }
        return (user, thread, messages, artifacts)
    }
}
