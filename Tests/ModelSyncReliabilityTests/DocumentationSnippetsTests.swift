import Foundation
import Testing

/// The documentation cannot drift: every ```swift block of the README and of the DocC articles is
/// compiled, inside the package the README tells an app developer to write, and that package's
/// tests (a query, a relationship, an observation and a sync against the reference server, plus
/// every test the documentation shows) run.
///
/// The rules for a block (the README's "Contributing" part says the same):
/// - A ```swift block with no marker is the body of an `async throws` function. Its leading
///   `import` lines move to the top of the file; it may use the prelude's values without declaring
///   them (``DocumentationPackage/preludeParameters``).
/// - `<!-- snippet: file -->` on the line before a block: the block is a whole Swift file of the
///   package's test target.
/// - `<!-- snippet: file path=P -->`: the block, of any language, is the file at `P` in the package
///   (the manifest, a spec, the placeholder source). Blocks naming the same path must be identical.
///   In `Package.swift`, the dependency on ModelSync by URL becomes a dependency by path.
/// - Any other block (```sh, ```yaml without a marker) is not compiled.
///
/// The package lives in `.build-docs/package`, its scratch folder in `.build-docs/scratch` (kept
/// between runs, so a rebuild is incremental), and `.build-docs/ModelSync` is a link to this
/// repository so that the dependency's identity is `ModelSync`, as with the URL.
@Suite("Documentation")
struct DocumentationSnippetsTests {
    @Test("every Swift block of the README and the DocC articles compiles, and the package they describe syncs")
    func documentationCompilesAndThePackageItDescribesSyncs() async throws {
        let snippets = try DocumentationPackage.documents().flatMap { try Snippet.extract(from: $0) }
        let folder = packageRoot.appendingPathComponent(".build-docs")
        let package = try DocumentationPackage(snippets: snippets)
        try package.write(
            to: folder.appendingPathComponent("package"), linking: folder.appendingPathComponent("ModelSync"))
        print("documentation: \(snippets.count) blocks (\(package.summary)) into \(folder.path)/package")

        let started = ContinuousClock.now
        let (status, output) = try await GeneratedCodeCompilesTests.run([
            "swift", "test", "--package-path", folder.appendingPathComponent("package").path,
            "--scratch-path", folder.appendingPathComponent("scratch").path,
        ])
        let errors = output.split(separator: "\n").filter { $0.contains("error:") || $0.contains("✘") }
        #expect(
            status == 0,
            "the documentation's package did not build or its tests failed:\n\(errors.prefix(30).joined(separator: "\n"))\n\(output.suffix(3000))"
        )
        for test in DocumentationPackage.requiredTests {
            #expect(output.contains("Test \"\(test)\" passed"), "the consumer test '\(test)' did not pass")
        }
        print("documentation: package built and tested in \(ContinuousClock.now - started)")
    }

    @Test("a marker decides what a block is; fences, indentation and imports are read as written")
    func extractorReadsMarkersFencesAndImports() throws {
        let text = """
            Intro.

            ```sh
            swift build
            ```

            <!-- snippet: file path=Sources/Models/Models.swift -->
            ```swift
            // placeholder
            ```

            - A list item:

              ```swift
              import ModelSync
              let x = 1
              ```
            <!-- snippet: file -->
            ```swift
            import Testing
            @Test func t() {}
            ```
            <!-- snippet: file path=Sources/Models/App.modelsync.yaml -->
            ```yaml
            version: 1
            ```
            """
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("snippets-\(UUID()).md")
        try text.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let snippets = try Snippet.extract(from: url)
        #expect(
            snippets.map(\.kind) == [
                .file(path: "Sources/Models/Models.swift"), .statements, .file(path: nil),
                .file(path: "Sources/Models/App.modelsync.yaml"),
            ])
        #expect(snippets.map(\.line) == [9, 15, 20, 25])
        #expect(snippets[1].code == "import ModelSync\nlet x = 1")
        #expect(snippets[1].hoistingImports() == (["import ModelSync"], "\nlet x = 1"))

        try "<!-- snippet: compile -->\n```swift\nx\n```\n".write(to: url, atomically: true, encoding: .utf8)
        #expect(throws: SnippetError.self) { try Snippet.extract(from: url) }
        try "<!-- snippet: file -->\n```yaml\nx: 1\n```\n".write(to: url, atomically: true, encoding: .utf8)
        #expect(throws: SnippetError.self) { try Snippet.extract(from: url) }
        try "```swift\nlet open = 1\n".write(to: url, atomically: true, encoding: .utf8)
        #expect(throws: SnippetError.self) { try Snippet.extract(from: url) }
    }
}

/// A documentation block that does not follow the rules, with where it is.
struct SnippetError: Error, CustomStringConvertible {
    var description: String
}

/// One fenced code block of a Markdown document.
struct Snippet {
    enum Kind: Hashable {
        /// The body of a function (a ```swift block without a marker).
        case statements
        /// A whole file: at `path` in the package, or (nil) a Swift file of the test target.
        case file(path: String?)
    }

    var document: URL
    /// The line of the block's first line of code (1-based).
    var line: Int
    var language: String
    var kind: Kind
    var code: String

    /// The compiled blocks of a Markdown file, in order.
    static func extract(from document: URL) throws -> [Snippet] {
        let lines = try String(contentsOf: document, encoding: .utf8).components(separatedBy: "\n")
        var snippets: [Snippet] = []
        var marker: (text: String, line: Int)?
        var index = 0
        while index < lines.count {
            let trimmed = lines[index].trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("<!-- snippet:") {
                marker = (trimmed, index + 1)
                index += 1
                continue
            }
            guard trimmed.hasPrefix("```") else {
                if !trimmed.isEmpty { marker = nil }
                index += 1
                continue
            }
            let where_ = "\(document.lastPathComponent):\(index + 1)"
            let indent = lines[index].prefix { $0 == " " }.count
            let language = String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces)
            guard
                let close = lines[(index + 1)...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "```" }
                )
            else { throw SnippetError(description: "\(where_): the code block is never closed (no ``` line after it)") }
            let code = lines[(index + 1)..<close].map {
                String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count)))
            }
            .joined(separator: "\n")
            let kind = try marker.map { try Self.kind(of: $0.text, at: "\(document.lastPathComponent):\($0.line)") }
            switch (language, kind) {
            case (_, .file(let path)?) where path != nil || language == "swift":
                snippets.append(
                    Snippet(
                        document: document, line: index + 2, language: language, kind: .file(path: path), code: code))
            case (_, .file?):
                throw SnippetError(
                    description:
                        "\(where_): a ```\(language) block marked `file` needs a path (`<!-- snippet: file path=… -->`)"
                )
            case ("swift", _):
                snippets.append(
                    Snippet(document: document, line: index + 2, language: language, kind: .statements, code: code))
            default:
                break
            }
            marker = nil
            index = close + 1
        }
        return snippets
    }

    /// Reads `<!-- snippet: file [path=P] -->`.
    static func kind(of marker: String, at location: String) throws -> Kind? {
        let words = marker.dropFirst("<!-- snippet:".count).replacingOccurrences(of: "-->", with: "")
            .split(separator: " ").map(String.init)
        guard words.first == "file", words.count <= 2 else {
            throw SnippetError(
                description:
                    "\(location): unknown snippet marker '\(marker)'; write `<!-- snippet: file -->` or `<!-- snippet: file path=Sources/X/Y.swift -->`"
            )
        }
        guard words.count == 2 else { return .file(path: nil) }
        guard words[1].hasPrefix("path="), words[1].count > 5 else {
            throw SnippetError(
                description: "\(location): '\(words[1])' in a snippet marker: write `path=Sources/X/Y.swift`")
        }
        return .file(path: String(words[1].dropFirst(5)))
    }

    /// The block's leading `import` lines, and the rest (each import replaced by an empty line, so
    /// that line numbers stay those of the document).
    func hoistingImports() -> (imports: [String], body: String) {
        var imports: [String] = []
        var lines = code.components(separatedBy: "\n")
        for index in lines.indices {
            let line = lines[index].trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("import ") {
                imports.append(line)
                lines[index] = ""
            } else if !line.isEmpty && !line.hasPrefix("//") {
                break
            }
        }
        return (imports, lines.joined(separator: "\n"))
    }
}

/// The package the documentation describes, assembled from its blocks.
struct DocumentationPackage {
    /// The README first, then the DocC articles.
    static func documents() throws -> [URL] {
        let articles = packageRoot.appendingPathComponent("Sources/ModelSync/ModelSync.docc")
        let names = try FileManager.default.contentsOfDirectory(atPath: articles.path).filter { $0.hasSuffix(".md") }
            .sorted()
        return [packageRoot.appendingPathComponent("README.md")] + names.map { articles.appendingPathComponent($0) }
    }

    /// The dependency line of the README's manifest, and the test target the README declares.
    static let dependencyByURL = #".package(url: "https://github.com/your-org/ModelSync", from: "0.1.0")"#
    static let testTarget = "AppTests"
    static let modelsTarget = "AppModels"

    /// What a block without a marker may use without declaring it: an app's values.
    static let preludeParameters = """
        store: SyncStore, engine: SyncEngine, thread: ChatThread, me: User, databaseURL: URL,
            tokens: SnippetTokens, navigation: SnippetNavigation, render: ([ChatThread]) -> Void
        """

    /// The app-side types of the prelude.
    static let prelude = """
        // The prelude of the documentation's blocks (DocumentationSnippetsTests).
        import AppModels
        import ModelSync

        /// Where an app keeps its access token.
        struct SnippetTokens: Sendable {
            func current() async throws -> String { "token" }
        }

        /// An app's navigation, which follows a thread whose ID changed.
        struct SnippetNavigation {
            func replace(_ old: ChatThread.ID, with new: ChatThread.ID) {}
        }

        """

    /// The consumer's own test: owned by this harness, so that it stays whatever the documents say.
    static let requiredTests = ["a thread and its messages: query, relationship, observation, then sync"]
    static let consumerTest = """
        // The consumer's test (DocumentationSnippetsTests): only ModelSync, the models module and the
        // reference server.
        import AppModels
        import Foundation
        import ModelSync
        import ModelSyncReferenceServer
        import Testing

        @Test("a thread and its messages: query, relationship, observation, then sync")
        func threadAndMessagesSync() async throws {
            let server = ReferenceServer(models: GeneratedModels.all)
            let baseURL = try await server.start()
            let store = try SyncStore(.inMemory, models: GeneratedModels.all)

            let me = try await store.users.save(User(name: "Ada", email: "ada@example.com"))
            let thread = try await store.chatThreads.save(ChatThread(createdAt: .now, tags: ["trip"], ownerId: me.id))
            #expect(thread.id.isTemporary)
            try await store.messages.save(Message(role: .user, body: "Plan the trip?", threadId: thread.id))
            try await store.messages.save(Message(role: .assistant, body: "Day 1: the castle.", threadId: thread.id))

            let asked = try await store.messages.query(Message.filter(Message.Columns.role == "user"))
            #expect(asked.map(\\.body) == ["Plan the trip?"])
            #expect(try await thread.messages(in: store).count == 2)
            var observed = store.chatThreads.observeAll().makeAsyncIterator()
            #expect(try await observed.next()?.map(\\.title) == ["New Chat"])

            let remote = RESTRemote(configuration: .init(baseURL: baseURL, timeout: 10), models: GeneratedModels.all)
            let report = try await SyncEngine(store: store, remote: remote).sync()
            #expect(report.push.sent == 4 && report.push.failed == 0)

            let synced = try #require(try await store.chatThreads.all().first)
            #expect(!synced.id.isTemporary)
            #expect(try await synced.messages(in: store).count == 2)
            #expect(try await thread.messages(in: store).count == 2, "the temporary ID still resolves")
            #expect(await server.records(of: Message.self).count == 2)
            await server.stop()
        }

        """

    var files: [String: String] = [:]
    var snippetFiles: [String: String] = [:]
    private var counts: [String: Int] = [:]

    var summary: String {
        counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    }

    init(snippets: [Snippet]) throws {
        var owners: [String: Snippet] = [:]
        var functions: [String: (imports: Set<String>, bodies: [String])] = [:]
        for snippet in snippets {
            let name = snippet.document.deletingPathExtension().lastPathComponent
            let location = "\(snippet.document.lastPathComponent):\(snippet.line)"
            switch snippet.kind {
            case .file(let path?):
                if let owner = owners[path], owner.code != snippet.code {
                    throw SnippetError(
                        description:
                            "\(location): the block for \(path) differs from the one at \(owner.document.lastPathComponent):\(owner.line); blocks naming the same path must be identical"
                    )
                }
                owners[path] = snippet
                files[path] = snippet.code + "\n"
                counts["files", default: 0] += 1
            case .file(nil):
                snippetFiles["\(name)_\(snippet.line).swift"] =
                    Self.located(snippet, snippet.code) + "\n#sourceLocation()\n"
                counts["test files", default: 0] += 1
            case .statements:
                let (imports, body) = snippet.hoistingImports()
                let function = """
                    func snippet_\(name.filter { $0.isLetter || $0.isNumber })_\(snippet.line)(
                        \(Self.preludeParameters)
                    ) async throws {
                        do {
                    \(Self.located(snippet, body))
                    #sourceLocation()
                        }
                    }
                    """
                functions[name, default: ([], [])].imports.formUnion(imports)
                functions[name, default: ([], [])].bodies.append(function)
                counts["function bodies", default: 0] += 1
            }
        }
        for (name, file) in functions {
            let imports = (file.imports.union(["import Foundation", "import ModelSync", "import AppModels"])).sorted()
            snippetFiles["\(name)_Snippets.swift"] =
                "// The blocks of \(name).md without a marker, each the body of a function.\n"
                + imports.joined(separator: "\n") + "\n\n" + file.bodies.joined(separator: "\n\n") + "\n"
        }
        guard let manifest = files["Package.swift"], manifest.contains(Self.dependencyByURL) else {
            throw SnippetError(
                description:
                    "README.md: no `<!-- snippet: file path=Package.swift -->` block depending on ModelSync with \(Self.dependencyByURL)"
            )
        }
        for needed in ["name: \"\(Self.modelsTarget)\"", "name: \"\(Self.testTarget)\""]
        where !manifest.contains(needed) {
            throw SnippetError(description: "README.md: the manifest block no longer declares a target \(needed)")
        }
    }

    /// A `#sourceLocation` line, so that the compiler reports errors at the document's own lines.
    static func located(_ snippet: Snippet, _ code: String) -> String {
        "#sourceLocation(file: \"\(snippet.document.path)\", line: \(snippet.line))\n\(code)"
    }

    /// Writes the package (replacing its sources) and links `link` to this repository.
    func write(to package: URL, linking link: URL) throws {
        let manager = FileManager.default
        if (try? manager.destinationOfSymbolicLink(atPath: link.path)) != packageRoot.path {
            try? manager.removeItem(at: link)
            try manager.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
            try manager.createSymbolicLink(at: link, withDestinationURL: packageRoot)
        }
        var all = files
        all["Package.swift"] = files["Package.swift"]!.replacingOccurrences(
            of: Self.dependencyByURL, with: ".package(path: \"\(link.path)\")")
        let tests = "Tests/\(Self.testTarget)/"
        for (name, text) in snippetFiles { all[tests + name] = text }
        all[tests + "SnippetPrelude.swift"] = Self.prelude
        all[tests + "ConsumerTests.swift"] = Self.consumerTest
        // Files no block writes any more go; unchanged files keep their dates, so that a rebuild is
        // incremental.
        for folder in ["Sources", "Tests"] {
            let root = package.appendingPathComponent(folder)
            let existing = (manager.enumerator(atPath: root.path)?.allObjects as? [String]) ?? []
            for path in existing where all["\(folder)/\(path)"] == nil {
                var isFolder: ObjCBool = false
                if manager.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isFolder),
                    !isFolder.boolValue
                {
                    try manager.removeItem(at: root.appendingPathComponent(path))
                }
            }
        }
        for (path, text) in all {
            let url = package.appendingPathComponent(path)
            try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            if (try? String(contentsOf: url, encoding: .utf8)) != text {
                try text.write(to: url, atomically: true, encoding: .utf8)
            }
        }
    }
}
