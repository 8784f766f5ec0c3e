import Foundation
import GRDB
import Logging

// A pull whose cursor the server no longer keeps, and a pull beside the live stream.
extension SyncEngine {
    /// Pulls `model` from its cursor (``streamModel(_:into:)``), holding ``pullOrLiveApply`` so
    /// that no live change is stored meanwhile (a live change applied while the pull holds an older
    /// page would be overwritten by it, and the pull would set the model's cursor back).
    ///
    /// A server whose retention horizon passed the cursor (it pruned the tombstones after it)
    /// answers the listing `410 Gone`: the model is then listed again from no cursor, and the local
    /// server copies that this full listing does not list are deleted, which a listing from the
    /// old cursor would have missed. A record with queued local changes, or never sent, is never
    /// deleted that way (see ``deleteUnlisted(_:into:)``).
    ///
    /// A pull cancelled while it waits for the lock throws `CancellationError` at once, storing nothing.
    func pullFromCursorOrAgain(_ model: any SyncModel.Type, into report: inout PullReport) async throws {
        try await pullOrLiveApply.acquireUnlessCancelled()
        defer { pullOrLiveApply.release() }
        do {
            try await streamModel(model, into: &report)
        } catch RemoteError.http(let status, let message, _) where status == 410 {
            let table = model.schema.tableName
            logger.notice(
                "pull of \(model.schema.name): the server no longer keeps changes as old as the cursor (\(message)); listing it again from no cursor"
            )
            try await store.writeBypassingSync { db in
                try db.execute(sql: "DELETE FROM \(PullState.table) WHERE tableName = ?", arguments: [table])
            }
            try await streamModel(model, into: &report)
        }
    }
}
