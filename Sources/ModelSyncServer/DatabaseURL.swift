import Foundation
import PostgresNIO

/// Reads `postgres://user[:password]@host[:port]/database[?host=/socket/dir]` URLs.
public enum DatabaseURL {
    /// The client configuration of `url` (no TLS: a server next to its database, or a unix socket).
    public static func configuration(_ url: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql"
        else {
            throw SyncServerError(
                status: 0, message: "'\(url)' is not a postgres://user@host:port/database URL")
        }
        let user = components.user ?? "postgres"
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if let socketDirectory = components.queryItems?.first(where: { $0.name == "host" })?.value {
            let port = components.port ?? 5432
            return PostgresClient.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: components.password,
                database: database.isEmpty ? nil : database)
        }
        return PostgresClient.Configuration(
            host: components.host ?? "127.0.0.1", port: components.port ?? 5432, username: user,
            password: components.password, database: database.isEmpty ? nil : database, tls: .disable)
    }
}
