import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A loopback HTTP proxy in front of a server, for faults that must happen after the server did its
/// part: ``dropResponses(method:pathPrefix:count:)`` lets the server answer (and commit), then closes
/// the client's connection without the answer, as a network that fails at the worst moment would.
/// Works with any server, the reference server and the generated one alike.
public final class ForwardingProxy: Sendable {
    /// Which answers to drop, and what to do the moment one is dropped.
    struct DropRule: Sendable {
        var method: String
        var pathPrefix: String
        var remaining: Int
        /// Only answers that say the change was made (2xx): the server has committed.
        var successfulOnly: Bool
        var action: (@Sendable () -> Void)?
    }

    private let server: LoopbackHTTPServer
    private let drops: Mutex<[DropRule]>
    private let dropped = Mutex(0)

    /// The server the proxy forwards to.
    public let target: URL

    /// The proxy's URL: send requests here instead of `target`.
    public var baseURL: URL { server.baseURL }

    /// A proxy forwarding every request to `target` (a base URL such as `http://127.0.0.1:8080`).
    public init(target: URL) throws {
        let drops = Mutex<[DropRule]>([])
        let dropped = self.dropped
        self.drops = drops
        self.target = target
        server = try LoopbackHTTPServer { request, connection in
            let answer = Self.forward(request, to: target)
            let succeeded = answer.map { (200..<300).contains($0.status) } ?? false
            let drop = drops.withLock { rules -> DropRule? in
                guard
                    let index = rules.firstIndex(where: {
                        $0.method == request.method && request.path.hasPrefix($0.pathPrefix) && $0.remaining > 0
                            && (succeeded || !$0.successfulOnly)
                    })
                else { return nil }
                rules[index].remaining -= 1
                return rules[index]
            }
            if let drop {
                dropped.withLock { $0 += 1 }
                drop.action?()
                return  // the server has answered; the client gets a closed connection
            }
            guard let answer else {
                connection.respond(status: 502, body: #"{"error":"the proxy could not reach the server"}"#)
                return
            }
            var headers: [String: String] = [:]
            for (name, value) in answer.headers
            where !["content-length", "connection", "transfer-encoding"].contains(name.lowercased()) {
                headers[name] = value
            }
            connection.write(Self.head(answer.status, headers: headers, length: answer.body.count) + answer.body)
        }
    }

    /// Drops the answers of the next `count` requests with this method whose path starts with `pathPrefix`.
    public func dropResponses(method: String, pathPrefix: String, count: Int = 1) {
        drops.withLock {
            $0.append(
                DropRule(method: method, pathPrefix: pathPrefix, remaining: count, successfulOnly: false, action: nil))
        }
    }

    /// Drops the next successful (2xx) answer to a request with this method whose path starts with
    /// `pathPrefix`, and runs `action` at that moment: after the server committed the change, before
    /// the client learns of it (the chaos tests kill the server process there).
    public func dropNextSuccessfulResponse(
        method: String, pathPrefix: String, then action: @escaping @Sendable () -> Void
    ) {
        drops.withLock {
            $0.append(
                DropRule(method: method, pathPrefix: pathPrefix, remaining: 1, successfulOnly: true, action: action))
        }
    }

    /// Forgets the drops not used yet.
    public func cancelDrops() { drops.withLock { $0.removeAll() } }

    /// How many answers were dropped so far.
    public var droppedCount: Int { dropped.withLock { $0 } }

    public func stop() { server.stop() }

    private static func head(_ status: Int, headers: [String: String], length: Int) -> Data {
        var text = "HTTP/1.1 \(status) Status\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(length)\r\nConnection: close\r\n\r\n"
        return Data(text.utf8)
    }

    private static func forward(_ request: LoopbackHTTPServer.Request, to target: URL)
        -> (status: Int, headers: [String: String], body: Data)?
    {
        guard let url = URL(string: target.absoluteString + request.target) else { return nil }
        var forwarded = URLRequest(url: url)
        forwarded.httpMethod = request.method
        for (name, value) in request.headers
        where !["host", "content-length", "connection"].contains(name.lowercased()) {
            forwarded.setValue(value, forHTTPHeaderField: name)
        }
        if !request.body.isEmpty { forwarded.httpBody = request.body }
        forwarded.timeoutInterval = 60
        let result = Mutex<(Int, [String: String], Data)?>(nil)
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: forwarded) { data, response, _ in
            if let response = response as? HTTPURLResponse {
                var headers: [String: String] = [:]
                for (name, value) in response.allHeaderFields {
                    headers["\(name)"] = "\(value)"
                }
                result.withLock { $0 = (response.statusCode, headers, data ?? Data()) }
            }
            done.signal()
        }.resume()
        done.wait()
        return result.withLock { $0.map { (status: $0.0, headers: $0.1, body: $0.2) } }
    }
}
