import ArgumentParser
import Foundation
import ModelSyncGenerator

/// `modelsync`: generates Swift sources from `*.modelsync.yaml` specs, validates specs, and prints
/// the JSON Schema of the spec format.
@main
struct ModelSyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modelsync",
        abstract: "Generates a sync layer (models, repositories, relationships) from *.modelsync.yaml specs.",
        subcommands: [Generate.self, Validate.self, JSONSchema.self]
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

    func run() throws {
        let sources = try readSpecs(paths)
        do {
            let result = try ModelSyncGenerator.generate(sources)
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
        abstract: "Checks specs and prints their diagnostics; exits non-zero when there is an error.")

    @Argument(help: "Spec files or folders.")
    var paths: [String]

    func run() throws {
        let sources = try readSpecs(paths)
        let diagnostics = ModelSyncGenerator.validate(sources)
        report(diagnostics)
        if diagnostics.contains(where: { $0.severity == .error }) { throw ExitCode.failure }
    }
}

struct JSONSchema: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json-schema", abstract: "Prints the JSON Schema of the *.modelsync.yaml format.")

    func run() throws {
        print(SpecJSONSchema.text, terminator: "")
    }
}
