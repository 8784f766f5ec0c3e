import ChatModels
import Foundation
@_spi(OutboxInternals) import ModelSync

/// Claims every ready outbox entry, as an engine starting a push does, prints `claimed <n>`, then
/// waits for its standard input to close and exits without recording any outcome: a process that
/// holds claims while it lives, and whose claims are orphaned once it is gone.
///
///     modelsync-crash-child hold-claims <database path>
func holdClaims(_ arguments: [String]) async -> Int32 {
    guard arguments.count == 1 else {
        FileHandle.standardError.write(Data("usage: modelsync-crash-child hold-claims <database>\n".utf8))
        return 2
    }
    do {
        let store = try SyncStore(.file(URL(fileURLWithPath: arguments[0])), models: GeneratedModels.all)
        let claimed = try await store.outbox.claimReadyEntries(limit: 10_000)
        FileHandle.standardOutput.write(Data("claimed \(claimed.count)\n".utf8))
        _ = FileHandle.standardInput.readDataToEndOfFile()
        withExtendedLifetime(store) {}
        return 0
    } catch {
        FileHandle.standardOutput.write(Data("error \(error)\n".utf8))
        return 1
    }
}
