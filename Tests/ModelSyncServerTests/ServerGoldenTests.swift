import ChatServer
import Foundation
import ModelSyncGenerator
import ModelSyncServer
import Testing

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite struct ServerGoldenTests {
    @Test("the chat spec generates Tests/Reference/ChatServer byte for byte")
    func chatServerFileIsTheReference() throws {
        let reference = packageRoot.appending(path: "Tests/Reference")
        let spec = try SpecSource(contentsOf: reference.appending(path: "Chat.modelsync.yaml").path)
        let file = try ModelSyncGenerator.generateServer([spec])
        #expect(file.name == "ModelSyncServerModels.swift")
        let expected = try String(
            contentsOf: reference.appending(path: "ChatServer/ModelSyncServerModels.swift"), encoding: .utf8)
        #expect(
            file.contents == expected,
            "regenerate: modelsync generate --server -o Tests/Reference/ChatServer Tests/Reference/Chat.modelsync.yaml")
    }

    @Test("the generated SQL is what modelsync-server builds at run time from the same spec (one source)")
    func generatedSQLEqualsTheRuntimeBuilder() throws {
        let spec = try SpecSource(contentsOf: packageRoot.appending(path: "Tests/Reference/Chat.modelsync.yaml").path)
        let runtimeSchema = try ModelSyncGenerator.serverSchema([spec])
        #expect(runtimeSchema == ServerModels.schema)
        #expect(ServerSQL(runtimeSchema) == ServerModels.sql)
    }
}
