import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A raw HTTP/1.1 server on `127.0.0.1` for tests that need a server to misbehave in ways a real
/// HTTP framework will not: answer headers and then trickle the body, lie about its length,
/// redirect, or answer a create with nonsense.
///
/// Plain POSIX sockets, one thread per connection, one request per connection (every answer
/// closes the connection). The handler receives the parsed request and writes raw bytes.
///
/// ```swift
/// let server = try LoopbackHTTPServer { request, connection in
///     connection.respond(status: 201, body: #"{"id": 1}"#)
/// }
/// defer { server.stop() }
/// ```
public final class LoopbackHTTPServer: Sendable {
    /// A request as received: method, raw target (path and query, still percent-encoded), headers
    /// with lowercased names, and body.
    public struct Request: Sendable, Hashable {
        public var method: String
        public var target: String
        public var headers: [String: String]
        public var body: Data

        /// The target without its query.
        public var path: String { String(target.prefix { $0 != "?" }) }

        /// The body as UTF-8 text.
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    /// One accepted connection: the handler writes the answer through it.
    public final class Connection: Sendable {
        private let socket: Int32
        private let server: LoopbackHTTPServer

        init(socket: Int32, server: LoopbackHTTPServer) {
            self.socket = socket
            self.server = server
        }

        /// Writes `bytes`; `false` once the client has gone (or the server is stopping).
        @discardableResult
        public func write(_ bytes: Data) -> Bool {
            guard !server.isStopped else { return false }
            return bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    #if os(Linux)
                        let written = send(
                            socket, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                    #else
                        let written = send(socket, buffer.baseAddress! + offset, buffer.count - offset, 0)
                    #endif
                    if written <= 0 { return false }
                    offset += written
                }
                return true
            }
        }

        /// Writes `text` as UTF-8.
        @discardableResult
        public func write(_ text: String) -> Bool { write(Data(text.utf8)) }

        /// Writes a complete answer with `Content-Length` and `Connection: close`.
        public func respond(
            status: Int, reason: String = "Status", headers: [String: String] = [:], body: String = "",
            contentType: String = "application/json"
        ) {
            let bytes = Data(body.utf8)
            var head = "HTTP/1.1 \(status) \(reason)\r\n"
            var allHeaders = headers
            allHeaders["Content-Length"] = allHeaders["Content-Length"] ?? String(bytes.count)
            allHeaders["Connection"] = "close"
            if !bytes.isEmpty { allHeaders["Content-Type"] = allHeaders["Content-Type"] ?? contentType }
            for (name, value) in allHeaders.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
            head += "\r\n"
            write(Data(head.utf8) + bytes)
        }

        /// Sleeps `seconds` unless the server stops first; `false` when it stopped.
        public func pause(_ seconds: Double) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if server.isStopped { return false }
                Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow)))
            }
            return !server.isStopped
        }
    }

    /// The server's URL, `http://127.0.0.1:<port>`.
    public let baseURL: URL
    private let listener: Int32
    private let state = Mutex(State())
    private let handler: @Sendable (Request, Connection) -> Void

    private struct State {
        var stopped = false
        var requests: [Request] = []
    }

    /// Starts listening on a free loopback port; `handler` runs on the connection's own thread.
    /// Call ``stop()`` when done: the server runs until then.
    public init(handler: @escaping @Sendable (Request, Connection) -> Void) throws {
        self.handler = handler
        #if os(Linux)
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let listener = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard listener >= 0 else { throw Self.failure("socket") }
        var reuse: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw Self.failure("bind/listen")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        self.listener = listener
        self.baseURL = URL(string: "http://127.0.0.1:\(port)")!
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Every request received so far, in order of arrival.
    public var requests: [Request] { state.withLock { $0.requests } }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Stops accepting; handlers that pause or write see the server stopped and return.
    public func stop() {
        let wasStopped = state.withLock { state in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !wasStopped else { return }
        // Wakes the accept loop, which closes the socket.
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !isStopped {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            let thread = Thread { [self] in serve(client) }
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        guard let request = Self.readRequest(from: client) else { return }
        state.withLock { $0.requests.append(request) }
        handler(request, Connection(socket: client, server: self))
        shutdown(client, Int32(SHUT_WR))
    }

    /// Reads one request: headers up to the blank line, then `Content-Length` bytes of body.
    private static func readRequest(from client: Int32) -> Request? {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let separator = Data("\r\n\r\n".utf8)
        var headerEnd: Range<Data.Index>?
        while headerEnd == nil {
            let count = recv(client, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            received.append(contentsOf: buffer[0..<count])
            headerEnd = received.range(of: separator)
        }
        let head = String(decoding: received[..<headerEnd!.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(received[headerEnd!.upperBound...])
        let expected = headers["content-length"].flatMap(Int.init) ?? 0
        while body.count < expected {
            let count = recv(client, &buffer, min(buffer.count, expected - body.count), 0)
            guard count > 0 else { break }
            body.append(contentsOf: buffer[0..<count])
        }
        return Request(
            method: String(requestLine[0]), target: String(requestLine[1]), headers: headers, body: body)
    }

    private static func failure(_ call: String) -> any Error {
        NSError(
            domain: "LoopbackHTTPServer", code: Int(errno),
            userInfo: [NSLocalizedDescriptionKey: "\(call) failed: \(String(cString: strerror(errno)))"])
    }
}
