import Foundation
import PackagePlugin

/// `swift package --allow-writing-to-package-directory generate-model-sync-code --target X`:
/// generates the Swift sources of each target's `*.modelsync.yaml` specs into a `Generated` folder
/// of the target (for projects that check generated code in instead of using the build plugin).
///
/// `swift package --allow-writing-to-package-directory generate-model-sync-code init [--target Models]`:
/// scaffolds a models target instead (`modelsync init`): a starter spec, the one-line Swift placeholder
/// SwiftPM needs, and the Package.swift lines to add (printed). It never overwrites a file.
@main
struct GenerateModelSync: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) throws {
        var extractor = ArgumentExtractor(arguments)
        let names = extractor.extractOption(named: "target")
        if extractor.remainingArguments.first == "init" {
            try scaffold(context: context, target: names.last ?? "Models")
            return
        }
        let targets = try names.isEmpty ? context.package.targets : context.package.targets(named: names)
        let tool = try context.tool(named: "ModelSyncCLI").url
        var generated = 0
        for case let target as SourceModuleTarget in targets {
            let specs = target.sourceFiles.map(\.url).filter { $0.lastPathComponent.hasSuffix(".modelsync.yaml") }
            guard !specs.isEmpty else { continue }
            let output = target.directoryURL.appending(path: "Generated")
            let arguments =
                ["generate"] + specs.map(\.path).sorted() + ["--output", output.path, "--module-name", target.name]
            guard try run(tool, arguments) == 0 else {
                throw GenerationError(message: "modelsync failed for target \(target.name); see the errors above")
            }
            print("Generated \(target.name) sources in \(output.path)")
            generated += 1
        }
        if generated == 0 { print("No target with *.modelsync.yaml specs found.") }
    }

    /// Runs `modelsync init` in the package's folder.
    private func scaffold(context: PluginContext, target: String) throws {
        let tool = try context.tool(named: "ModelSyncCLI").url
        let arguments = ["init", "--package-path", context.package.directoryURL.path, "--target", target]
        guard try run(tool, arguments) == 0 else {
            throw GenerationError(message: "modelsync init failed; see the error above")
        }
    }

    /// Runs the CLI with the plugin's standard output and error; returns its exit status.
    private func run(_ tool: URL, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = tool
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

struct GenerationError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
