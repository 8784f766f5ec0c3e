import ArgumentParser
import Foundation
import ModelSyncGenerator

/// `modelsync`: scaffolds a models target, generates Swift sources from `*.modelsync.yaml` specs,
/// validates specs, prints the JSON Schema of the spec format, and checks a server against the sync
/// protocol.
@main
struct ModelSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modelsync",
        abstract: "Generates a sync layer (models, repositories, relationships) from *.modelsync.yaml specs.",
        subcommands: [Init.self, Generate.self, Validate.self, JSONSchema.self, Conformance.self]
    )
}

/// The spec files named by `paths`, read; fails when there are none.
func readSpecs(_ paths: [String]) throws -> [SpecSource] {
    let files = try ModelSyncGenerator.specFiles(in: paths)
    guard !files.isEmpty else {
        throw ValidationError("no *.modelsync.yaml file in \(paths.joined(separator: ", "))")
    }
    return try files.map { try SpecSource(contentsOf: $0) }
}

/// Prints diagnostics the way compilers do, so that IDEs and SwiftPM point at the spec line.
func report(_ diagnostics: [Diagnostic]) {
    for diagnostic in diagnostics {
        FileHandle.standardError.write(Data((diagnostic.description + "\n").utf8))
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generates Swift sources for the specs of one target.",
        discussion: """
            All specs given (files, or folders searched for *.modelsync.yaml) form one target: models may \
            reference each other across files. Writes <Name>.modelsync.swift per spec and \
            ModelSyncRegistry.swift; a file is rewritten only when its bytes change, and nothing is written \
            when a spec has an error.
            """
    )

    @Argument(help: "Spec files or folders.")
    var paths: [String]

    @Option(name: .shortAndLong, help: "The folder to write the generated Swift files into.")
    var output: String

    @Option(help: "The module the models are generated into (messages spell qualified names with it).")
    var moduleName: String?

    @Flag(
        help: """
            Generate the sync server's side instead (ModelSyncServerModels.swift: the PostgreSQL schema, its \
            statements and the Hummingbird routes, for a target that depends on the ModelSyncServer library).
            """)
    var server = false

    func run() throws {
        let sources = try readSpecs(paths)
        do {
            if server {
                let file = try ModelSyncGenerator.generateServer(sources, moduleName: moduleName)
                try ModelSyncGenerator.write([file], to: output)
                return
            }
            let result = try ModelSyncGenerator.generate(sources, moduleName: moduleName)
            report(result.warnings)
            try ModelSyncGenerator.write(result.files, to: output)
        } catch let failure as GenerationFailed {
            report(failure.diagnostics)
            throw ExitCode.failure
        }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Checks specs and prints their diagnostics; exits non-zero when there is an error.",
        discussion: """
            Diagnostics go to standard error. On success, standard output says what was checked: \
            `ok: 2 files, 6 models, 7 relationships` (and the number of warnings, if any).
            """
    )

    @Argument(help: "Spec files or folders.")
    var paths: [String]

    @Option(help: "The module the models are generated into (messages spell qualified names with it).")
    var moduleName: String?

    func run() throws {
        let sources = try readSpecs(paths)
        let checked = ModelSyncGenerator.check(sources, moduleName: moduleName)
        report(checked.diagnostics)
        if checked.hasErrors { throw ExitCode.failure }
        print(checked.summary)
    }
}

struct JSONSchema: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json-schema", abstract: "Prints the JSON Schema of the *.modelsync.yaml format.")

    func run() throws {
        print(SpecJSONSchema.text, terminator: "")
    }
}
