// swift-tools-version: 6.1
// TodoOffline: client-generated IDs (uuidv7), offline edits, a conflict on pull, and each
// record's sync status (synced, pending, failed).
//
//     swift run --package-path Examples/TodoOffline todo-offline
import Foundation
import PackageDescription

// ModelSync is the package two folders up; SwiftPM names a path dependency after its folder.
let modelSync = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "TodoOffline",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The models, generated from Todos.modelsync.yaml by the build plugin.
        .target(
            name: "TodoModels",
            dependencies: [.product(name: "ModelSync", package: modelSync)],
            plugins: [.plugin(name: "ModelSyncPlugin", package: modelSync)]
        ),
        .executableTarget(
            name: "todo-offline",
            dependencies: [
                "TodoModels",
                .product(name: "ModelSync", package: modelSync),
                .product(name: "ModelSyncReferenceServer", package: modelSync),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/TodoOffline"
        ),
    ]
)
