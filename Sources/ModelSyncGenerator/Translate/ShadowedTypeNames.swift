/// Common type names of the Swift standard library and of Foundation that a model may take, but
/// with a cost: the model shadows them. The generator warns about these names (a warning does not
/// stop generation). The scalar field types (`String`, `Date`, `URL`…) and the types generated code
/// relies on are not listed: a model may not take them at all (see `GraphBuilder.checkModelName`).
///
/// - A model named like a Foundation type (`Thread`) makes the name ambiguous in a file that imports
///   both Foundation and the models module: such code writes `Models.Thread`.
/// - A model named like a standard library type (`Task`) silently replaces it in every file that
///   imports the models module: such code writes `Swift.Task` for the standard one.
///
/// The list is documented in Docs/Generator.md; keep both in sync.
enum ShadowedTypeNames {
    /// The module that declares each listed name.
    static let moduleByName: [String: String] = {
        var modules: [String: String] = [:]
        for name in swift { modules[name] = "Swift" }
        for name in foundation { modules[name] = "Foundation" }
        return modules
    }()

    /// Standard library names (the `Swift` module, Concurrency included).
    static let swift = [
        "Task", "Result", "Error", "Set", "Dictionary", "Character", "Substring", "Range", "Sequence", "Collection",
        "Never", "Void", "Float", "UInt", "Duration", "Clock", "Mirror", "Unicode", "Equatable", "Comparable",
        "Encodable", "Decodable", "Encoder", "Decoder", "Actor", "AsyncStream",
    ]

    /// Foundation names.
    static let foundation = [
        "Thread", "Timer", "Notification", "NotificationCenter", "Operation", "OperationQueue", "Process",
        "ProcessInfo", "Locale", "Calendar", "TimeZone", "Bundle", "Measurement", "Unit", "Host", "Port", "Stream",
        "Progress", "Predicate", "Expression", "Scanner", "Formatter", "AttributedString", "CharacterSet", "IndexSet",
        "IndexPath", "DateComponents", "DateInterval", "URLRequest", "URLSession", "URLComponents", "JSONEncoder",
        "JSONDecoder", "FileManager", "FileHandle", "Pipe", "UserDefaults", "RunLoop",
    ]

    /// The warning for a model named `name`, or `nil` when the name shadows nothing listed.
    /// `moduleName` is the models module (the target), when known.
    static func warning(forModel name: String, moduleName: String?) -> String? {
        guard let module = moduleByName[name] else { return nil }
        let models = moduleName ?? "<Module>"
        if module == "Foundation" {
            return "model '\(name)' shadows Foundation.\(name); in code that imports Foundation, write "
                + "\(models).\(name) (or rename the model)"
        }
        return "model '\(name)' shadows Swift.\(name); in code that imports \(models), '\(name)' means the model: "
            + "write Swift.\(name) for the standard type (or rename the model)"
    }
}
