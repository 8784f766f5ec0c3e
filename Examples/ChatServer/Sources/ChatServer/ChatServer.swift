import Foundation
import Hummingbird
import ModelSyncServer
import PostgresNIO

/// The chat app's sync server: the routes generated from the app's spec, mounted in this app's own
/// Hummingbird router beside a route of its own (`GET /health`).
///
/// ```sh
/// chat-server --database postgres://app@127.0.0.1/chat --jwt-secret "$(openssl rand -hex 32)"
/// chat-server --database postgres://app@127.0.0.1/chat --development-tenant demo   # no authentication
/// ```
/// Prints `listening on http://HOST:PORT` once it serves.
@main
struct ChatServer {
    static func main() async throws {
        let options = try Options(CommandLine.arguments.dropFirst())
        let database = PostgresClient(configuration: try DatabaseURL.configuration(options.database))
        let authenticator: any SyncAuthenticator =
            if let tenant = options.developmentTenant {
                DevelopmentAuthenticator(tenant: tenant)
            } else {
                try await JWTAuthenticator(secret: options.jwtSecret)
            }

        let router = Router()
        router.add(middleware: JSONErrorMiddleware())  // unknown paths answer JSON too
        router.get("/health") { _, _ in "ok" }  // a route of the app's own
        // `ServerModels` is generated from ChatSync.modelsync.yaml by the build plugin.
        let sync = ServerModels.addRoutes(to: router, database: database, authenticator: authenticator)
        let host = options.host
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: options.port)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? options.port
                FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)\n".utf8))
            })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            try await sync.migrate()  // creates the schema in an empty database
            try await app.runService()  // until SIGTERM or SIGINT
            group.cancelAll()
        }
    }
}

/// The command line: `--database URL` (required), `--jwt-secret S` (or `MODELSYNC_JWT_SECRET`) or
/// `--development-tenant NAME`, `--host H`, `--port P` (0 for a free one).
struct Options {
    var database = ""
    var jwtSecret = ProcessInfo.processInfo.environment["MODELSYNC_JWT_SECRET"] ?? ""
    var developmentTenant: String?
    var host = "127.0.0.1"
    var port = 8080

    init(_ arguments: ArraySlice<String>) throws {
        var arguments = arguments
        while let name = arguments.popFirst() {
            guard let value = arguments.popFirst() else { throw UsageError("\(name) needs a value") }
            switch name {
            case "--database": database = value
            case "--jwt-secret": jwtSecret = value
            case "--development-tenant": developmentTenant = value
            case "--host": host = value
            case "--port":
                guard let number = Int(value), (0...65535).contains(number) else {
                    throw UsageError("--port must be a number from 0 to 65535, not '\(value)'")
                }
                port = number
            default: throw UsageError("unknown option \(name)")
            }
        }
        if database.isEmpty { throw UsageError("--database postgres://user@host/database is required") }
        if developmentTenant == nil && jwtSecret.isEmpty {
            throw UsageError("pass --jwt-secret (or set MODELSYNC_JWT_SECRET), or --development-tenant NAME")
        }
    }
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = "chat-server: \(message)" }
}
