import Foundation
import PackagePlugin

/// Runs `modelsync generate` on the `*.modelsync.yaml` files of a target before it compiles.
///
/// Outputs are declared up front: `<Name>.modelsync.swift` per spec and `ModelSyncRegistry.swift`.
/// The specs, the target's `*.mustache` files (user templates) and the built-in templates are
/// inputs, so editing any of them regenerates.
///
/// A target that depends on the `ModelSyncServer` library is a server: it gets the server's side
/// of the same specs instead (`modelsync generate --server`: `ModelSyncServerModels.swift` with
/// the PostgreSQL schema, its statements and the routes), so one spec file, or a link to the
/// app's, builds both ends.
@main
struct ModelSyncPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let target = target as? SourceModuleTarget else { return [] }
        let files = target.sourceFiles.map(\.url)
        let specs = files.filter { $0.lastPathComponent.hasSuffix(".modelsync.yaml") }
            .sorted { $0.path < $1.path }
        guard !specs.isEmpty else { return [] }
        let userTemplates = files.filter { $0.pathExtension == "mustache" }
        let output = context.pluginWorkDirectoryURL.appending(path: "GeneratedSources")
        if Self.isServer(target) {
            return [
                .buildCommand(
                    displayName: "Generating the ModelSync server for \(target.name)",
                    executable: try context.tool(named: "ModelSyncCLI").url,
                    arguments: ["generate", "--server"] + specs.map(\.path) + [
                        "--output", output.path, "--module-name", target.name,
                    ],
                    inputFiles: specs + Self.builtinTemplates(),
                    outputFiles: [output.appending(path: "ModelSyncServerModels.swift")]
                )
            ]
        }
        let outputs =
            specs.map { output.appending(path: $0.deletingPathExtension().lastPathComponent + ".swift") }
            + [output.appending(path: "ModelSyncRegistry.swift")]
        return [
            .buildCommand(
                displayName: "Generating ModelSync sources for \(target.name)",
                executable: try context.tool(named: "ModelSyncCLI").url,
                arguments: ["generate"] + specs.map(\.path) + ["--output", output.path, "--module-name", target.name],
                inputFiles: specs + userTemplates + Self.builtinTemplates(),
                outputFiles: outputs
            )
        ]
    }

    /// Whether `target` depends directly on the `ModelSyncServer` library (as a product of this
    /// package, or as a target inside it).
    static func isServer(_ target: SourceModuleTarget) -> Bool {
        target.dependencies.contains { dependency in
            switch dependency {
            case .product(let product): product.name == "ModelSyncServer"
            case .target(let target): target.name == "ModelSyncServer"
            @unknown default: false
            }
        }
    }

    /// The package's own Templates folder, found from this file's location.
    static func builtinTemplates() -> [URL] {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appending(path: "Templates")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".mustache") }.sorted().map { folder.appending(path: $0) }
    }
}
