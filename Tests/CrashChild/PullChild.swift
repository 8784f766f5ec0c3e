import ChatModels
import Foundation
import ModelSync

/// Pulls every model from the server into the file-backed store and prints what the pull did:
/// `pulled inserted=<n> updated=<n> deleted=<n> rejected=<n> messagesReceived=<n>`. The kill-during-pull
/// test kills it midway (while the server holds a listing) and runs it again to completion.
///
///     modelsync-crash-child pull <database path> <server URL>
func runPull(_ arguments: [String]) async -> Int32 {
    guard arguments.count == 2, let baseURL = URL(string: arguments[1]) else {
        FileHandle.standardError.write(Data("usage: modelsync-crash-child pull <database> <server URL>\n".utf8))
        return 2
    }
    do {
        let store = try SyncStore(.file(URL(fileURLWithPath: arguments[0])), models: GeneratedModels.all)
        let remote = RESTRemote(configuration: .init(baseURL: baseURL, timeout: 30), models: GeneratedModels.all)
        let engine = SyncEngine(store: store, remote: remote)
        let report = try await engine.sync().pull
        let received = try await engine.currentProgress().pulls[Message.schema.name]?.received ?? -1
        print(
            "pulled inserted=\(report.inserted) updated=\(report.updated) deleted=\(report.deleted) "
                + "rejected=\(report.rejected.count) messagesReceived=\(received)")
        return 0
    } catch {
        print("error \(error)")
        return 1
    }
}
