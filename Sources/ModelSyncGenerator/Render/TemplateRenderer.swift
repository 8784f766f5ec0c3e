import Foundation
import ModelSyncTemplates
import Mustache

/// Stage 3b: lays out render contexts with Mustache templates (built-in ones, or a user folder's
/// templates of the same name).
struct TemplateRenderer: Sendable {
    private let library: MustacheLibrary

    /// The built-in templates, parsed once per process.
    private static let builtin: Result<[String: MustacheTemplate], any Error> = Result {
        try BuiltinTemplates.load().mapValues { try MustacheTemplate(string: $0) }
    }

    /// Loads the built-in templates, then the `*.mustache` files of `overrides` (replacing
    /// built-ins of the same name). Problems in override files become diagnostics.
    init(overrides directory: String?, diagnostics: inout DiagnosticCollector) throws {
        var templates = try Self.builtin.get()
        if let directory {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for file in names.sorted() where file.hasSuffix(".mustache") {
                let path = (directory as NSString).appendingPathComponent(file)
                let name = String(file.dropLast(".mustache".count))
                do {
                    let text = try String(contentsOfFile: path, encoding: .utf8)
                    templates[name] = try MustacheTemplate(string: text)
                } catch {
                    diagnostics.error(
                        "cannot use template '\(file)': \(error)", at: SourceLocation(path: path, line: 1, column: 1))
                }
            }
        }
        library = MustacheLibrary(templates: templates)
    }

    func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: name) ?? ""
    }
}
