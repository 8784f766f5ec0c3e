import ArgumentParser
import Foundation

/// `modelsync init`: scaffolds a models target in a package, the way the docs describe one: a starter
/// spec, the one-line Swift placeholder SwiftPM needs, and the Package.swift lines to add.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Scaffolds a models target: a starter spec, its Swift placeholder, and the Package.swift lines.",
        discussion: """
            Creates Sources/<target>/<target>.modelsync.yaml (two models, commented) and \
            Sources/<target>/<target>.swift, a one-line placeholder: SwiftPM builds a target only when it has a \
            Swift source of its own (swiftlang/swift-package-manager#8061), even when the build plugin generates \
            all of its code. Prints the lines to add to Package.swift. Never overwrites a file: when one of them \
            exists, nothing is written.
            """
    )

    @Option(help: "The package folder (holding Package.swift).")
    var packagePath: String = "."

    @Option(help: "The name of the models target (a Swift module name).")
    var target: String = "Models"

    func validate() throws {
        let identifier = target.first.map { $0 == "_" || ($0.isASCII && $0.isLetter) } ?? false
        guard identifier, target.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
            throw ValidationError(
                "invalid target name '\(target)'; use a Swift module name (ASCII letters, digits and '_', not starting "
                    + "with a digit)")
        }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: packagePath).appending(path: "Sources/\(target)")
        let files = [
            (folder.appending(path: "\(target).modelsync.yaml"), Self.starterSpec),
            (folder.appending(path: "\(target).swift"), Self.placeholder(target: target)),
        ]
        // Check every file first: either all are written or none.
        for (url, _) in files where FileManager.default.fileExists(atPath: url.path) {
            FileHandle.standardError.write(
                Data(
                    ("error: \(url.path) already exists; modelsync init never overwrites a file and wrote nothing "
                        + "(move it away, or choose another target with --target)\n").utf8))
            throw ExitCode.failure
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (url, contents) in files {
            try Data(contents.utf8).write(to: url, options: .withoutOverwriting)
            print("created \(url.path)")
        }
        print("")
        print(Self.packageLines(target: target))
    }

    /// The placeholder: SwiftPM skips a target without a Swift source of its own.
    static func placeholder(target: String) -> String {
        "// Keep this file: SwiftPM builds \(target) only with a Swift source of its own "
            + "(swiftlang/swift-package-manager#8061); ModelSyncPlugin generates the models from *.modelsync.yaml.\n"
    }

    /// The package URL and version the README's installation section uses.
    static let packageURL = "https://github.com/your-org/ModelSync"
    static let packageVersion = "0.1.0"

    static func packageLines(target: String) -> String {
        """
        Add to Package.swift, inside Package(...), in this order (merge with what is there):

            platforms: [.macOS(.v14), .iOS(.v17)],
            products: [
                // Only when other packages use the models; this package's targets depend on "\(target)".
                .library(name: "\(target)", targets: ["\(target)"]),
            ],
            dependencies: [
                .package(url: "\(packageURL)", from: "\(packageVersion)"),
            ],
            targets: [
                .target(
                    name: "\(target)",
                    dependencies: [.product(name: "ModelSync", package: "ModelSync")],
                    plugins: [.plugin(name: "ModelSyncPlugin", package: "ModelSync")]
                ),
            ],

        Then `swift build` generates the models; `swift run modelsync validate Sources/\(target)` checks the spec.
        """
    }

    /// A small, valid spec showing a field of each common kind and both sides of a relationship.
    static let starterSpec = """
        # The models of this target. The ModelSync build plugin (ModelSyncPlugin) generates their Swift code
        # on every build. The format: the DocC article "The spec format" of ModelSync; its JSON Schema is
        # printed by `modelsync json-schema` (point your editor's YAML support at it).
        version: 1
        options:
          # public: other targets (the app) use the generated models.
          accessModifier: public
        models:
          Notebook:
            fields:
              title: String
              createdAt: Date
            relationships:
              # A notebook's notes: the inverse is the belongsTo on Note.
              notes: { hasMany: Note, inverse: notebook }
          Note:
            fields:
              body: String
              pinned: { type: Bool, default: false }
              updatedAt: Date?        # '?' makes a field optional
            relationships:
              # Adds the foreign key `notebookId`; deleting a notebook deletes its notes.
              notebook: { belongsTo: Notebook, onDelete: cascade }

        """
}
