import Foundation
import ModelSyncTemplates
import Testing

@testable import ModelSyncGenerator

/// User templates: what they may change, and the errors for what they get wrong.
@Suite struct TemplateTests {
    /// A spec using the template folder `templates/` next to it, with `templates` as given (file name
    /// -> text). Returns the generator's result or its diagnostics.
    private func generate(templates: [String: String]) throws -> Result<GenerationResult, GenerationFailed> {
        let folder = FileManager.default.temporaryDirectory.appending(path: "modelsync-templates-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let templateFolder = folder.appending(path: "templates")
        try FileManager.default.createDirectory(at: templateFolder, withIntermediateDirectories: true)
        for (name, text) in templates {
            try Data(text.utf8).write(to: templateFolder.appending(path: name))
        }
        let spec = """
            version: 1
            options: { templates: templates }
            models:
              Note:
                fields:
                  title: { type: String }
                relationships:
                  folder: { belongsTo: Folder, optional: true }
              Folder:
                relationships:
                  notes: { hasMany: Note, inverse: folder }
            """
        let path = folder.appending(path: "Notes.modelsync.yaml").path
        try Data(spec.utf8).write(to: URL(fileURLWithPath: path))
        do {
            return .success(try ModelSyncGenerator.generate([SpecSource(path: path, text: spec)]))
        } catch let failure as GenerationFailed {
            return .failure(failure)
        }
    }

    private func builtin(_ name: String) throws -> String {
        try #require(try BuiltinTemplates.load()[name])
    }

    @Test("a user template naming a value its context lacks is an error at its line, with the closest key")
    func unknownKeyInUserTemplateIsAnError() throws {
        var lines = try builtin("model").components(separatedBy: "\n")
        let index = try #require(lines.firstIndex { $0.contains("struct {{name}}: SyncModel") })
        lines[index] = lines[index].replacingOccurrences(of: "{{name}}", with: "{{nmae}}")
        let result = try generate(templates: ["model.mustache": lines.joined(separator: "\n")])
        guard case .failure(let failure) = result else {
            Issue.record("a template with an unknown key generated code: \(result)")
            return
        }
        let diagnostic = try #require(failure.diagnostics.first)
        #expect(diagnostic.severity == .error)
        #expect(diagnostic.location.path.hasSuffix("templates/model.mustache"))
        #expect(diagnostic.location.line == index + 1)
        #expect(diagnostic.message.contains("'nmae' is not a value this template is given; did you mean 'name'?"))
    }

    @Test("a partial that names no template is an error")
    func unknownPartialIsAnError() throws {
        let model = try builtin("model").replacingOccurrences(
            of: "{{access}}struct {{name}}", with: "{{>noteHeader}}\n{{access}}struct {{name}}")
        let result = try generate(templates: ["model.mustache": model, "note-header.mustache": "/// A note.\n"])
        guard case .failure(let failure) = result else {
            Issue.record("a template with an unknown partial generated code")
            return
        }
        #expect(failure.diagnostics.map(\.message).contains { $0.contains("'{{>noteHeader}}' names no template") })
    }

    @Test("the members the runtime relies on cannot be overridden")
    func syncMembersCannotBeOverridden() throws {
        let result = try generate(templates: ["sync-members.mustache": "// nothing\n"])
        guard case .failure(let failure) = result else {
            Issue.record("an override of sync-members was accepted")
            return
        }
        let message = try #require(failure.diagnostics.first?.message)
        #expect(message.contains("template 'sync-members.mustache' cannot be overridden"))
        #expect(message.contains("override 'model.mustache'"))
    }

    @Test("a model template without the runtime members still gets them, and a user partial is laid out")
    func overriddenModelTemplateKeepsRuntimeMembers() throws {
        // A minimal presentation template: a doc comment from a partial, the struct, nothing else.
        let model = """
            {{% CONTENT_TYPE: TEXT}}
            {{>docs}}
            {{access}}struct {{name}}: SyncModel {
                {{access}}typealias ID = ModelID<{{name}}>
            {{#properties}}
                {{access}}var {{name}}: {{type}}
            {{/properties}}
            }
            """
        let result = try generate(templates: ["model.mustache": model, "docs.mustache": "/// A {{phrase}}, synced.\n"])
        guard case .success(let generated) = result else {
            Issue.record("generation failed: \(result)")
            return
        }
        let code = try #require(generated.files.first { $0.name == "Notes.modelsync.swift" }?.contents)
        #expect(code.contains("/// A note, synced.\nstruct Note: SyncModel {"))
        #expect(code.contains("func replacingReferences("))
        #expect(code.contains("if let folderId, let newID = replacement(\"folderId\", folderId.rawValue)"))
        #expect(code.contains("init(row: Row) throws {"))
        #expect(code.contains("static let schema = ModelSchema("))
        // The relationships and the store accessor were left out by this template.
        #expect(!code.contains("var notes: Repository<Note>"))
    }

    @Test(
        "template tags: sections, triple braces, transforms, comments and new delimiters are read as Mustache reads them"
    )
    func tagReader() {
        let text = """
            {{! {{notAKey}} in a comment }}
            {{#list}}{{{raw}}}{{/list}} {{^flag}}{{uppercased(name)}}{{/flag}} {{.}} {{list.name}}
            {{=<% %>=}}<%name%> <%missing%> {{notATag}}
            """
        let problems = TemplateTags.problems(in: text, keys: ["list", "raw", "flag", "name"], partials: [])
        #expect(problems == [.init(line: 3, column: 21, message: problems.first?.message ?? "")])
        #expect(problems.first?.message.hasPrefix("'missing' is not a value this template is given") == true)
    }

    @Test("Docs/Generator.md lists exactly the keys each template is given")
    func documentedKeysMatchTheContexts() throws {
        let text = try String(contentsOf: packageRoot.appending(path: "Docs/Generator.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "\n## Templates\n").last)
        var documented: [String: Set<String>] = [:]
        var current: String?
        for line in section.components(separatedBy: "\n") {
            if line.hasPrefix("- `"), let name = line.split(separator: "`").dropFirst().first,
                name.hasSuffix(".mustache")
            {
                current = String(name.dropLast(".mustache".count))
            } else if line.hasPrefix("  "), let template = current {
                let keys = line.matches(of: /`([A-Za-z]+)`/).map { String($0.output.1) }
                documented[template, default: []].formUnion(keys)
            } else if !line.hasPrefix("  ") {
                current = nil
            }
        }
        #expect(documented["file"] == FileContext.templateKeys)
        #expect(documented["registry"] == RegistryContext.templateKeys)
        #expect(documented["model"] == ModelContext.templateKeys)
    }
}
