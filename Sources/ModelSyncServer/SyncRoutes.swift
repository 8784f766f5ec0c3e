import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PostgresNIO

extension SyncService {
    /// The largest request body accepted (a record), in bytes.
    public static let maximumBodySize = 16 << 20

    /// Mounts every model's routes on `router`: `POST/GET {path}`, `GET/PUT/DELETE {path}/{id}` and
    /// `GET {path}/{id}/history`, the live change stream (``addLiveRoute(to:)``) and the batch routes
    /// (``addBatchRoutes(to:)``). Works with any request context: authentication reads the headers. A
    /// client's `ModelSync-Schema-Version` chooses the shape it speaks
    /// (``clientShape(schemaVersionHeader:)``); during a grace period a renamed model is served at its
    /// earlier path too.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        addLiveRoute(to: router)
        addBatchRoutes(to: router)
        let graceful = schema.oldestClientSchemaVersion < schema.schemaVersion
        for model in schema.models {
            let paths = [model.path] + (graceful ? [model.previousPath].compactMap { $0 } : [])
            for path in paths { addRoutes(of: model, at: path, to: router) }
        }
    }

    private func addRoutes<Context: RequestContext>(of model: ServerModel, at path: String, to router: Router<Context>)
    {
        let collection = RouterPath(path)
        let item = RouterPath(path + "/:id")
        let history = RouterPath(path + "/:id/history")
        router.post(collection) { request, context in
            await self.respond(request, context) { identity, shape in
                try await self.create(
                    model, as: identity, body: try await Self.body(of: request),
                    idempotencyKey: request.headers[.idempotencyKey], shape: shape)
            }
        }
        router.get(collection) { request, context in
            await self.respond(request, context) { identity, shape in
                let query = request.uri.queryParameters
                return try await self.list(
                    model, as: identity, cursor: query["cursor"].map(String.init),
                    limit: query["limit"].flatMap { Int($0) }, shape: shape)
            }
        }
        router.get(item) { request, context in
            await self.respond(request, context) { identity, shape in
                try await self.get(model, as: identity, id: try Self.id(context), shape: shape)
            }
        }
        router.put(item) { request, context in
            await self.respond(request, context) { identity, shape in
                try await self.update(
                    model, as: identity, id: try Self.id(context), body: try await Self.body(of: request),
                    ifMatch: request.headers[.ifMatch].map(Self.unquotedETag),
                    idempotencyKey: request.headers[.idempotencyKey], shape: shape)
            }
        }
        router.delete(item) { request, context in
            await self.respond(request, context) { identity, _ in
                try await self.delete(model, as: identity, id: try Self.id(context))
            }
        }
        router.get(history) { request, context in
            await self.respond(request, context) { identity, _ in
                let query = request.uri.queryParameters
                return try await self.history(
                    model, as: identity, id: try Self.id(context), cursor: query["cursor"].map(String.init),
                    limit: query["limit"].flatMap { Int($0) })
            }
        }
    }

    func respond<Context: RequestContext>(
        _ request: Request, _ context: Context, _ operation: (SyncIdentity, ClientShape) async throws -> Answer
    ) async -> Response {
        do {
            let identity = try await authenticator.authenticate(request.headers)
            let shape = try clientShape(schemaVersionHeader: request.headers[.modelSyncSchemaVersion])
            let answer = try await operation(identity, shape)
            return Self.response(answer.status, answer.body)
        } catch let error as SyncServerError {
            var response = Self.response(error.status, error.body)
            if error.status == 401 { response.headers[.wwwAuthenticate] = #"Bearer realm="modelsync""# }
            if error.status == 503 { response.headers[.retryAfter] = "1" }
            return response
        } catch {
            logger.error("unexpected error: \(String(reflecting: error))")
            return Self.response(500, SyncServerError(status: 500, message: "internal error; see the server log").body)
        }
    }

    static func response(_ status: Int, _ body: String) -> Response {
        if status == 204 { return Response(status: .noContent) }
        return Response(
            status: HTTPResponse.Status(code: status),
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    private static func id<Context: RequestContext>(_ context: Context) throws -> String {
        guard let raw = context.parameters.get("id") else {
            throw SyncServerError(status: 404, message: "the path names no record")
        }
        return raw.removingPercentEncoding ?? raw
    }

    static func body(of request: Request) async throws -> Data {
        do {
            let buffer = try await request.body.collect(upTo: maximumBodySize)
            return Data(buffer: buffer)
        } catch {
            throw SyncServerError(status: 413, message: "the body is larger than \(maximumBodySize) bytes")
        }
    }

    static func unquotedETag(_ value: String) -> String {
        var text = value.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("W/") { text.removeFirst(2) }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = String(text.dropFirst().dropLast()) }
        return text
    }
}

extension HTTPField.Name {
    /// `Idempotency-Key`.
    public static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    /// `ModelSync-Schema-Version`: the version of the models' shape a client speaks.
    public static let modelSyncSchemaVersion = HTTPField.Name("ModelSync-Schema-Version")!
}
