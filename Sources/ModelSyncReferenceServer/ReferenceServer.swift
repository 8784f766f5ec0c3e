import FlyingFox
import Foundation
import ModelSync

/// FlyingFox has a type of the same name; the server speaks ModelSync's.
public typealias JSONValue = ModelSync.JSONValue

/// A sync server for tests, examples and benchmarks: real HTTP on loopback, server-generated IDs
/// (integers where the spec says `idType: int`), foreign keys enforced (a child naming an unknown
/// parent, such as a leaked temporary ID, gets a 422), `Idempotency-Key` honoured on creates,
/// incremental listings with tombstones, and fault injection.
///
/// Its REST conventions are those `RESTRemote` uses by default: `{path}` and `{path}/{id}`, listings
/// as `{"data": [...], "next_cursor": "..."}` with `?cursor=`, deleted records as
/// `{"id": ..., "deleted": true}`, errors as `{"error": "..."}`.
///
/// ```swift
/// let server = ReferenceServer(models: GeneratedModels.all)
/// let baseURL = try await server.start()
/// ```
public final class ReferenceServer: Sendable {
    let store: ServerStore
    private let state = ServerState()
    private let listingHold = ListingHold()
    /// The lowest client schema version served (ReferenceServer+SchemaVersion.swift), or `nil`.
    let minimumClientSchemaVersion = LockedValue<Int?>(nil)
    /// Whether batches are taken (ReferenceServer+Batch.swift).
    let acceptsBatches = LockedValue(false)

    /// - Parameters:
    ///   - models: The collections to serve (`GeneratedModels.all`).
    ///   - validate: Extra server-side rules: given a table and a record (wire form) about to be
    ///     stored, returns why it is invalid (answered as 422), or `nil` to accept it.
    public convenience init(
        models: [any SyncModel.Type],
        validate: @escaping @Sendable (_ table: String, _ record: [String: JSONValue]) -> String? = { _, _ in nil }
    ) {
        self.init(schemas: models.map { $0.schema }, validate: validate)
    }

    /// A server for models known only by their schemas (a spec read at run time, as
    /// `modelsync-reference-server --spec` does), not by compiled types.
    ///
    /// - Parameters:
    ///   - schemas: The collections to serve.
    ///   - validate: Extra server-side rules, as for ``init(models:validate:)``.
    public init(
        schemas: [ModelSchema],
        validate: @escaping @Sendable (_ table: String, _ record: [String: JSONValue]) -> String? = { _, _ in nil }
    ) {
        store = ServerStore(schemas: schemas, validate: validate)
    }

    /// Starts listening on `127.0.0.1:port` (`0` picks a free port) and returns the base URL.
    public func start(port: UInt16 = 0) async throws -> URL {
        let server = HTTPServer(
            address: try .inet(ip4: "127.0.0.1", port: port), timeout: 60,
            pool: NoDelaySocketPool(base: HTTPServer.defaultPool()), logger: .disabled,
            handler: ClosureHTTPHandler { [self] request in await self.handle(request) })
        let task = Task { try await server.run() }
        try await server.waitUntilListening()
        guard case .ip4(_, let boundPort) = await server.listeningAddress else {
            task.cancel()
            throw ServerError(status: 0, message: "the reference server could not read its address")
        }
        state.set(server: server, task: task)
        return URL(string: "http://127.0.0.1:\(boundPort)")!
    }

    /// Stops listening and closes connections.
    public func stop() async {
        if let (server, task) = state.take() {
            await server.stop(timeout: 0)
            task.cancel()
        }
    }

    /// Replaces the fault plan (`.none` heals the network).
    public func setFaults(_ plan: FaultPlan) {
        state.setFaults(plan)
    }

    /// Live records per table, in wire form.
    public func records() async -> [String: [[String: JSONValue]]] {
        await store.snapshot()
    }

    /// Live records of one table, in wire form.
    public func records(of model: any SyncModel.Type) async -> [[String: JSONValue]] {
        await store.snapshot()[model.schema.tableName] ?? []
    }

    /// Creates answered from the idempotency store instead of creating again.
    public var replayedCreates: Int {
        get async { await store.replayedCreates }
    }

    /// Updates answered from the idempotency store instead of applying them again.
    public var replayedUpdates: Int {
        get async { await store.replayedUpdates }
    }

    /// Makes server-generated IDs start again from 1, as a server restored from an old backup would:
    /// new records then get IDs that clients already hold for other records.
    public func resetIDSequence() async {
        await store.resetIDSequence()
    }

    /// Makes listings answer cursors that cycle (`a -> b -> a`) instead of advancing (`true`), or
    /// behave again (`false`).
    public func setCyclingCursors(_ cycling: Bool) async {
        await store.setCyclingCursors(cycling)
    }

    /// Makes the server ignore `Idempotency-Key` on creates (`true`): a repeated create creates another
    /// record, as a server without idempotency would. `false` honours keys again.
    public func setIgnoringIdempotencyKeys(_ ignoring: Bool) async {
        await store.setIgnoringIdempotencyKeys(ignoring)
    }

    /// Makes the listings of `model` after the first `pages` wait (before answering) until
    /// ``releaseListings()``: a client pulling is then stopped at a known page, for tests that kill
    /// or cancel a pull midway. ``waitForHeldListing()`` returns once a listing waits.
    public func holdListings(of model: any SyncModel.Type, after pages: Int) async {
        await listingHold.hold(table: model.schema.tableName, after: pages)
    }

    /// Returns once a listing held by ``holdListings(of:after:)`` is waiting.
    public func waitForHeldListing() async {
        await listingHold.waitForHeld()
    }

    /// Answers the held listings and stops holding.
    public func releaseListings() async {
        await listingHold.release()
    }

    /// Requests received, by method.
    public var requestCounts: [String: Int] { state.requestCounts }

    /// Stores a record as if another client had created it (for pull tests). A record of a server-ID
    /// model keeps the `id` it comes with, if any.
    ///
    /// With `checkingReferences: false` its foreign keys are not checked, as a server with a bug (or
    /// one that lists a record without the record it points at) would store it.
    @discardableResult
    public func insert(
        _ fields: [String: JSONValue], into model: any SyncModel.Type, checkingReferences: Bool = true
    ) async throws -> [String: JSONValue] {
        try await store.insert(
            fields, in: model.schema.tableName, idempotencyKey: nil, checkingReferences: checkingReferences,
            keepingGivenID: true)
    }

    /// Updates a record as if another client had.
    public func update(_ fields: [String: JSONValue], in model: any SyncModel.Type, id: String) async throws {
        _ = try await store.update(fields, in: model.schema.tableName, id: id)
    }

    /// Deletes a record (with the spec's delete rules) as if another client had.
    public func delete(in model: any SyncModel.Type, id: String) async throws {
        try await store.delete(in: model.schema.tableName, id: id)
    }

    /// Starts (`true`) or stops recording every request in ``loggedRequests``.
    public func setRequestLogging(_ enabled: Bool) {
        state.requestLog.withLock { $0.enabled = enabled }
    }

    /// The requests handled while logging was on, in the order they finished.
    public var loggedRequests: [LoggedRequest] { state.requestLog.withLock { $0.requests } }

    // MARK: Handling

    private func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard state.requestLog.withLock({ $0.enabled }) else { return await respond(to: request) }
        let started = ContinuousClock.now
        let response = await respond(to: request)
        let logged = LoggedRequest(
            method: request.method.rawValue, path: request.path,
            idempotencyKey: request.headers[HTTPHeader("Idempotency-Key")], started: started,
            finished: ContinuousClock.now, status: response.statusCode.code)
        state.requestLog.withLock { $0.requests.append(logged) }
        return response
    }

    private func respond(to request: HTTPRequest) async -> HTTPResponse {
        let method = request.method.rawValue
        state.count(method)
        if let refused = refuseTooOldClient(request) { return refused }
        let isWrite = method == "POST" || method == "PUT" || method == "DELETE"
        let fault = state.nextFault(isWrite: isWrite)
        if case .delay(let milliseconds)? = fault.fault {
            try? await Task.sleep(for: .milliseconds(milliseconds))
        }
        if fault.latency > 0 { try? await Task.sleep(for: .milliseconds(fault.latency)) }
        switch fault.fault {
        case .failBeforeCommit?: return Self.error(500, "injected failure before commit")
        case .status(let status)?: return Self.error(status, "injected failure (\(status))")
        case .rateLimit(let retryAfter)?:
            return HTTPResponse(
                statusCode: HTTPStatusCode(429, phrase: "Too Many Requests"),
                headers: [.contentType: "application/json", HTTPHeader("Retry-After"): "\(retryAfter)"],
                body: Data(#"{"error":"slow down"}"#.utf8))
        case .changedElsewhere?:
            if method == "PUT" || method == "PATCH",
                case (let collection, let id?)? = await store.collection(
                    forPath: request.target.path(percentEncoded: true))
            {
                await store.changeElsewhere(in: collection.table, id: id)
            }
        default: break
        }
        let response: HTTPResponse
        do {
            response = try await route(request)
        } catch let error as ServerError {
            return Self.error(error.status, error.message, current: error.current)
        } catch {
            return Self.error(400, "\(error)")
        }
        if case .failAfterCommit(let status)? = fault.fault {
            return Self.error(status, "injected failure after commit (\(status))")
        }
        if case .dropResponseAfterCommit? = fault.fault {
            try? await Task.sleep(for: state.droppedResponseDelay)
        }
        return response
    }

    private func route(_ request: HTTPRequest) async throws -> HTTPResponse {
        if let answer = try await routeBatches(request) { return answer }
        // The raw path: `request.path` is already percent-decoded (and dot segments resolved), which
        // would turn an ID `a%2Fb` into two segments and `%2541` into `A`.
        guard let (collection, id) = await store.collection(forPath: request.target.path(percentEncoded: true)) else {
            throw ServerError(status: 404, message: "no collection at \(request.path)")
        }
        switch (request.method.rawValue, id) {
        case ("POST", nil):
            let created = try await store.create(
                try await Self.body(request), in: collection.table,
                idempotencyKey: request.headers[HTTPHeader("Idempotency-Key")])
            return try Self.json(201, .object(created))
        case ("GET", nil):
            await listingHold.pass(table: collection.table)
            let cursor = request.query.first { $0.name == "cursor" }.flatMap { Int($0.value) }
            let limit = request.query.first { $0.name == "limit" }.flatMap { Int($0.value) } ?? 100
            let body = await store.list(in: collection.table, after: cursor, limit: limit)
            return HTTPResponse(statusCode: .ok, headers: [.contentType: "application/json"], body: body)
        case ("GET", let id?):
            guard let record = await store.record(in: collection.table, id: id) else {
                throw ServerError(status: 404, message: "no \(collection.table) has id '\(id)'")
            }
            return try Self.json(200, .object(record))
        case ("PUT", let id?), ("PATCH", let id?):
            let updated = try await store.update(
                try await Self.body(request), in: collection.table, id: id,
                ifMatch: request.headers[HTTPHeader("If-Match")].map(Self.unquotedETag),
                idempotencyKey: request.headers[HTTPHeader("Idempotency-Key")])
            return try Self.json(200, .object(updated))
        case ("DELETE", let id?):
            try await store.delete(in: collection.table, id: id)
            return HTTPResponse(statusCode: .noContent)
        default:
            throw ServerError(status: 405, message: "\(request.method.rawValue) is not allowed on \(request.path)")
        }
    }

    static func body(_ request: HTTPRequest) async throws -> [String: JSONValue] {
        let data = try await request.bodyData
        guard let object = (try? JSONValue.parse(data))?.objectValue else {
            throw ServerError(status: 400, message: "the body must be a JSON object")
        }
        return object
    }

    static func json(_ status: Int, _ value: JSONValue) throws -> HTTPResponse {
        HTTPResponse(
            statusCode: HTTPStatusCode(status, phrase: status == 201 ? "Created" : "OK"),
            headers: [.contentType: "application/json"], body: try value.serialized())
    }

    /// `"7"` or `W/"7"` -> `7`.
    static func unquotedETag(_ value: String) -> String {
        var text = value.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("W/") { text.removeFirst(2) }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = String(text.dropFirst().dropLast()) }
        return text
    }

    private static func error(_ status: Int, _ message: String, current: [String: JSONValue]? = nil) -> HTTPResponse {
        var object: [String: JSONValue] = ["error": .string(message)]
        if let current { object["current"] = .object(current) }
        let body = (try? JSONValue.object(object).serialized()) ?? Data()
        return HTTPResponse(
            statusCode: HTTPStatusCode(status, phrase: "Error"), headers: [.contentType: "application/json"],
            body: body)
    }
}

/// One request as the server handled it: from the moment its handler started (before injected
/// latency) to the moment it produced the response.
public struct LoggedRequest: Sendable, Hashable {
    public var method: String
    public var path: String
    /// The `Idempotency-Key` header, if the request had one.
    public var idempotencyKey: String?
    public var started: ContinuousClock.Instant
    public var finished: ContinuousClock.Instant
    /// The HTTP status of the response.
    public var status: Int
}

/// The mutable parts of a running server, behind a lock.
final class ServerState: @unchecked Sendable {
    /// Requests recorded while logging is on (``ReferenceServer/setRequestLogging(_:)``).
    let requestLog = LockedValue((enabled: false, requests: [LoggedRequest]()))
    private let lock = NSLock()
    private var server: HTTPServer?
    private var task: Task<Void, any Error>?
    private var plan = FaultPlan.none
    private var generator = SeededGenerator(seed: 1)
    private var counts: [String: Int] = [:]

    func set(server: HTTPServer, task: Task<Void, any Error>) {
        lock.withLock {
            self.server = server
            self.task = task
        }
    }

    func take() -> (HTTPServer, Task<Void, any Error>)? {
        lock.withLock {
            defer {
                server = nil
                task = nil
            }
            guard let server, let task else { return nil }
            return (server, task)
        }
    }

    func setFaults(_ plan: FaultPlan) {
        lock.withLock {
            self.plan = plan
            generator = SeededGenerator(seed: plan.seed)
        }
    }

    var droppedResponseDelay: Duration { lock.withLock { plan.droppedResponseDelay } }

    var requestCounts: [String: Int] { lock.withLock { counts } }

    func count(_ method: String) {
        lock.withLock { counts[method, default: 0] += 1 }
    }

    func nextFault(isWrite: Bool) -> (fault: InjectedFault?, latency: Int) {
        lock.withLock {
            let latency = plan.latency.upperBound > 0 ? Int.random(in: plan.latency, using: &generator) : 0
            guard isWrite else { return (nil, latency) }
            if !plan.script.isEmpty { return (plan.script.removeFirst(), latency) }
            let roll = Double.random(in: 0..<1, using: &generator)
            if roll < plan.failBeforeCommitRate { return (.failBeforeCommit, latency) }
            if roll < plan.failBeforeCommitRate + plan.dropResponseRate { return (.dropResponseAfterCommit, latency) }
            return (nil, latency)
        }
    }
}

/// A value behind its own lock.
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Holds listings of one table after a number of pages (``ReferenceServer/holdListings(of:after:)``).
actor ListingHold {
    private var table: String?
    private var remaining = 0
    private var held: [CheckedContinuation<Void, Never>] = []
    private var watchers: [CheckedContinuation<Void, Never>] = []

    func hold(table: String, after pages: Int) {
        self.table = table
        remaining = pages
    }

    /// Returns at once unless this listing is to be held; then when released.
    func pass(table listed: String) async {
        guard listed == table else { return }
        if remaining > 0 {
            remaining -= 1
            return
        }
        await withCheckedContinuation { continuation in
            held.append(continuation)
            for watcher in watchers { watcher.resume() }
            watchers.removeAll()
        }
    }

    func waitForHeld() async {
        guard held.isEmpty else { return }
        await withCheckedContinuation { watchers.append($0) }
    }

    func release() {
        table = nil
        for continuation in held { continuation.resume() }
        held.removeAll()
    }
}
