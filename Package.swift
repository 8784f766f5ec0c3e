// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ModelSync",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "ModelSync", targets: ["ModelSync"]),
        // A sync server for tests and examples; apps do not need it.
        .library(name: "ModelSyncReferenceServer", targets: ["ModelSyncReferenceServer"]),
        .executable(name: "modelsync-reference-server", targets: ["modelsync-reference-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // Property-based tests only (ModelSyncValueTests); apps never build it.
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // The runtime that generated code imports: SQLite store, repositories, outbox, ID replacement.
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

        // The hand-written reference output for the chat example of the spec format. The generator must
        // reproduce these files byte for byte (see Tests/ModelSyncGeneratorTests).
        .target(
            name: "ChatModels",
            dependencies: ["ModelSync"],
            path: "Tests/Reference/Chat"
        ),

        .testTarget(
            name: "ModelSyncTests",
            dependencies: ["ModelSync", "ChatModels", "ModelSyncTestSupport"]
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
            dependencies: ["ModelSync", "ModelSyncReferenceServer", "ChatModels", "ModelSyncTestSupport"]
        ),
        // Helpers shared by the sync and reliability tests.
        .target(name: "ModelSyncTestSupport", path: "Tests/ModelSyncTestSupport"),

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

// MARK: Generator
// The spec parser, validator and renderer (a library the CLI, the plugins and the tests share),
// its built-in templates, the `modelsync` CLI, the build and command plugins, their tests, and a
// target that applies the build plugin. The CLI target is `ModelSyncCLI` (its executable is
// `modelsync`): a target folder `Sources/modelsync` would be the same folder as `Sources/ModelSync`
// on case-insensitive file systems.
package.products += [
    .executable(name: "modelsync", targets: ["ModelSyncCLI"]),
    // Not a second CLI: the plugins run their tool through the product named like its target
    // (`context.tool(named: "ModelSyncCLI")`), and SwiftPM synthesizes that product only for an
    // executable target no other product contains. Without this line the build fails with "no
    // product named 'ModelSyncCLI'"; the target cannot be named `modelsync` (see above).
    .executable(name: "ModelSyncCLI", targets: ["ModelSyncCLI"]),
    .plugin(name: "ModelSyncPlugin", targets: ["ModelSyncPlugin"]),
    .plugin(name: "GenerateModelSync", targets: ["GenerateModelSync"]),
]
package.targets += [
    // Built-in Mustache templates, shipped as resources (user templates override them by name).
    .target(
        name: "ModelSyncTemplates",
        path: "Templates",
        resources: [
            .copy("file.mustache"), .copy("model.mustache"), .copy("registry.mustache"), .copy("sync-members.mustache"),
        ]
    ),
    .target(
        name: "ModelSyncGenerator",
        dependencies: [
            "ModelSyncTemplates",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Mustache", package: "swift-mustache"),
        ]
    ),
    .executableTarget(
        name: "ModelSyncCLI",
        dependencies: [
            "ModelSyncGenerator",
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
            permissions: [.writeToPackageDirectory(reason: "Writes the generated Swift sources next to the specs")]
        ),
        dependencies: [.target(name: "ModelSyncCLI")]
    ),
    .testTarget(
        name: "ModelSyncGeneratorTests",
        dependencies: ["ModelSyncGenerator"],
        exclude: ["Fixtures"]
    ),
    // A library whose models the build plugin generates (two spec files), and its tests.
    .target(
        name: "PluginChatModels",
        dependencies: ["ModelSync"],
        path: "Tests/PluginFixture",
        plugins: [.plugin(name: "ModelSyncPlugin")]
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
]
for target in package.targets where target.name == "modelsync-benchmarks" {
    target.dependencies += ["ModelSyncGenerator", .product(name: "Yams", package: "Yams")]
}

// MARK: Reliability
// The reliability suite (issue 6): chaos convergence, crash recovery with a real child process,
// fuzzed specs, name injection and races. `modelsync-crash-child` is the process the crash test
// kills: it opens a file-backed store, creates chat records and syncs against a server URL.
package.targets += [
    .executableTarget(
        name: "modelsync-crash-child",
        dependencies: ["ModelSync", "ChatModels", "ModelSyncReferenceServer"],
        path: "Tests/CrashChild"
    ),
    .testTarget(
        name: "ModelSyncReliabilityTests",
        dependencies: [
            "ModelSync", "ChatModels", "ModelSyncReferenceServer", "ModelSyncGenerator", "ModelSyncTestSupport",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]
    ),
]

// MARK: Conformance
// The conformance kit (issue 11): checks a running server against the sync protocol
// (Docs/Protocol.md), driven by the specs' models; `modelsync conformance` runs it. It needs the
// generator (to read specs) and Foundation's URLSession only, not the runtime: the CLI the build
// plugin builds stays free of GRDB. Its tests run it against the reference server and against
// servers with one defect each. The reference server executable serves any spec (`--spec`).
package.products += [
    .library(name: "ModelSyncConformance", targets: ["ModelSyncConformance"])
]
package.targets += [
    .target(name: "ModelSyncConformance", dependencies: ["ModelSyncGenerator"]),
    .testTarget(
        name: "ModelSyncConformanceTests",
        dependencies: [
            "ModelSyncConformance", "ModelSyncGenerator", "ModelSyncReferenceServer", "ModelSync", "ChatModels",
            "ModelSyncTestSupport",
        ],
        exclude: ["Fixtures"]
    ),
]
for target in package.targets {
    if target.name == "ModelSyncCLI" { target.dependencies += ["ModelSyncConformance"] }
    if target.name == "modelsync-reference-server" { target.dependencies += ["ModelSyncGenerator"] }
}

// MARK: Evolution
// Two builds of the same app (issue 12): version 1 and version 2 of the notes models, each generated
// by the build plugin from its own spec; a child process that runs version 1 and stops version 2 in
// the middle of its migration; the tests that upgrade a version 1 database with version 2.
package.targets += [
    .target(
        name: "EvolutionV1Models", dependencies: ["ModelSync"], path: "Tests/Evolution/V1Models",
        plugins: [.plugin(name: "ModelSyncPlugin")]),
    .target(
        name: "EvolutionV2Models", dependencies: ["ModelSync"], path: "Tests/Evolution/V2Models",
        plugins: [.plugin(name: "ModelSyncPlugin")]),
    .executableTarget(
        name: "modelsync-evolution-child", dependencies: ["ModelSync", "EvolutionV1Models", "EvolutionV2Models"],
        path: "Tests/Evolution/Child"),
    .testTarget(
        name: "ModelSyncEvolutionTests",
        dependencies: [
            "ModelSync", "EvolutionV1Models", "EvolutionV2Models", "ModelSyncReferenceServer", "ModelSyncTestSupport",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]
    ),
]
for target in package.targets where target.name == "modelsync-benchmarks" {
    // migrate100k (MigrationBenchmark.swift) upgrades a version 1 database with version 2.
    target.dependencies += ["EvolutionV1Models", "EvolutionV2Models"]
}

// MARK: Server
// The generated sync server on PostgreSQL (issue 11). Its own products and targets: an app that uses the
// `ModelSync` library never builds Hummingbird, postgres-nio or jwt-kit. `ModelSyncServerSchema` has no
// dependencies: the generator and the server share its SQL builder (one source for the SQL).
package.dependencies += [
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
    .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
]
package.products += [
    .library(name: "ModelSyncServer", targets: ["ModelSyncServer"]),
    .executable(name: "modelsync-server", targets: ["modelsync-server"]),
]
package.targets += [
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
]
for target in package.targets where target.name == "ModelSyncGenerator" {
    target.dependencies += ["ModelSyncServerSchema"]
}
package.targets += [
    // The generator's server output for the chat spec (`modelsync generate --server`), compiled, and
    // diffed byte for byte by ServerGoldenTests.
    .target(
        name: "ChatServer",
        dependencies: [
            "ModelSyncServer",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ],
        path: "Tests/Reference/ChatServer"
    ),
    // server-create8: the generated server against a hand-written Hummingbird + postgres-nio handler.
    // Its own executable, so that `modelsync-benchmarks` (run by CI) never builds the server stack.
    .executableTarget(
        name: "modelsync-server-benchmarks",
        dependencies: [
            "ModelSyncServer", "ChatServer", "ModelSyncTestSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ],
        path: "Benchmarks/modelsync-server-benchmarks"
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
