import FlyingFox
import Foundation
import ModelSync

// An older app talking to a newer server: a client sends the version of its models' shape in the
// `ModelSync-Schema-Version` header; a server that no longer accepts it answers 426 Upgrade Required
// with a JSON message, which the client reports as "this app version is too old" (see
// `RemoteError.isClientTooOld` and Docs/Protocol.md).
extension ReferenceServer {
    /// Refuses every request of a client whose schema version is lower than `version` (a request
    /// without the header counts as version 1) with 426 and a JSON message; `nil` serves every client.
    public func setMinimumClientSchemaVersion(_ version: Int?) {
        minimumClientSchemaVersion.withLock { $0 = version }
    }

    /// The 426 answer to a request from a client that is too old, or `nil` to serve it.
    func refuseTooOldClient(_ request: HTTPRequest) -> HTTPResponse? {
        guard let minimum = minimumClientSchemaVersion.withLock({ $0 }) else { return nil }
        let header = request.headers[HTTPHeader(RESTRemote.schemaVersionHeader)]
        let version = header.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 1
        guard version < minimum else { return nil }
        let object: [String: JSONValue] = [
            "error": .string(
                "this app version is too old: it sends schema version \(version), and this server accepts "
                    + "\(minimum) or later; update the app (its queued changes are kept and sent after the update)"),
            "code": .string("client_too_old"),
            "minimum_schema_version": .integer(Int64(minimum)),
        ]
        return HTTPResponse(
            statusCode: HTTPStatusCode(426, phrase: "Upgrade Required"), headers: [.contentType: "application/json"],
            body: (try? JSONValue.object(object).serialized()) ?? Data())
    }
}
