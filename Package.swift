// swift-tools-version: 6.1
import PackageDescription

// ModelSync in one declaration. Products are grouped by who builds them:
// - apps: `ModelSync` (the runtime) and the plugins, which build the `modelsync` CLI for the host;
// - servers: `ModelSyncServer` and `modelsync-server` (Hummingbird, postgres-nio, jwt-kit), never
//   built by an app;
// - tests and tools: the reference server, the conformance kit.
// Targets follow the same groups; test targets and the targets only tests use come last.
let package = Package(
    name: "ModelSync",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        // For apps.
        .library(name: "ModelSync", targets: ["ModelSync"]),
        .plugin(name: "ModelSyncPlugin", targets: ["ModelSyncPlugin"]),
        .plugin(name: "GenerateModelSync", targets: ["GenerateModelSync"]),
        .executable(name: "modelsync", targets: ["ModelSyncCLI"]),
        // Not a second CLI: the plugins run their tool through the product named like its target
        // (`context.tool(named: "ModelSyncCLI")`), and SwiftPM synthesizes that product only for an
        // executable target no other product contains. Without this line the build fails with "no
        // product named 'ModelSyncCLI'"; the target cannot be named `modelsync` either: its folder would
        // be `Sources/ModelSync`'s on case-insensitive file systems.
        .executable(name: "ModelSyncCLI", targets: ["ModelSyncCLI"]),

        // For servers (issue 11).
        .library(name: "ModelSyncServer", targets: ["ModelSyncServer"]),
        .executable(name: "modelsync-server", targets: ["modelsync-server"]),

        // For tests and for checking servers: apps do not need them.
        .library(name: "ModelSyncReferenceServer", targets: ["ModelSyncReferenceServer"]),
        .executable(name: "modelsync-reference-server", targets: ["modelsync-reference-server"]),
        .library(name: "ModelSyncConformance", targets: ["ModelSyncConformance"]),
    ],
    dependencies: [
        // The runtime.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The generator and the CLI.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The server.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // The reference server (tests), documentation, property-based tests.
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // MARK: Runtime
        // What generated code imports: SQLite store, repositories, outbox, ID replacement, sync.
        .target(
            name: "ModelSync",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API: `sqlite3_file_control` (a database file moved under a live store), and text
                // and BLOBs read with their explicit length (StoredValues.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Generator
        // The spec parser, validator and renderer (a library the CLI, the plugins, the reference server
        // and the tests share), its built-in templates, the `modelsync` CLI, the build and command plugins.
        // Built-in Mustache templates, shipped as resources (user templates override them by name).
        .target(
            name: "ModelSyncTemplates",
            path: "Templates",
            resources: [
                .copy("file.mustache"), .copy("model.mustache"), .copy("registry.mustache"),
                .copy("sync-members.mustache"),
            ]
        ),
        .target(
            name: "ModelSyncGenerator",
            dependencies: [
                "ModelSyncTemplates", "ModelSyncServerSchema",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .executableTarget(
            name: "ModelSyncCLI",
            dependencies: [
                "ModelSyncGenerator", "ModelSyncConformance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .plugin(
            name: "ModelSyncPlugin",
            capability: .buildTool(),
            dependencies: [.target(name: "ModelSyncCLI")]
        ),
        .plugin(
            name: "GenerateModelSync",
            capability: .command(
                intent: .custom(
                    verb: "generate-model-sync-code",
                    description:
                        "Generates Swift sources from the *.modelsync.yaml specs of a target into its folder; "
                        + "`init [--target T]` scaffolds a models target"),
                permissions: [
                    .writeToPackageDirectory(reason: "Writes the generated Swift sources next to the specs")
                ]
            ),
            dependencies: [.target(name: "ModelSyncCLI")]
        ),

        // MARK: Server
        // The generated sync server on PostgreSQL (issue 11). `ModelSyncServerSchema` has no dependencies:
        // the generator and the server share its SQL builder (one source for the SQL).
        .target(name: "ModelSyncServerSchema"),
        .target(
            name: "ModelSyncServer",
            dependencies: [
                "ModelSyncServerSchema",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "modelsync-server",
            dependencies: [
                "ModelSyncServer", "ModelSyncGenerator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Reference server and conformance kit
        // The reference sync server: real HTTP on loopback, server IDs, foreign keys, idempotency,
        // fault injection; its executable serves any spec (`--spec`).
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
            dependencies: ["ModelSyncReferenceServer", "ChatModels", "ModelSyncGenerator"]
        ),
        // Checks a running server against the sync protocol (Docs/Protocol.md), driven by the specs'
        // models. It needs the generator (to read specs) and URLSession only, not the runtime: the CLI
        // the build plugin builds stays free of GRDB.
        .target(name: "ModelSyncConformance", dependencies: ["ModelSyncGenerator"]),

        // MARK: Benchmarks
        .executableTarget(
            name: "modelsync-benchmarks",
            dependencies: [
                "ModelSync", "ChatModels", "ModelSyncReferenceServer", "ModelSyncGenerator",
                // migrate100k (MigrationBenchmark.swift) upgrades a version 1 database with version 2.
                "EvolutionV1Models", "EvolutionV2Models",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Benchmarks/modelsync-benchmarks"
        ),
        // server-create8: the generated server against a hand-written Hummingbird + postgres-nio handler.
        // Its own executable, so that `modelsync-benchmarks` (run by CI) never builds the server stack.
        .executableTarget(
            name: "modelsync-server-benchmarks",
            dependencies: [
                "ModelSyncServer", "ChatServer", "ModelSyncTestSupport", "ModelSync", "ChatModels",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Benchmarks/modelsync-server-benchmarks"
        ),

        // MARK: Targets only tests use
        // The expected output for the chat example of the spec format: the generator must reproduce
        // these files byte for byte (GoldenTests, ServerGoldenTests).
        .target(name: "ChatModels", dependencies: ["ModelSync"], path: "Tests/Reference/Chat"),
        .target(
            name: "ChatServer",
            dependencies: [
                "ModelSyncServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/Reference/ChatServer"
        ),
        // Models the build plugin generates (three spec files).
        .target(
            name: "PluginChatModels",
            dependencies: ["ModelSync"],
            path: "Tests/PluginFixture",
            plugins: [.plugin(name: "ModelSyncPlugin")]
        ),
        // Two builds of the same app (issue 12): version 1 and version 2 of the notes models, each
        // generated by the build plugin from its own spec, and a child process that runs version 1 and
        // stops version 2 in the middle of its migration.
        .target(
            name: "EvolutionV1Models", dependencies: ["ModelSync"], path: "Tests/Evolution/V1Models",
            plugins: [.plugin(name: "ModelSyncPlugin")]),
        .target(
            name: "EvolutionV2Models", dependencies: ["ModelSync"], path: "Tests/Evolution/V2Models",
            plugins: [.plugin(name: "ModelSyncPlugin")]),
        .executableTarget(
            name: "modelsync-evolution-child", dependencies: ["ModelSync", "EvolutionV1Models", "EvolutionV2Models"],
            path: "Tests/Evolution/Child"),
        // The process the reliability tests kill and run beside them: crash recovery, two processes on
        // one file, claims held, a read-only probe, pulls (see its main.swift).
        .executableTarget(
            name: "modelsync-crash-child",
            dependencies: ["ModelSync", "ChatModels", "ModelSyncReferenceServer"],
            path: "Tests/CrashChild"
        ),
        // Helpers shared by the tests: child processes, a raw loopback HTTP server, a forwarding proxy,
        // a private PostgreSQL cluster.
        .target(name: "ModelSyncTestSupport", path: "Tests/ModelSyncTestSupport"),

        // MARK: Tests
        .testTarget(
            name: "ModelSyncTests",
            dependencies: ["ModelSync", "ChatModels", "ModelSyncTestSupport"]
        ),
        .testTarget(
            name: "ModelSyncSyncTests",
            dependencies: ["ModelSync", "ModelSyncReferenceServer", "ChatModels", "ModelSyncTestSupport"]
        ),
        .testTarget(
            name: "ModelSyncGeneratorTests",
            dependencies: ["ModelSyncGenerator"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "PluginChatModelsTests",
            dependencies: ["PluginChatModels", "ModelSync"]
        ),
        // Every field type of the plugin-built `Sample` model through save -> push -> reference server
        // -> pull: focused edge cases and a seeded property-based round trip (issue 9).
        .testTarget(
            name: "ModelSyncValueTests",
            dependencies: [
                "PluginChatModels", "ModelSync", "ModelSyncReferenceServer", "ModelSyncTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // The reliability suite: chaos convergence, crash recovery with a real child process, large
        // pulls, two processes, fuzzed specs, name injection, races, the docs' code blocks compiled.
        .testTarget(
            name: "ModelSyncReliabilityTests",
            dependencies: [
                "ModelSync", "ChatModels", "ModelSyncReferenceServer", "ModelSyncGenerator", "ModelSyncTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "ModelSyncEvolutionTests",
            dependencies: [
                "ModelSync", "EvolutionV1Models", "EvolutionV2Models", "ModelSyncReferenceServer",
                "ModelSyncTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The conformance kit against the reference server and against servers with one defect each.
        .testTarget(
            name: "ModelSyncConformanceTests",
            dependencies: [
                "ModelSyncConformance", "ModelSyncGenerator", "ModelSyncReferenceServer", "ModelSync", "ChatModels",
                "ModelSyncTestSupport",
            ],
            exclude: ["Fixtures"]
        ),
        // The generated server on a private PostgreSQL cluster, and the end-to-end sync suite run against
        // both the reference server and the generated server.
        .testTarget(
            name: "ModelSyncServerTests",
            dependencies: [
                "ModelSync", "ChatModels", "ModelSyncReferenceServer", "ModelSyncServer", "ChatServer",
                "ModelSyncGenerator", "ModelSyncTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ]
)
