import Foundation
import PackagePlugin

/// `swift package --allow-writing-to-package-directory generate-model-sync-code --target X`:
/// generates the Swift sources of each target's `*.modelsync.yaml` specs into a `Generated` folder
/// of the target (for projects that check generated code in instead of using the build plugin).
@main
struct GenerateModelSync: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) throws {
        var extractor = ArgumentExtractor(arguments)
        let names = extractor.extractOption(named: "target")
        let targets = try names.isEmpty ? context.package.targets : context.package.targets(named: names)
        let tool = try context.tool(named: "ModelSyncCLI").url
        var generated = 0
        for case let target as SourceModuleTarget in targets {
            let specs = target.sourceFiles.map(\.url).filter { $0.lastPathComponent.hasSuffix(".modelsync.yaml") }
            guard !specs.isEmpty else { continue }
            let output = target.directoryURL.appending(path: "Generated")
            let process = Process()
            process.executableURL = tool
            process.arguments = ["generate"] + specs.map(\.path).sorted() + ["--output", output.path]
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw GenerationError(message: "modelsync failed for target \(target.name); see the errors above")
            }
            print("Generated \(target.name) sources in \(output.path)")
            generated += 1
        }
        if generated == 0 { print("No target with *.modelsync.yaml specs found.") }
    }
}

struct GenerationError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
