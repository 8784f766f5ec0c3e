import EvolutionV1Models
import EvolutionV2Models
import Foundation
import ModelSync
import ModelSyncReferenceServer
import ModelSyncTestSupport
import Testing

/// An older app talking to a newer server: the server answers 426 with a message, the app reports
/// "this app version is too old", and its changes stay queued for the updated app.
@Suite("An older app talking to a newer server")
struct OlderClientTests {
    @Test(
        "a server that needs a newer schema version answers 426; the push throws a too-old error, the change stays queued and the updated app sends it, its version taken from the generated models"
    )
    func olderClientIsToldItIsTooOld() async throws {
        #expect(EvolutionV1Models.GeneratedModels.schemaVersion == 1)
        #expect(EvolutionV2Models.GeneratedModels.schemaVersion == 2)
        let directory = try makeTemporaryDirectory("older-client")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("notes.sqlite")
        let server = ReferenceServer(models: EvolutionV2Models.GeneratedModels.all)
        server.setMinimumClientSchemaVersion(EvolutionV2Models.GeneratedModels.schemaVersion)
        let url = try await server.start()
        defer { Task { await server.stop() } }
        let fastRetries = SyncEngine.Configuration(
            maximumConcurrentRequests: 2, retry: RetryPolicy(initialDelay: 0.01, maximumDelay: 0.05),
            maximumRetryWait: 30)

        // Version 1 pushes an author.
        do {
            let models = EvolutionV1Models.GeneratedModels.all
            let store = try SyncStore(.file(database), models: models)
            _ = try await store.repository(for: EvolutionV1Models.Author.self).save(
                EvolutionV1Models.Author(name: "Ada"))
            let remote = RESTRemote(
                configuration: .init(baseURL: url, schemaVersion: EvolutionV1Models.GeneratedModels.schemaVersion),
                models: models)
            let engine = SyncEngine(store: store, remote: remote, configuration: fastRetries)
            let error = await #expect(throws: RemoteError.self) { try await engine.push() }
            #expect(error?.isClientTooOld == true)
            #expect(error?.description.contains("this app version is too old") == true, "\(String(describing: error))")
            let entries = try await store.outbox.entries()
            #expect(entries.map(\.state) == [.pending], "the change is kept, not failed")
            #expect(entries.first?.lastError?.contains("HTTP 426") == true)
        }
        #expect(await server.records().values.allSatisfy(\.isEmpty))

        // The updated app opens the same database and sends the change, in its shape.
        let models = EvolutionV2Models.GeneratedModels.all
        let store = try SyncStore(
            .file(database), models: models, removedModels: EvolutionV2Models.GeneratedModels.removedModels)
        // The app does not name its schema version: the generated models carry it.
        let remote = RESTRemote(configuration: .init(baseURL: url), models: models)
        #expect(remote.configuration.schemaVersion == 2)
        let report = try await SyncEngine(store: store, remote: remote, configuration: fastRetries).push()
        #expect(report.sent == 1 && report.failed == 0, "\(report)")
        #expect(
            await server.records(of: EvolutionV2Models.Author.self).compactMap { $0["display_name"]?.stringValue } == [
                "Ada"
            ])
    }
}
