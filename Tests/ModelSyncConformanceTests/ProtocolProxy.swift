import Foundation
import ModelSyncTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// An HTTP answer passing through a ``ProtocolProxy``.
struct ProxiedAnswer: Sendable {
    var status: Int
    var contentType: String?
    var body: Data

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object, `nil` when it is not one.
    var object: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
    }
}

/// A real HTTP server on loopback that forwards each request to a reference server and may change
/// the request or the answer on the way: a server with exactly one defect (or two tenants, each with
/// a reference server of its own), everything else conformant.
///
/// Runs on `LoopbackHTTPServer`'s own threads (one per connection); forwarding waits there, never on
/// the test's cooperative pool.
final class ProtocolProxy: Sendable {
    typealias Request = LoopbackHTTPServer.Request

    /// Sends `request` (its method, target, body and protocol headers) to `base` and returns the answer.
    struct Forwarder: Sendable {
        func callAsFunction(_ request: Request, to base: URL) -> ProxiedAnswer {
            ProtocolProxy.send(request, to: base)
        }
    }

    private let server: LoopbackHTTPServer

    /// The proxy's URL: give it to the client or the kit.
    var baseURL: URL { server.baseURL }

    /// - Parameter handle: Answers one request, usually by forwarding it (changed or not) and
    ///   returning the answer (changed or not).
    init(handle: @escaping @Sendable (Request, Forwarder) -> ProxiedAnswer) throws {
        server = try LoopbackHTTPServer { request, connection in
            let answer = handle(request, Forwarder())
            var headers: [String: String] = [:]
            if let contentType = answer.contentType { headers["Content-Type"] = contentType }
            connection.respond(
                status: answer.status, reason: "Status", headers: headers, body: answer.bodyText,
                contentType: answer.contentType ?? "application/json")
        }
    }

    /// A proxy that forwards everything to `upstream` unchanged.
    convenience init(forwardingTo upstream: URL) throws {
        try self.init { request, forward in forward(request, to: upstream) }
    }

    func stop() { server.stop() }

    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.timeoutIntervalForRequest = 30
        return URLSession(configuration: configuration)
    }()

    static func send(_ request: Request, to base: URL) -> ProxiedAnswer {
        var urlRequest = URLRequest(url: URL(string: base.absoluteString + request.target)!)
        urlRequest.httpMethod = request.method
        for name in ["content-type", "accept", "idempotency-key", "if-match", "authorization"] {
            if let value = request.headers[name] { urlRequest.setValue(value, forHTTPHeaderField: name) }
        }
        if !request.body.isEmpty { urlRequest.httpBody = request.body }
        let result = Mutex<ProxiedAnswer?>(nil)
        let done = DispatchSemaphore(value: 0)
        session.dataTask(with: urlRequest) { data, response, error in
            let http = response as? HTTPURLResponse
            let answer = ProxiedAnswer(
                status: http?.statusCode ?? 502, contentType: http?.value(forHTTPHeaderField: "Content-Type"),
                body: data ?? Data(#"{"error":"proxy: \#(error.map { "\($0)" } ?? "no answer")"}"#.utf8))
            result.withLock { $0 = answer }
            done.signal()
        }.resume()
        done.wait()
        return result.withLock { $0! }
    }
}
