import Foundation
import HTTPTypes
import JWTKit

/// Who sends a request: the tenant whose records it may read and write, and the actor the audit
/// history names.
public struct SyncIdentity: Sendable, Hashable {
    /// Every statement of the request is scoped by this tenant.
    public var tenant: String
    /// The user (or service) that makes the change, as recorded in the history.
    public var actor: String

    /// An identity.
    public init(tenant: String, actor: String) {
        self.tenant = tenant
        self.actor = actor
    }
}

/// Decides who sends a request. Throw ``SyncServerError/unauthorized(_:)`` to answer `401`.
public protocol SyncAuthenticator: Sendable {
    /// The identity of the request with these headers.
    func authenticate(_ headers: HTTPFields) async throws -> SyncIdentity
}

/// Bearer tokens signed with HS256: `Authorization: Bearer <JWT>` whose claims carry the tenant
/// (``tenantClaim``, `tenant` by default), the actor (`sub`) and an expiry (`exp`, required).
public struct JWTAuthenticator: SyncAuthenticator {
    private let keys: JWTKeyCollection

    /// Verifies tokens signed with `secret` (HS256).
    ///
    /// - Throws: ``SyncServerError`` when the secret is shorter than 32 bytes (the size of an HS256
    ///   hash: a shorter key weakens every token).
    public init(secret: String) async throws {
        guard secret.utf8.count >= 32 else {
            throw SyncServerError(
                status: 0,
                message:
                    "the JWT secret has \(secret.utf8.count) bytes; HS256 needs at least 32 (e.g. `openssl rand -hex 32`)"
            )
        }
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    }

    /// The claims of a ModelSync token.
    public struct Claims: JWTPayload, Equatable {
        /// The actor.
        public var sub: SubjectClaim
        /// When the token stops being valid.
        public var exp: ExpirationClaim
        /// The tenant.
        public var tenant: String

        /// Claims for a token.
        public init(subject: String, tenant: String, expires: Date) {
            sub = SubjectClaim(value: subject)
            exp = ExpirationClaim(value: expires)
            self.tenant = tenant
        }

        /// Refuses an expired token.
        public func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
        }
    }

    /// A signed token for `claims` (for tests, tools and token services that share the secret).
    public func token(for claims: Claims) async throws -> String {
        try await keys.sign(claims)
    }

    public func authenticate(_ headers: HTTPFields) async throws -> SyncIdentity {
        guard let header = headers[.authorization] else {
            throw SyncServerError.unauthorized("missing 'Authorization: Bearer <token>' header")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw SyncServerError.unauthorized("the Authorization header must be 'Bearer <token>'")
        }
        let claims: Claims
        do {
            claims = try await keys.verify(String(parts[1]), as: Claims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw SyncServerError.unauthorized("the token has expired")
        } catch {
            throw SyncServerError.unauthorized(
                "the token is invalid (malformed, or not signed with this server's secret)")
        }
        guard !claims.tenant.isEmpty, !claims.sub.value.isEmpty else {
            throw SyncServerError.unauthorized("the token needs non-empty 'tenant' and 'sub' claims")
        }
        return SyncIdentity(tenant: claims.tenant, actor: claims.sub.value)
    }
}

/// One fixed tenant and actor for every request, with no check at all: for local development,
/// tests and demos only. A server uses it only when told to (`--development-tenant`).
public struct DevelopmentAuthenticator: SyncAuthenticator {
    public let identity: SyncIdentity

    /// Every request acts as `actor` in `tenant`.
    public init(tenant: String = "development", actor: String = "developer") {
        identity = SyncIdentity(tenant: tenant, actor: actor)
    }

    public func authenticate(_ headers: HTTPFields) async throws -> SyncIdentity { identity }
}
