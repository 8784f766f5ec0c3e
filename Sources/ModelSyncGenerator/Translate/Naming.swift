/// Name derivations shared by the translate and render stages.
enum Naming {
    /// Words that must be escaped with backticks when used as identifiers.
    static let swiftKeywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
        "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
        "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
        "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw",
        "switch", "where", "while", "Any", "as", "await", "false", "is", "nil", "self", "Self", "super", "throws",
        "true", "try", "package", "consume", "borrowing", "consuming",
    ]

    /// `name` as a Swift identifier: backticked when it is a keyword.
    static func escaped(_ name: String) -> String {
        swiftKeywords.contains(name) ? "`\(name)`" : name
    }

    /// Whether `name` is a valid (ASCII) Swift identifier: a letter or `_`, then letters, digits, `_`.
    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name != "_" else { return false }
        func isLetter(_ scalar: Unicode.Scalar) -> Bool {
            (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || scalar == "_"
        }
        guard isLetter(first) else { return false }
        return name.unicodeScalars.allSatisfy { isLetter($0) || ($0 >= "0" && $0 <= "9") }
    }

    /// The words of a camel-case name: `ThreadArtifact` -> `["thread", "artifact"]`, `URLPath` ->
    /// `["url", "path"]`.
    static func words(_ name: String) -> [String] {
        let characters = Array(name)
        var words: [String] = []
        var current = ""
        for (index, character) in characters.enumerated() {
            if character == "_" {
                if !current.isEmpty { words.append(current) }
                current = ""
                continue
            }
            if character.isUppercase, !current.isEmpty {
                let previous = characters[index - 1]
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                if previous.isLowercase || previous.isNumber || (previous.isUppercase && next?.isLowercase == true) {
                    words.append(current)
                    current = ""
                }
            }
            current.append(character)
        }
        if !current.isEmpty { words.append(current) }
        return words.map { $0.lowercased() }
    }

    /// `ThreadArtifact` -> `thread_artifact`.
    static func snakeCase(_ name: String) -> String {
        words(name).joined(separator: "_")
    }

    /// `ThreadArtifact` -> `thread artifact` (for documentation comments).
    static func phrase(_ name: String) -> String {
        words(name).joined(separator: " ")
    }

    /// `ThreadArtifact` -> `threadArtifact`.
    static func lowerCamel(_ name: String) -> String {
        let parts = words(name)
        guard let first = parts.first else { return name }
        return first + parts.dropFirst().map(upperFirst).joined()
    }

    /// `role` -> `Role`.
    static func upperFirst(_ name: String) -> String {
        guard let first = name.first else { return name }
        return first.uppercased() + name.dropFirst()
    }

    /// English plural of a lower-case word or identifier: +es after s/x/z/ch/sh, consonant+y -> ies,
    /// otherwise +s.
    static func plural(_ word: String) -> String {
        let lower = word.lowercased()
        if lower.hasSuffix("s") || lower.hasSuffix("x") || lower.hasSuffix("z") || lower.hasSuffix("ch")
            || lower.hasSuffix("sh")
        {
            return word + "es"
        }
        if lower.hasSuffix("y"), lower.count >= 2 {
            let beforeY = lower[lower.index(lower.endIndex, offsetBy: -2)]
            if !"aeiou".contains(beforeY) { return String(word.dropLast()) + "ies" }
        }
        return word + "s"
    }

    /// A Swift string literal (with quotes) holding `value`.
    static func stringLiteral(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
