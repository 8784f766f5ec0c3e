// swift-tools-version: 6.1
// ChatServer: the generated sync routes mounted in an app's own Hummingbird server, beside a route of
// its own, on PostgreSQL. The models come from the demo app's spec (a link to
// Examples/ChatSync/Sources/ChatSyncModels/ChatSync.modelsync.yaml): one spec, both ends.
//
//     swift run --package-path Examples/ChatServer chat-server \
//         --database postgres://app@127.0.0.1/chat --development-tenant demo
import Foundation
import PackageDescription

// ModelSync is the package two folders up; SwiftPM names a path dependency after its folder.
let modelSync = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "ChatServer",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // Depending on ModelSyncServer makes the build plugin generate the server's side of the spec
        // (ModelSyncServerModels.swift: the PostgreSQL schema, its statements and the routes).
        .executableTarget(
            name: "chat-server",
            dependencies: [
                .product(name: "ModelSyncServer", package: modelSync),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Sources/ChatServer",
            plugins: [.plugin(name: "ModelSyncPlugin", package: modelSync)]
        )
    ]
)
