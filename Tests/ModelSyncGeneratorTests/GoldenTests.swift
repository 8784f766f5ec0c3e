import Foundation
import Testing

@testable import ModelSyncGenerator

/// The repository root, found from this file's location.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite struct GoldenTests {
    @Test func chatSpecGeneratesTheReferenceFilesByteForByte() throws {
        let reference = packageRoot.appending(path: "Tests/Reference")
        let spec = try SpecSource(contentsOf: reference.appending(path: "Chat.modelsync.yaml").path)
        let result = try ModelSyncGenerator.generate([spec])
        #expect(result.files.map(\.name) == ["Chat.modelsync.swift", "ModelSyncRegistry.swift"])
        // One deliberate warning: the reference spec keeps a model named like Foundation.Thread.
        #expect(
            result.warnings.map(\.description) == [
                "\(spec.path):19:3: warning: model 'Thread' shadows Foundation.Thread; in code that imports "
                    + "Foundation, write <Module>.Thread (or rename the model)"
            ])
        for file in result.files {
            let expected = try String(contentsOf: reference.appending(path: "Chat/\(file.name)"), encoding: .utf8)
            #expect(file.contents == expected, "\(file.name) differs from Tests/Reference/Chat/\(file.name)")
        }
    }
}
