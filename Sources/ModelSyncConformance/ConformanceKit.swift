import Foundation
import ModelSyncGenerator

/// One rule of the sync protocol (Docs/Protocol.md) that the kit checks against a running server.
public enum ConformanceCheck: String, CaseIterable, Sendable, Hashable, Comparable {
    /// The same `Idempotency-Key` and body twice give the same record, and one record; the same key
    /// with another body gets a 422.
    case idempotentCreate = "idempotent-create"
    /// A foreign key naming a missing parent gets a JSON 4xx (422) naming the field.
    case foreignKey = "foreign-key"
    /// A value that a `unique` field already holds gets a 422.
    case unique
    /// IDs on the wire have the spec's `idType`; the server makes IDs for `idGeneration: server`
    /// and keeps the client's for `client`; a record is readable at `{path}/{id}`.
    case idType = "id-type"
    /// `PUT {path}/{id}` of an unknown ID gets a 404 and never creates the record.
    case updateMissing = "update-missing"
    /// A delete leaves a tombstone in the listing; a delete of an unknown ID is a 404, 410 or 2xx.
    case deleteTombstone = "delete-tombstone"
    /// Paging with cursors sees every created record once, a cursor after the last page returns
    /// nothing new, and a change after a cursor is listed after it.
    case cursorListing = "cursor-listing"
    /// A stale update (`If-Match` with an old `_version`) gets a 409 with the server's copy.
    case staleUpdate = "stale-update"
    /// With two tenants' tokens: tenant A's records are invisible and unreferenceable for tenant B,
    /// and indistinguishable from missing ones.
    case tenantIsolation = "tenant-isolation"
    /// When the server advertises batches (`GET /_modelsync`): a plain batch answers one result per
    /// operation, a refused operation fails alone and one whose `refs` name it gets a 424.
    case batchResults = "batch-results"
    /// When the server advertises batches: a unit (`atomic`) with one refused operation applies nothing
    /// and answers `applied: false`, with 424 for the others.
    case batchAtomic = "batch-atomic"
    /// When the server advertises batches: a unit sent again with its `Idempotency-Key` gets the same
    /// answer and creates nothing twice.
    case batchReplay = "batch-replay"
    /// Error answers are JSON `{"error": "…"}`, not HTML or plain text.
    case errorsAreJSON = "errors-are-json"

    /// What the check verifies, in one line.
    public var summary: String {
        switch self {
        case .idempotentCreate: return "a repeated create (same Idempotency-Key) creates nothing new"
        case .foreignKey: return "a reference to a missing parent is a JSON 4xx naming the field"
        case .unique: return "a duplicate value of a unique field is a 422"
        case .idType: return "IDs have the spec's idType; server and client IDs are honoured"
        case .updateMissing: return "an update of an unknown ID is a 404, never a re-create"
        case .deleteTombstone: return "a delete leaves a tombstone in the listing"
        case .cursorListing: return "cursor paging lists every change once"
        case .staleUpdate: return "a stale update (If-Match) is a 409 with the server's copy"
        case .tenantIsolation: return "another tenant's records are invisible and unreferenceable"
        case .batchResults: return "a batch answers per operation; a refused one fails alone, its dependents 424"
        case .batchAtomic: return "a unit with a refused operation applies nothing"
        case .batchReplay: return "a unit sent again with its key answers the same and creates nothing twice"
        case .errorsAreJSON: return "errors are JSON"
        }
    }

    public static func < (lhs: ConformanceCheck, rhs: ConformanceCheck) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The outcome of one check for one model (or for the server as a whole).
public struct ConformanceResult: Sendable, Hashable {
    /// How a check ended.
    public enum Outcome: String, Sendable, Hashable {
        /// The server does what the protocol asks.
        case passed
        /// The server breaks the protocol: a ModelSync client will misbehave against it.
        case failed
        /// The server works with the client, but not as the protocol recommends.
        case warning
        /// An optional part of the protocol the server does not implement (such as `_version`); the
        /// result says what the client does without it.
        case notSupported
        /// Not run, and why (no second tenant's token; no unique field in the model).
        case skipped
    }

    public var check: ConformanceCheck
    /// The model the check ran on, `nil` for a check of the server as a whole.
    public var model: String?
    public var outcome: Outcome
    /// What the kit sent and saw.
    public var observed: String
    /// What to change in the server, for a failure or a warning.
    public var fix: String?

    public init(check: ConformanceCheck, model: String?, outcome: Outcome, observed: String, fix: String? = nil) {
        self.check = check
        self.model = model
        self.outcome = outcome
        self.observed = observed
        self.fix = fix
    }
}

/// Everything a run of the kit found, and what it left on the server.
public struct ConformanceReport: Sendable {
    /// The server checked.
    public var baseURL: URL
    /// One result per check and model, in the order they ran.
    public var results: [ConformanceResult]
    /// How many records the kit created and then deleted again.
    public var deletedRecords: Int
    /// The records the kit created and could not delete, with why (`thread 12: DELETE /threads/12
    /// answered 500 …`).
    public var leftOnServer: [String]

    /// Why no check ran, when the server did not answer the first request (refused connection,
    /// timeout); `nil` when it answered.
    public var connectionFailure: String?

    /// Whether any check failed (the server breaks the protocol somewhere), or none could run.
    public var hasFailures: Bool { connectionFailure != nil || results.contains { $0.outcome == .failed } }

    /// The checks with at least one failed result.
    public var failedChecks: Set<ConformanceCheck> { Set(results.filter { $0.outcome == .failed }.map(\.check)) }

    /// The results of one check.
    public func results(of check: ConformanceCheck) -> [ConformanceResult] { results.filter { $0.check == check } }

    /// The report as `modelsync conformance` prints it: one line per result (`PASS`, `FAIL`, `WARN`,
    /// `N/A`, `SKIP`), the fix under each failure and warning, a summary, and what was left.
    public var text: String {
        var lines: [String] = ["checking \(baseURL.absoluteString) against the ModelSync sync protocol (version 1)"]
        if let connectionFailure {
            lines.append("FAIL server: \(connectionFailure); no check ran")
            lines.append("     fix: start the server, or pass the URL it listens on as --base-url")
            return lines.joined(separator: "\n") + "\n"
        }
        for result in results {
            let label: String
            switch result.outcome {
            case .passed: label = "PASS"
            case .failed: label = "FAIL"
            case .warning: label = "WARN"
            case .notSupported: label = "N/A "
            case .skipped: label = "SKIP"
            }
            let subject = result.model.map { "\(result.check.rawValue) \($0)" } ?? result.check.rawValue
            lines.append("\(label) \(subject): \(result.observed)")
            if let fix = result.fix, result.outcome == .failed || result.outcome == .warning {
                lines.append("     fix: \(fix)")
            }
        }
        func count(_ outcome: ConformanceResult.Outcome) -> Int { results.filter { $0.outcome == outcome }.count }
        lines.append(
            "\(count(.passed)) passed, \(count(.failed)) failed, \(count(.warning)) warnings, "
                + "\(count(.notSupported)) not supported, \(count(.skipped)) skipped")
        if hasFailures {
            let names = failedChecks.sorted().map(\.rawValue).joined(separator: ", ")
            lines.append("the server does not conform: \(names) (see Docs/Conformance.md)")
        } else {
            lines.append("the server conforms to every check that ran")
        }
        var cleanup = "cleanup: deleted the \(deletedRecords) records the kit created"
        cleanup += leftOnServer.isEmpty ? "; nothing left" : "; left \(leftOnServer.count) on the server:"
        lines.append(cleanup)
        lines += leftOnServer.map { "  \($0)" }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Checks a running server against the ModelSync sync protocol (Docs/Protocol.md), driven by the
/// models of the app's specs: their paths, ID types and generation, relationships, unique and
/// required fields. It creates sample records built from the field types, checks what the server
/// answers, and deletes what it created where the server allows.
///
/// ```swift
/// let (models, _) = try ModelSyncGenerator.models([try SpecSource(contentsOf: "Notes.modelsync.yaml")])
/// let report = await ConformanceKit(models: models, baseURL: URL(string: "http://127.0.0.1:8080")!).run()
/// print(report.text)
/// ```
///
/// Point it at a test deployment, not at production data: it writes records (and leaves their
/// tombstones, as the protocol asks).
public struct ConformanceKit: Sendable {
    /// The models to check, parents before children (as ``ModelSyncGenerator/models(_:moduleName:)``
    /// returns them).
    public var models: [SpecModel]
    /// The server's base URL; a model's collection is `baseURL + path`.
    public var baseURL: URL
    /// Sent as `Authorization: Bearer <token>` with every request, when given.
    public var token: String?
    /// A token of another tenant: enables ``ConformanceCheck/tenantIsolation``.
    public var secondTenantToken: String?
    /// The idle timeout of one request, in seconds.
    public var timeout: TimeInterval

    public init(
        models: [SpecModel], baseURL: URL, token: String? = nil, secondTenantToken: String? = nil,
        timeout: TimeInterval = 30
    ) {
        self.models = models
        self.baseURL = baseURL
        self.token = token
        self.secondTenantToken = secondTenantToken
        self.timeout = timeout
    }

    /// Runs every check, then deletes the records it created.
    public func run() async -> ConformanceReport {
        let runner = ConformanceRunner(kit: self)
        return await runner.run()
    }
}
