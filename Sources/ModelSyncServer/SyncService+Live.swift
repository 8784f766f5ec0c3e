import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresNIO

// Live changes: `GET /modelsync/live?after=TOKEN` streams a tenant's committed changes as
// Server-Sent Events, every model in one stream, each event's `id` the listing cursor after it.
extension SyncService {
    /// The path of the live change stream (Docs/Protocol.md, "Live changes").
    public static let liveChangesPath = "/modelsync/live"

    /// The PostgreSQL channel the row triggers notify on commit, with the tenant as payload.
    static let changesChannel = "modelsync_changes"

    /// How many changes one query of a stream reads at most.
    static let liveBatchSize = 500

    /// Seconds between two heartbeats (an SSE comment) of an idle stream: a client that hears
    /// nothing for several of them knows the connection is gone, and the server notices a client
    /// that went away.
    static let heartbeatInterval: Duration = .seconds(15)

    /// Mounts `GET /modelsync/live` (``liveChangesPath``) on `router` (``addRoutes(to:)`` does).
    public func addLiveRoute<Context: RequestContext>(to router: Router<Context>) {
        router.get(RouterPath(Self.liveChangesPath)) { request, _ in
            await self.liveResponse(request)
        }
    }

    private func liveResponse(_ request: Request) async -> Response {
        let identity: SyncIdentity
        let start: ChangePosition
        do {
            identity = try await authenticator.authenticate(request.headers)
            let token = request.uri.queryParameters["after"].map(String.init) ?? request.headers[.lastEventID]
            guard let token, let position = ChangePosition(token) else {
                throw SyncServerError(
                    status: 400,
                    message:
                        "the live stream needs the token of the last change the client applied: ?after=<token> "
                        + "(a next_cursor of a listing or the id of an event of this server, such as 1234-56)")
            }
            if let horizon = try await retentionHorizon(), position < horizon {
                return Self.response(410, Self.expired(position, horizon: horizon))
            }
            start = position
        } catch let error as SyncServerError {
            var response = Self.response(error.status, error.body)
            if error.status == 401 { response.headers[.wwwAuthenticate] = #"Bearer realm="modelsync""# }
            return response
        } catch {
            logger.error("live stream: \(String(reflecting: error))")
            return Self.response(503, SyncServerError(status: 503, message: "the database is unavailable; retry").body)
        }
        let tenant = identity.tenant
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store",
                HTTPField.Name("X-Accel-Buffering")!: "no",
            ],
            body: ResponseBody { writer in
                try await self.stream(tenant: tenant, from: start, to: &writer)
                try await writer.finish(nil)
            })
    }

    /// The body of `410 Gone` (and of the `expired` event) for a token from before the retention
    /// horizon: what happened and what to do, and the horizon to stream from after a full pull.
    static func expired(_ position: ChangePosition, horizon: ChangePosition) -> String {
        let message =
            "the token \(position) is older than what this server keeps (tombstones up to \(horizon) were pruned): "
            + "pull every collection again from no cursor, then stream from \(horizon)"
        return #"{"error":"# + jsonString(message) + #","horizon":"# + jsonString(horizon.description) + "}"
    }

    /// Writes the tenant's changes after `position` as they commit, until the client goes away.
    private func stream(tenant: String, from start: ChangePosition, to writer: inout any ResponseBodyWriter)
        async throws
    {
        let (wakes, subscription) = liveHub.subscribe(tenant: tenant)
        defer { liveHub.unsubscribe(subscription) }
        // The heartbeat shares the wake-up stream: one loop waits for both.
        let heartbeat = Task { [liveHub] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.heartbeatInterval)
                liveHub.beat(subscription)
            }
        }
        defer { heartbeat.cancel() }
        var position = start
        try await writer.write(ByteBuffer(string: "retry: 1000\n: live from \(position)\n\n"))
        var heldBackAttempt = 0
        var wakeIterator = wakes.makeAsyncIterator()
        while !Task.isCancelled {
            if let horizon = try await retentionHorizon(), position < horizon {
                let body = Self.expired(position, horizon: horizon)
                try await writer.write(ByteBuffer(string: "event: expired\ndata: \(body)\n\n"))
                break
            }
            let changes = try await changes(tenant: tenant, after: position)
            if let last = changes.last {
                var text = ""
                for change in changes {
                    text += "id: \(change.position)\nevent: change\ndata: {\"model\":"
                    text += jsonString(change.model) + ",\"record\":" + change.record + "}\n\n"
                }
                try await writer.write(ByteBuffer(string: text))
                position = last.position
            }
            if changes.count == Self.liveBatchSize { continue }
            // A short batch: either everything committed was sent, or a transaction still running
            // holds later changes back (the stream must not pass it). Only the second case polls.
            if try await heldBack(tenant: tenant, after: position) {
                try await Task.sleep(for: .milliseconds(min(2 << heldBackAttempt, 100)))
                heldBackAttempt += 1
                continue
            }
            heldBackAttempt = 0
            guard let wake = await wakeIterator.next() else { break }
            if wake == .heartbeat { try await writer.write(ByteBuffer(string: ": heartbeat\n\n")) }
        }
    }

    /// One change of a stream: its model's table, its position, the record or tombstone (JSON text).
    struct LiveChange {
        var model: String
        var position: ChangePosition
        var record: String
    }

    /// The tenant's changes after `position` of finished transactions, every model, oldest first.
    private func changes(tenant: String, after position: ChangePosition) async throws -> [LiveChange] {
        let branches = schema.models.map { model in
            "SELECT \(Self.literal(model.table)) AS model, c.xid, c.seq, c.record FROM (\n"
                + sql.models[model.table]!.listChanges + "\n) AS c"
        }
        let query =
            "SELECT model, xid, seq, record FROM (\n" + branches.joined(separator: "\nUNION ALL\n")
            + "\n) AS changes ORDER BY xid::xid8, seq LIMIT $4"
        var binds = PostgresBindings()
        binds.append(tenant)
        binds.append(String(position.xid))
        binds.append(position.seq)
        binds.append(Int64(Self.liveBatchSize))
        var changes: [LiveChange] = []
        for try await (model, xid, seq, record) in try await database.query(
            PostgresQuery(unsafeSQL: query, binds: binds), logger: logger
        ).decode((String, String, Int64, String).self) {
            changes.append(
                LiveChange(model: model, position: ChangePosition(xid: UInt64(xid) ?? 0, seq: seq), record: record))
        }
        return changes
    }

    /// Whether committed changes follow `position` that a running transaction holds back.
    private func heldBack(tenant: String, after position: ChangePosition) async throws -> Bool {
        let query =
            "SELECT " + schema.models.map { "(" + sql.models[$0.table]!.heldBack + ")" }.joined(separator: " OR ")
        var binds = PostgresBindings()
        binds.append(tenant)
        binds.append(String(position.xid))
        binds.append(position.seq)
        var held = false
        for try await value in try await database.query(PostgresQuery(unsafeSQL: query, binds: binds), logger: logger)
            .decode(Bool.self)
        {
            held = value
        }
        return held
    }

    // MARK: Retention

    /// The position up to which tombstones were pruned (``pruneTombstones(through:)``), or `nil`
    /// when none were: a listing or a stream from an earlier position would miss deletions.
    public func retentionHorizon() async throws -> ChangePosition? {
        var horizon: ChangePosition?
        for try await (xid, seq) in try await database.query(
            #"SELECT "_xid"::text, "_seq" FROM modelsync_retention"#, logger: logger
        ).decode((String, Int64).self) {
            horizon = ChangePosition(xid: UInt64(xid) ?? 0, seq: seq)
        }
        return horizon
    }

    /// Deletes the tombstones at or before `token` (a listing's `next_cursor` or a stream event's
    /// `id`), in every tenant, and records it as the retention horizon: a live stream asked to
    /// start before it answers `410 Gone`, and the client pulls every collection again from no
    /// cursor (a full listing notices deletions without tombstones). Run it now and then with a
    /// token old enough that every device has synced past it (for instance one noted a month ago).
    ///
    /// - Returns: How many tombstones were deleted.
    /// - Throws: ``SyncServerError`` `400` for a token this server did not give.
    @discardableResult
    public func pruneTombstones(through token: String) async throws -> Int {
        guard let position = ChangePosition(token) else {
            throw SyncServerError(status: 400, message: "'\(token)' is not a change token of this server (1234-56)")
        }
        return try await transaction { connection in
            try await connection.query(
                """
                INSERT INTO modelsync_retention ("_xid", "_seq") VALUES (\(String(position.xid))::xid8, \(position.seq))
                ON CONFLICT ("singleton") DO UPDATE SET "_xid" = EXCLUDED."_xid", "_seq" = EXCLUDED."_seq"
                WHERE (modelsync_retention."_xid", modelsync_retention."_seq") < (EXCLUDED."_xid", EXCLUDED."_seq")
                """, logger: self.logger)
            var deleted = 0
            for try await _ in try await connection.query(
                """
                DELETE FROM modelsync_tombstones
                WHERE ("_xid", "_seq") <= (\(String(position.xid))::xid8, \(position.seq)) RETURNING 1
                """, logger: self.logger)
            {
                deleted += 1
            }
            return deleted
        }
    }

    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// A position in a server's changes: the writing transaction's ID and the change's sequence, the
/// listing cursor and live stream token `"xid-seq"` (Docs/Server.md, "The change cursor").
public struct ChangePosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The transaction ID (`_xid`).
    public var xid: UInt64
    /// The change sequence (`_seq`).
    public var seq: Int64

    /// A position.
    public init(xid: UInt64, seq: Int64) {
        self.xid = xid
        self.seq = seq
    }

    /// The position of a token `"xid-seq"`; `nil` for text this server never gives.
    public init?(_ token: String) {
        let parts = token.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let xid = UInt64(parts[0]), let seq = Int64(parts[1]), seq >= 0 else { return nil }
        self.init(xid: xid, seq: seq)
    }

    public var description: String { "\(xid)-\(seq)" }

    public static func < (lhs: ChangePosition, rhs: ChangePosition) -> Bool {
        (lhs.xid, lhs.seq) < (rhs.xid, rhs.seq)
    }
}

/// One LISTEN connection per ``SyncService`` (per server process), fanning the commit
/// notifications out to the streams of each tenant. The listener runs while any stream is open.
final class LiveChangeHub: @unchecked Sendable {
    enum Wake: Sendable, Equatable {
        case change
        case heartbeat
    }

    struct Subscription: Sendable, Hashable {
        var tenant: String
        var id: Int
    }

    private let database: PostgresClient
    private let logger: Logger
    private let lock = NSLock()
    private var streams: [String: [Int: AsyncStream<Wake>.Continuation]] = [:]
    private var nextID = 0
    private var listener: Task<Void, Never>?

    init(database: PostgresClient, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// Wake-ups for `tenant`'s stream: one pending at most (a stream re-reads everything after its
    /// position on each, so two pending wake-ups are one).
    func subscribe(tenant: String) -> (AsyncStream<Wake>, Subscription) {
        let (stream, continuation) = AsyncStream<Wake>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let subscription = lock.withLock {
            nextID += 1
            streams[tenant, default: [:]][nextID] = continuation
            if listener == nil { listener = Task { await self.listen() } }
            return Subscription(tenant: tenant, id: nextID)
        }
        return (stream, subscription)
    }

    func unsubscribe(_ subscription: Subscription) {
        let continuation = lock.withLock { () -> AsyncStream<Wake>.Continuation? in
            let removed = streams[subscription.tenant]?.removeValue(forKey: subscription.id)
            if streams[subscription.tenant]?.isEmpty == true { streams[subscription.tenant] = nil }
            if streams.isEmpty {
                listener?.cancel()
                listener = nil
            }
            return removed
        }
        continuation?.finish()
    }

    func beat(_ subscription: Subscription) {
        let continuation = lock.withLock { streams[subscription.tenant]?[subscription.id] }
        continuation?.yield(.heartbeat)
    }

    private func wake(tenant: String?) {
        let continuations = lock.withLock {
            if let tenant { return streams[tenant].map { Array($0.values) } ?? [] }
            return streams.values.flatMap(\.values)
        }
        for continuation in continuations { continuation.yield(.change) }
    }

    /// How often the streams re-read while the LISTEN connection is not up.
    static let pollIntervalWhileNotListening: Duration = .milliseconds(50)

    /// LISTENs until cancelled; a lost connection is opened again (with a short backoff), and every
    /// stream re-reads then, since notifications sent meanwhile were missed. Until LISTEN is up
    /// (opening a connection may take up to the client's connect timeout, 10 s by default, and a
    /// failed attempt waits for its backoff) no commit wakes a stream, so the streams are woken
    /// every ``pollIntervalWhileNotListening`` instead.
    private func listen() async {
        var failures = 0
        var polling: Task<Void, Never>? = poll()
        defer { polling?.cancel() }
        while !Task.isCancelled {
            if polling == nil { polling = poll() }
            do {
                try await database.withConnection { connection in
                    try await connection.listen(on: SyncService.changesChannel) { notifications in
                        polling?.cancel()
                        polling = nil
                        failures = 0
                        self.wake(tenant: nil)
                        for try await notification in notifications {
                            self.wake(tenant: notification.payload)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.warning("live changes: LISTEN failed (\(error)); listening again")
            }
            wake(tenant: nil)
            if polling == nil { polling = poll() }
            try? await Task.sleep(for: .milliseconds(min(50 << min(failures, 6), 2000)))
        }
    }

    /// Wakes every stream every ``pollIntervalWhileNotListening`` until cancelled.
    private func poll() -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.pollIntervalWhileNotListening)
                if Task.isCancelled { return }
                self.wake(tenant: nil)
            }
        }
    }
}

extension HTTPField.Name {
    /// `Last-Event-ID`: where an EventSource resumes.
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}
