// swift-tools-version: 6.1
// ChatSync: the main demo of ModelSync. Threads and messages are created offline with temporary
// IDs, then synced to a server that assigns its own; every replacement is printed.
//
//     swift run --package-path Examples/ChatSync chat-sync
import Foundation
import PackageDescription

// ModelSync is the package two folders up; SwiftPM names a path dependency after its folder.
let modelSync = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "ChatSync",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The models, generated from ChatSync.modelsync.yaml by the build plugin.
        .target(
            name: "ChatSyncModels",
            dependencies: [.product(name: "ModelSync", package: modelSync)],
            plugins: [.plugin(name: "ModelSyncPlugin", package: modelSync)]
        ),
        .executableTarget(
            name: "chat-sync",
            dependencies: [
                "ChatSyncModels",
                .product(name: "ModelSync", package: modelSync),
                .product(name: "ModelSyncReferenceServer", package: modelSync),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/ChatSync"
        ),
    ]
)
