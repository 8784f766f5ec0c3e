import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ModelSyncGenerator
import ModelSyncServer
import PostgresNIO

/// `modelsync-server`: serves the models of any `*.modelsync.yaml` specs over the sync protocol, on
/// PostgreSQL. The schema is built from the specs at start (the same builder as the generated
/// server's), and created in an empty database.
@main
struct ModelSyncServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modelsync-server",
        abstract: "Serves the models of *.modelsync.yaml specs over the ModelSync protocol, on PostgreSQL.",
        discussion: """
            Authentication: JWT bearer tokens signed with HS256 (--jwt-secret or MODELSYNC_JWT_SECRET; claims \
            'tenant', 'sub', 'exp'), or, for local development only, --development-tenant NAME (every request \
            acts in that tenant, without any check). Prints 'listening on http://HOST:PORT' once it serves.
            """)

    @Option(name: .customLong("spec"), help: "A spec file or folder (repeat for several).")
    var specs: [String]

    @Option(help: "postgres://user[:password]@host[:port]/database (add ?host=/socket/dir for a unix socket).")
    var database: String

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 for a free one).")
    var port = 8080

    @Option(help: "The HS256 secret of bearer tokens (default: the MODELSYNC_JWT_SECRET environment variable).")
    var jwtSecret: String?

    @Option(help: "Development only: no authentication, every request acts in this tenant.")
    var developmentTenant: String?

    func run() async throws {
        let sources = try ModelSyncGenerator.specFiles(in: specs).map { try SpecSource(contentsOf: $0) }
        guard !sources.isEmpty else {
            throw ValidationError("no *.modelsync.yaml file in \(specs.joined(separator: ", "))")
        }
        let schema: ServerSchema
        do {
            schema = try ModelSyncGenerator.serverSchema(sources)
        } catch let failure as GenerationFailed {
            for diagnostic in failure.diagnostics {
                FileHandle.standardError.write(Data((diagnostic.description + "\n").utf8))
            }
            throw ExitCode.failure
        }
        let authenticator: any SyncAuthenticator
        if let developmentTenant {
            authenticator = DevelopmentAuthenticator(tenant: developmentTenant)
        } else if let secret = jwtSecret ?? ProcessInfo.processInfo.environment["MODELSYNC_JWT_SECRET"], !secret.isEmpty
        {
            authenticator = try await JWTAuthenticator(secret: secret)
        } else {
            throw ValidationError(
                "no authentication configured: pass --jwt-secret (or set MODELSYNC_JWT_SECRET), or "
                    + "--development-tenant NAME for local development")
        }
        let client = PostgresClient(configuration: try DatabaseURL.configuration(database))
        let host = self.host
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            let service = SyncService(schema: schema, database: client, authenticator: authenticator)
            try await service.migrate()
            let app = SyncHTTPServer.application(service: service, host: host, port: port) { port in
                FileHandle.standardOutput.write(Data("listening on http://\(host):\(port)\n".utf8))
            }
            try await app.runService()
            group.cancelAll()
        }
    }
}
