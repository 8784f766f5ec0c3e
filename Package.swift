// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ModelSync",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "ModelSync", targets: ["ModelSync"])
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // The runtime that generated code imports: SQLite store, repositories, outbox, ID replacement.
        .target(
            name: "ModelSync",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The hand-written reference output for the chat example of DESIGN.md. The generator must
        // reproduce these files byte for byte (see Tests/ModelSyncGeneratorTests).
        .target(
            name: "ChatModels",
            dependencies: ["ModelSync"],
            path: "Tests/Reference/Chat"
        ),

        .testTarget(
            name: "ModelSyncTests",
            dependencies: ["ModelSync", "ChatModels"]
        ),

        // The reference sync server: real HTTP on loopback, server IDs, foreign keys, idempotency,
        // fault injection. Its own product, so that apps using ModelSync never build it.
        .target(
            name: "ModelSyncReferenceServer",
            dependencies: [
                "ModelSync",
                .product(name: "FlyingFox", package: "FlyingFox"),
                .product(name: "FlyingSocks", package: "FlyingFox"),
            ]
        ),
        .executableTarget(
            name: "modelsync-reference-server",
            dependencies: ["ModelSyncReferenceServer", "ChatModels"]
        ),
        .testTarget(
            name: "ModelSyncSyncTests",
            dependencies: ["ModelSync", "ModelSyncReferenceServer", "ChatModels"]
        ),

        .executableTarget(
            name: "modelsync-benchmarks",
            dependencies: [
                "ModelSync",
                "ChatModels",
                "ModelSyncReferenceServer",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Benchmarks/modelsync-benchmarks"
        ),
    ]
)
