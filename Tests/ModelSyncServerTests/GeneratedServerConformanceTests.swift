import Foundation
import ModelSyncConformance
import ModelSyncGenerator
import Testing

/// The conformance kit (`modelsync conformance`) against the generated server on PostgreSQL: the
/// server ModelSync generates passes every check the kit makes of a user's own server, tenant
/// isolation included.
@Suite("Conformance of the generated server")
struct GeneratedServerConformanceTests {
    @Test("the generated server passes every check of the conformance kit, with two tenants' tokens")
    func theGeneratedServerPassesEveryCheck() async throws {
        let server = try await GeneratedServer.start()
        defer { Task { await server.stop() } }
        let spec = packageRoot.appendingPathComponent("Tests/Reference/Chat.modelsync.yaml")
        let models = try ModelSyncGenerator.models([SpecSource(contentsOf: spec.path)]).models
        let kit = ConformanceKit(
            models: models, baseURL: server.url, token: try await token(tenant: "acme", subject: "ada"),
            secondTenantToken: try await token(tenant: "globex", subject: "bob"))
        let report = await kit.run()

        let failed = report.results.filter { $0.outcome == .failed }
            .map { "\($0.check.rawValue) \($0.model ?? ""): \($0.observed)" }
        #expect(failed.isEmpty, "\(failed.joined(separator: "\n"))\n\(report.text)")
        let doubtful = report.results.filter { $0.outcome == .warning || $0.outcome == .notSupported }
        #expect(doubtful.isEmpty, "\(report.text)")
        // A check is skipped only for a model it does not apply to (no belongsTo, no unique field).
        let skipped = report.results.filter { $0.outcome == .skipped }
        #expect(
            skipped.allSatisfy { $0.observed.hasPrefix("the model has no ") && $0.model != nil },
            "\(skipped.map { "\($0.check.rawValue) \($0.model ?? ""): \($0.observed)" })")
        for check in ConformanceCheck.allCases {
            #expect(report.results(of: check).contains { $0.outcome == .passed }, "\(check) never passed")
        }
        #expect(report.leftOnServer.isEmpty, "the kit left records: \(report.leftOnServer)")
    }
}
