import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One change of a live stream: a record (or its tombstone) of one model, and the token of the
/// stream's position after it (the listing cursor of the generated server, `"xid-seq"`).
public struct LiveChange: Sendable, Hashable {
    /// The table of the model (``ModelSchema/tableName``).
    public var table: String
    /// The stream's position after this change: resume from it to get the changes that follow.
    public var token: String
    /// The record as the server has it (local field names), or `nil` for a deletion or an
    /// unreadable record.
    public var record: RecordFields?
    /// The ID of the deleted record, for a deletion.
    public var deletedID: String?
    /// Why the record could not be read, when it could not.
    public var rejected: RejectedRecord?

    /// A change.
    public init(
        table: String, token: String, record: RecordFields? = nil, deletedID: String? = nil,
        rejected: RejectedRecord? = nil
    ) {
        self.table = table
        self.token = token
        self.record = record
        self.deletedID = deletedID
        self.rejected = rejected
    }
}

/// What a live stream delivers.
public enum LiveStreamMessage: Sendable, Hashable {
    /// The server accepted the stream: changes follow as they commit.
    case opened
    /// Changes that arrived together, oldest first.
    case changes([LiveChange])
}

/// The server keeps no changes as old as the token a stream asked for (`410 Gone`): pull every
/// model again from no cursor, then stream from ``horizon``.
public struct LiveTokenExpired: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server's explanation.
    public var message: String
    /// The oldest token the server still streams from, when it says.
    public var horizon: String?

    public var description: String { message }
}

/// A remote that streams other devices' changes as they commit (the generated server does, see
/// Docs/Protocol.md, "Live changes"). ``RESTRemote`` conforms.
public protocol LiveChangesRemote: SyncRemote {
    /// Opens the live stream of `path` after `token`. The stream yields ``LiveStreamMessage/opened``
    /// once the server accepted it, then changes as they arrive; it ends when the server closes it
    /// and throws on a failure (``LiveTokenExpired`` for a token the server no longer keeps).
    /// Ending the iteration (or cancelling its task) closes the connection.
    ///
    /// - Parameters:
    ///   - token: The position after the last change applied (the listing cursor the server gave).
    ///   - path: The stream's path on the server (`/modelsync/live` for the generated server).
    ///   - models: The models whose changes may arrive (changes of other tables are rejected).
    ///   - idleTimeout: Seconds without a byte (a change or the server's heartbeat) after which the
    ///     connection counts as lost.
    func liveChanges(after token: String, path: String, models: [ModelSchema], idleTimeout: TimeInterval)
        -> AsyncThrowingStream<LiveStreamMessage, any Error>
}

extension RESTRemote: LiveChangesRemote {
    public func liveChanges(after token: String, path: String, models: [ModelSchema], idleTimeout: TimeInterval)
        -> AsyncThrowingStream<LiveStreamMessage, any Error>
    {
        let (stream, continuation) = AsyncThrowingStream<LiveStreamMessage, any Error>.makeStream()
        let encoded = token.addingPercentEncoding(withAllowedCharacters: Self.unreservedCharacters) ?? token
        let base = configuration.baseURL.absoluteString
        let urlString =
            (base.hasSuffix("/") ? String(base.dropLast()) : base) + path + (path.contains("?") ? "&" : "?")
            + "after=" + encoded
        let schemas = Dictionary(models.map { ($0.tableName, $0) }) { first, _ in first }
        let parser = LiveEventParser(remote: self, schemas: schemas)
        let delegate = LiveStreamDelegate(continuation: continuation, parser: parser)
        let configuration = self.configuration
        let opening = Task {
            guard let url = URL(string: urlString) else {
                continuation.finish(throwing: RemoteError.invalidResponse("'\(urlString)' is not a valid URL"))
                return
            }
            var request = URLRequest(url: url, timeoutInterval: idleTimeout)
            request.setValue("text/event-stream", forHTTPHeaderField: "Accept")
            do {
                for (name, value) in try await configuration.headers() {
                    request.setValue(value, forHTTPHeaderField: name)
                }
            } catch {
                continuation.finish(throwing: error)
                return
            }
            if let version = configuration.schemaVersion {
                request.setValue(String(version), forHTTPHeaderField: Self.schemaVersionHeader)
            }
            delegate.start(request, idleTimeout: idleTimeout)
        }
        continuation.onTermination = { _ in
            opening.cancel()
            delegate.close()
        }
        return stream
    }
}

/// Reads Server-Sent Events from the bytes of a live stream: `id` (the token), `event` (`change`,
/// or `expired`) and `data` (`{"model": table, "record": {...}}`); comments (heartbeats) are skipped.
struct LiveEventParser: Sendable {
    let remote: RESTRemote
    let schemas: [String: ModelSchema]
    private var buffer: [UInt8] = []

    init(remote: RESTRemote, schemas: [String: ModelSchema]) {
        self.remote = remote
        self.schemas = schemas
    }

    /// The complete events in `bytes` (with what earlier calls left over); a partial event waits
    /// for the rest.
    mutating func feed(_ bytes: Data) throws -> [LiveChange] {
        buffer.append(contentsOf: bytes)
        var changes: [LiveChange] = []
        while let end = eventEnd() {
            let block = String(decoding: buffer[..<end.start], as: UTF8.self)
            buffer.removeSubrange(..<end.end)
            if let change = try event(block) { changes.append(change) }
        }
        return changes
    }

    /// Where the first blank line is: the end of the first event and the start of the next.
    private func eventEnd() -> (start: Int, end: Int)? {
        var index = 0
        while index < buffer.count {
            if buffer[index] == 0x0A {
                if index + 1 < buffer.count, buffer[index + 1] == 0x0A { return (index, index + 2) }
                if index + 2 < buffer.count, buffer[index + 1] == 0x0D, buffer[index + 2] == 0x0A {
                    return (index, index + 3)
                }
            }
            index += 1
        }
        return nil
    }

    private func event(_ block: String) throws -> LiveChange? {
        var id: String?
        var kind = "message"
        var data: [String] = []
        for rawLine in block.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.hasPrefix(":") { continue }
            let field: Substring
            var value: Substring
            if let colon = line.firstIndex(of: ":") {
                field = line[..<colon]
                value = line[line.index(after: colon)...]
                if value.hasPrefix(" ") { value = value.dropFirst() }
            } else {
                field = line
                value = ""
            }
            switch field {
            case "id": id = String(value)
            case "event": kind = String(value)
            case "data": data.append(String(value))
            default: continue
            }
        }
        let text = data.joined(separator: "\n")
        switch kind {
        case "change": break
        case "expired":
            let object = (try? JSONValue.parse(Data(text.utf8)))?.objectValue
            throw LiveTokenExpired(
                message: object?["error"].flatMap { if case .string(let text) = $0 { text } else { nil } } ?? text,
                horizon: object?["horizon"]?.idString)
        default: return nil
        }
        guard let id else {
            throw RemoteError.invalidResponse("a live change event has no id (the token to resume from): \(text)")
        }
        guard let object = (try? JSONValue.parse(Data(text.utf8)))?.objectValue,
            case .string(let table)? = object["model"], let record = object["record"]?.objectValue
        else {
            throw RemoteError.invalidResponse(
                "live change \(id) is not {\"model\": table, \"record\": {...}}: " + RESTRemote.excerpt(text))
        }
        guard let schema = schemas[table] else {
            return LiveChange(
                table: table, token: id,
                rejected: RejectedRecord(
                    model: table, id: record["id"]?.idString,
                    reason: "live change \(id) is of '\(table)', a model this app does not have"))
        }
        let configuration = remote.configuration
        let recordID = record[configuration.idField]?.idString
        if record[configuration.deletedFlagKey] == .bool(true) {
            do {
                let deleted = try ServerIDRule.localID(
                    from: record[configuration.idField], idType: remote.conventions(schema).idType)
                return LiveChange(table: table, token: id, deletedID: deleted)
            } catch {
                return LiveChange(
                    table: table, token: id,
                    rejected: RejectedRecord(
                        model: schema.name, id: recordID,
                        reason: "live change \(id) deletes a \(schema.name) with id \(error)"))
            }
        }
        do {
            return LiveChange(table: table, token: id, record: try remote.listedFields(record, model: schema))
        } catch {
            return LiveChange(
                table: table, token: id,
                rejected: RejectedRecord(
                    model: schema.name, id: recordID,
                    reason: "\(schema.name) '\(recordID ?? "?")' of live change \(id): \(error.reason)"))
        }
    }
}

/// The URLSession delegate of one live stream: hands the bytes to the parser as they arrive (a
/// delegate data task streams on Linux too, where `bytes(for:)` is missing), and ends the stream
/// when the connection ends. Each stream has its own session, closed with the stream.
final class LiveStreamDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let continuation: AsyncThrowingStream<LiveStreamMessage, any Error>.Continuation
    private let lock = NSLock()
    private var parser: LiveEventParser
    private var session: URLSession?
    private var closed = false
    /// The status of a refused stream, and its body (the error message).
    private var refusal: (status: Int, body: Data, retryAfter: TimeInterval?)?

    init(continuation: AsyncThrowingStream<LiveStreamMessage, any Error>.Continuation, parser: LiveEventParser) {
        self.continuation = continuation
        self.parser = parser
    }

    func start(_ request: URLRequest, idleTimeout: TimeInterval) {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleTimeout
        configuration.timeoutIntervalForResource = .infinity
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
        let started = lock.withLock { () -> Bool in
            guard !closed else { return false }
            self.session = session
            return true
        }
        guard started else {
            session.invalidateAndCancel()
            return
        }
        session.dataTask(with: request).resume()
    }

    /// Closes the connection (the stream's consumer is gone).
    func close() {
        let session = lock.withLock { () -> URLSession? in
            closed = true
            defer { self.session = nil }
            return self.session
        }
        session?.invalidateAndCancel()
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        if status == 200 {
            continuation.yield(.opened)
        } else {
            let retryAfter = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Retry-After")
                .flatMap(RESTRemote.parseRetryAfter)
            lock.withLock { refusal = (status, Data(), retryAfter) }
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let outcome = lock.withLock { () -> Result<[LiveChange], any Error>? in
            if refusal != nil {
                refusal?.body.append(data)
                return nil
            }
            return Result { try parser.feed(data) }
        }
        switch outcome {
        case .success(let changes)?:
            if !changes.isEmpty { continuation.yield(.changes(changes)) }
        case .failure(let error)?:
            continuation.finish(throwing: error)
            close()
        case nil:
            break
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (refusal, closed) = lock.withLock { (self.refusal, self.closed) }
        session.finishTasksAndInvalidate()
        if closed { return continuation.finish() }
        if let refusal {
            let message = RESTRemote.errorMessage(refusal.body, status: refusal.status)
            if refusal.status == 410 {
                let horizon = (try? JSONValue.parse(refusal.body))?.objectValue?["horizon"]?.idString
                return continuation.finish(throwing: LiveTokenExpired(message: message, horizon: horizon))
            }
            return continuation.finish(
                throwing: RemoteError.http(status: refusal.status, message: message, retryAfter: refusal.retryAfter))
        }
        if let error {
            return continuation.finish(throwing: RemoteError.transport("live stream: \(error.localizedDescription)"))
        }
        continuation.finish()
    }
}
