import Foundation
import Hummingbird
import Logging
import NIOCore

/// Answers errors that happen outside the sync routes (an unknown path, a method not allowed, a
/// malformed request) as JSON `{"error": …}`, like every other answer of the server.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The middleware.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            let status = error.status
            let message =
                status == .notFound
                ? "no collection or record at \(request.uri.path)" : "\(status.code) \(status.reasonPhrase)"
            return SyncService.response(
                Int(status.code), SyncServerError(status: Int(status.code), message: message).body)
        }
    }
}

/// Runs a ``SyncService`` as an HTTP server (what `modelsync-server` does; tests use it too).
public enum SyncHTTPServer {
    /// A Hummingbird application that serves `service` on `host:port` (`0` for a free port;
    /// `onListening` receives the bound one). Run it (`try await app.run()`, or in a
    /// `ServiceGroup` with the `PostgresClient`) until cancelled.
    public static func application(
        service: SyncService, host: String = "127.0.0.1", port: Int = 0,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        service.addRoutes(to: router)
        var logger = Logger(label: "modelsync-server.http")
        logger.logLevel = .warning
        return Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) }, logger: logger)
    }
}
