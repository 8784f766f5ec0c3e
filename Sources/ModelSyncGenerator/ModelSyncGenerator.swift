import Foundation

/// The text of one spec file and the path diagnostics should name.
public struct SpecSource: Sendable, Hashable {
    public var path: String
    public var text: String

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }

    /// Reads a spec file from disk.
    public init(contentsOf path: String) throws {
        self.init(path: path, text: try String(contentsOfFile: path, encoding: .utf8))
    }
}

/// A generated Swift file: its name (in the output directory) and contents.
public struct GeneratedFile: Sendable, Hashable {
    public var name: String
    public var contents: String
}

/// The files generated for one target, and the warnings of the run.
public struct GenerationResult: Sendable {
    public var files: [GeneratedFile]
    public var warnings: [Diagnostic]
}

/// What a check of a target's specs found: its diagnostics, and what was checked.
public struct ValidationReport: Sendable {
    /// Every diagnostic, errors and warnings, causes before their consequences, then in file and line order.
    public var diagnostics: [Diagnostic]
    /// The number of spec files read.
    public var fileCount: Int
    /// The number of models declared.
    public var modelCount: Int
    /// The number of relationships declared (belongsTo, hasMany, hasOne, manyToMany).
    public var relationshipCount: Int

    /// Whether any diagnostic is an error.
    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// What was checked, for a successful run: `ok: 2 files, 6 models, 7 relationships` (and the
    /// number of warnings, when there are some).
    public var summary: String {
        func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
        var parts = [
            counted(fileCount, "file"), counted(modelCount, "model"),
            counted(relationshipCount, "relationship"),
        ]
        let warnings = diagnostics.filter { $0.severity == .warning }.count
        if warnings > 0 { parts.append(counted(warnings, "warning")) }
        return "ok: " + parts.joined(separator: ", ")
    }
}

/// Generates the Swift sources of a target from its `*.modelsync.yaml` specs:
/// parse (Yams, with source locations) -> translate (validated model graph) -> render (Mustache).
public enum ModelSyncGenerator {
    /// The name of the registry file generated once per target.
    public static let registryFileName = "ModelSyncRegistry.swift"

    /// The output file name of a spec file: `Chat.modelsync.yaml` -> `Chat.modelsync.swift`.
    public static func outputName(forSpec fileName: String) -> String {
        GraphBuilder.outputName(for: fileName)
    }

    /// Checks the specs of one target; returns every diagnostic, errors and warnings, in order.
    ///
    /// - Parameter moduleName: the module the models are generated into, when known; messages use it
    ///   to spell qualified names (`Models.Thread`).
    public static func validate(_ sources: [SpecSource], moduleName: String? = nil) -> [Diagnostic] {
        check(sources, moduleName: moduleName).diagnostics
    }

    /// Checks the specs of one target; returns every diagnostic and counts what was checked.
    public static func check(_ sources: [SpecSource], moduleName: String? = nil) -> ValidationReport {
        var collector = DiagnosticCollector()
        var specFiles: [SpecFile] = []
        _ = translate(sources, moduleName: moduleName, diagnostics: &collector, specFiles: &specFiles)
        return ValidationReport(
            diagnostics: collector.sorted, fileCount: sources.count,
            modelCount: specFiles.reduce(0) { $0 + $1.models.count },
            relationshipCount: specFiles.reduce(0) { total, file in
                total + file.models.reduce(0) { $0 + $1.relationships.count + $1.unreadableRelationships.count }
            })
    }

    /// Generates the files of one target: one per spec file, plus ``registryFileName``.
    ///
    /// - Throws: ``GenerationFailed`` with every diagnostic when any spec has an error.
    /// - Parameter moduleName: the module the models are generated into, when known; messages use it
    ///   to spell qualified names (`Models.Thread`).
    public static func generate(_ sources: [SpecSource], moduleName: String? = nil) throws -> GenerationResult {
        var collector = DiagnosticCollector()
        var specFiles: [SpecFile] = []
        guard let graph = translate(sources, moduleName: moduleName, diagnostics: &collector, specFiles: &specFiles)
        else {
            throw GenerationFailed(diagnostics: collector.sorted)
        }
        // Each model is rendered on its own (in parallel: rendering dominates generation time), then
        // each file lays out its models' code.
        let renderers = try graph.files.map {
            try TemplateRenderer(overrides: $0.templatesDirectory, diagnostics: &collector)
        }
        let modelCode = try renderModels(graph, renderers: renderers)
        var files: [GeneratedFile] = []
        for (index, file) in graph.files.enumerated() {
            let context = RenderContext.file(file, code: file.modelIndexes.map { modelCode[$0] })
            files.append(GeneratedFile(name: file.outputName, contents: try renderers[index].render("file", context)))
        }
        let registryTemplates = graph.files.lazy.compactMap(\.templatesDirectory).first
        let registryRenderer = try TemplateRenderer(overrides: registryTemplates, diagnostics: &collector)
        files.append(
            GeneratedFile(
                name: registryFileName, contents: try registryRenderer.render("registry", RenderContext.registry(graph))
            ))
        if collector.hasErrors { throw GenerationFailed(diagnostics: collector.sorted) }
        return GenerationResult(files: files, warnings: collector.sorted)
    }

    /// Writes generated files into `directory` (created if needed), rewriting a file only when its
    /// bytes change. Returns the names of the files written.
    @discardableResult
    public static func write(_ files: [GeneratedFile], to directory: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written: [String] = []
        for file in files {
            let path = (directory as NSString).appendingPathComponent(file.name)
            let data = Data(file.contents.utf8)
            if let existing = FileManager.default.contents(atPath: path), existing == data { continue }
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
            written.append(file.name)
        }
        return written
    }

    /// The spec files named by `paths`: files as given, folders searched recursively for
    /// `*.modelsync.yaml`, sorted.
    public static func specFiles(in paths: [String]) throws -> [String] {
        var result: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
            }
            if isDirectory.boolValue {
                let enumerator = FileManager.default.enumerator(atPath: path)
                while let relative = enumerator?.nextObject() as? String {
                    if relative.hasSuffix(".modelsync.yaml") {
                        result.append((path as NSString).appendingPathComponent(relative))
                    }
                }
            } else {
                result.append(path)
            }
        }
        return result.sorted()
    }

    /// The code of every model, without its final newline: the `model` template's output (the struct,
    /// its relationships, its store accessor), then the `sync-members` template's (the members the
    /// runtime relies on, which user templates cannot replace).
    private static func renderModels(_ graph: ModelGraph, renderers: [TemplateRenderer]) throws -> [String] {
        let code = RenderedModels(count: graph.models.count)
        DispatchQueue.concurrentPerform(iterations: graph.models.count) { index in
            let model = graph.models[index]
            let file = graph.files[model.fileIndex]
            let context = RenderContext.model(model, access: file.access, graph: graph)
            code.set(
                index,
                Result {
                    let renderer = renderers[model.fileIndex]
                    let parts = [try renderer.render("model", context), try renderer.render("sync-members", context)]
                    return parts.map { $0.trimmingCharacters(in: .newlines) }.joined(separator: "\n\n")
                })
        }
        return try code.values.map { try $0.get() }
    }

    /// Parses and translates the specs; `files` receives the parsed files (readable ones only).
    static func translate(
        _ sources: [SpecSource], moduleName: String?, diagnostics: inout DiagnosticCollector,
        specFiles files: inout [SpecFile]
    ) -> ModelGraph? {
        for source in sources {
            var parser = SpecParser(path: source.path, text: source.text)
            let file = parser.parse()
            diagnostics.append(contentsOf: parser.diagnostics)
            if let file { files.append(file) }
        }
        // Semantic checks run even when a file has shape errors, so one run reports all it can.
        var builder = GraphBuilder(moduleName: moduleName)
        let graph = builder.build(files)
        diagnostics.append(contentsOf: builder.diagnostics)
        return diagnostics.hasErrors ? nil : graph
    }
}

/// The rendered code of each model, filled in from several threads.
private final class RenderedModels: @unchecked Sendable {
    private var storage: [Result<String, any Error>]
    private let lock = NSLock()

    init(count: Int) {
        storage = Array(repeating: .success(""), count: count)
    }

    func set(_ index: Int, _ text: Result<String, any Error>) {
        lock.withLock { storage[index] = text }
    }

    var values: [Result<String, any Error>] { lock.withLock { storage } }
}
