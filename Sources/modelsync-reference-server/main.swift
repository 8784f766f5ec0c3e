// modelsync-reference-server: the reference sync server for the chat models, as a process.
//
//     swift run modelsync-reference-server [--port 8080]
//
// Prints its base URL on the first line, then serves until killed.

import ChatModels
import Foundation
import ModelSyncReferenceServer

let arguments = CommandLine.arguments
let port =
    arguments.firstIndex(of: "--port").flatMap { index in
        index + 1 < arguments.count ? UInt16(arguments[index + 1]) : nil
    } ?? 0
let server = ReferenceServer(models: GeneratedModels.all)
let url = try await server.start(port: port)
FileHandle.standardOutput.write(Data((url.absoluteString + "\n").utf8))
while true { try await Task.sleep(for: .seconds(3600)) }
