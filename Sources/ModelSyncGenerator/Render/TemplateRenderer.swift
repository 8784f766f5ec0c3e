import Foundation
import ModelSyncTemplates
import Mustache

/// Stage 3b: lays out typed render contexts with Mustache templates (built-in ones, or a user folder's
/// templates of the same name).
///
/// Every template is checked before use: each name it places or opens a section on must be a key of
/// the context it renders (``TemplateContext/templateKeys``), and each partial must exist. Swift-mustache
/// renders an unknown name as an empty string; here it is a diagnostic naming the template, the line
/// and the closest key. `sync-members` (the schema, `init(row:)`, `databaseValues()`, `withID`,
/// `replacingReferences`: what the store and ID replacement rely on) cannot be overridden.
struct TemplateRenderer: Sendable {
    /// The built-in templates a user folder may override, with the context each renders.
    static let overridable: [String: any TemplateContext.Type] = [
        "file": FileContext.self, "model": ModelContext.self, "registry": RegistryContext.self,
    ]
    /// Built-in templates a user folder may not override.
    static let fixed: [String: any TemplateContext.Type] = ["sync-members": ModelContext.self]

    private let library: MustacheLibrary

    /// The built-in templates, parsed and checked once per process.
    private static let builtin: Result<[String: MustacheTemplate], any Error> = Result {
        var templates: [String: MustacheTemplate] = [:]
        for (name, text) in try BuiltinTemplates.load() {
            let keys = (overridable[name] ?? fixed[name])?.templateKeys ?? []
            let problems = TemplateTags.problems(in: text, keys: keys, partials: Set(BuiltinTemplates.names))
            if let problem = problems.first {
                throw TemplateError(
                    message: "built-in template '\(name).mustache' line \(problem.line): \(problem.message)")
            }
            templates[name] = try MustacheTemplate(string: text)
        }
        return templates
    }

    /// Loads the built-in templates, then the `*.mustache` files of `overrides` (replacing
    /// built-ins of the same name). Problems in override files become diagnostics.
    init(overrides directory: String?, diagnostics: inout DiagnosticCollector) throws {
        var templates = try Self.builtin.get()
        if let directory {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
                .filter { $0.hasSuffix(".mustache") }
            let templateNames = Set(names.map { String($0.dropLast(".mustache".count)) }).union(templates.keys)
            // A template of the user's own (a partial) is laid out with the context of whichever
            // template includes it, so it may use any context's keys.
            let anyKeys = Self.overridable.values.reduce(into: Set<String>()) { $0.formUnion($1.templateKeys) }
            for file in names {
                let path = (directory as NSString).appendingPathComponent(file)
                let name = String(file.dropLast(".mustache".count))
                let location = SourceLocation(path: path, line: 1, column: 1)
                if Self.fixed[name] != nil {
                    diagnostics.error(
                        "template '\(file)' cannot be overridden: it generates the members the store and ID "
                            + "replacement rely on (the schema, init(row:), databaseValues(), withID, "
                            + "replacingReferences); override 'model.mustache' for the struct, its "
                            + "documentation, conformances and extensions",
                        at: location)
                    continue
                }
                do {
                    let text = try String(contentsOfFile: path, encoding: .utf8)
                    let keys = Self.overridable[name]?.templateKeys ?? anyKeys
                    let problems = TemplateTags.problems(in: text, keys: keys, partials: templateNames)
                    for problem in problems {
                        diagnostics.error(
                            "template '\(file)': \(problem.message)",
                            at: SourceLocation(path: path, line: problem.line, column: problem.column))
                    }
                    templates[name] = try MustacheTemplate(string: text)
                } catch {
                    diagnostics.error("cannot use template '\(file)': \(error)", at: location)
                }
            }
        }
        library = MustacheLibrary(templates: templates)
    }

    /// Renders template `name` with `context`.
    func render(_ name: String, _ context: some TemplateContext) throws -> String {
        guard let text = library.render(try TemplateValueEncoder.encode(context), withTemplate: name) else {
            throw TemplateError(message: "no template named '\(name)'")
        }
        return text
    }
}

/// A template ModelSync cannot render (a bug in a built-in template, or a missing one).
struct TemplateError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Reads the tags of a Mustache template (`{{name}}`, `{{#section}}`, `{{>partial}}`…) and checks
/// their names.
enum TemplateTags {
    struct Problem: Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    /// The tags whose name is not in `keys` (or, for partials, not in `partials`), in order.
    static func problems(in text: String, keys: Set<String>, partials: Set<String>) -> [Problem] {
        var problems: [Problem] = []
        var open = "{{"
        var close = "}}"
        var rest = text[...]
        while let start = rest.range(of: open) {
            var afterOpen = start.upperBound
            // `{{{name}}}`: the triple mustache closes with one more brace.
            let triple = open == "{{" && rest[afterOpen...].hasPrefix("{")
            if triple { afterOpen = rest.index(after: afterOpen) }
            guard let end = rest[afterOpen...].range(of: triple ? "}" + close : close) else { break }
            let content = rest[afterOpen..<end.lowerBound].trimmingCharacters(in: .whitespaces)
            let position = position(of: start.lowerBound, in: text)
            rest = rest[end.upperBound...]
            guard let sigil = content.first else { continue }
            var name = content
            switch sigil {
            case "!", "%":
                continue
            case "=":
                // `{{=<% %>=}}` sets new delimiters.
                let delimiters = content.dropFirst().dropLast().split(separator: " ", omittingEmptySubsequences: true)
                if delimiters.count == 2 {
                    open = String(delimiters[0])
                    close = String(delimiters[1])
                }
                continue
            case ">":
                let partial = content.dropFirst().trimmingCharacters(in: .whitespaces)
                if !partials.contains(partial) {
                    problems.append(
                        Problem(
                            line: position.line, column: position.column,
                            message: "'{{>\(partial)}}' names no template"
                                + suggestion(for: partial, among: partials.sorted())))
                }
                continue
            case "#", "^", "/", "&", "$", "<":
                name = content.dropFirst().trimmingCharacters(in: .whitespaces)
            default:
                break
            }
            // A transform, `uppercased(name)` or `first()`: the name is inside the parentheses.
            if let parenthesis = name.firstIndex(of: "("), name.hasSuffix(")") {
                name = String(name[name.index(after: parenthesis)..<name.index(before: name.endIndex)])
            }
            // `.` is the current item; `a.b` looks up `a` first; `.a` looks up `a` in the current item.
            let first = name.split(separator: ".").first.map(String.init) ?? ""
            if first.isEmpty || keys.contains(first) { continue }
            problems.append(
                Problem(
                    line: position.line, column: position.column,
                    message: "'\(first)' is not a value this template is given"
                        + suggestion(for: first, among: keys.sorted())
                        + " (Docs/Generator.md lists the keys of each template)"))
        }
        return problems
    }

    private static func position(of index: String.Index, in text: String) -> (line: Int, column: Int) {
        var line = 1
        var lineStart = text.startIndex
        for position in text[..<index].indices where text[position] == "\n" {
            line += 1
            lineStart = text.index(after: position)
        }
        return (line, text.distance(from: lineStart, to: index) + 1)
    }
}
