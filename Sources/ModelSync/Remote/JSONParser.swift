import Foundation

extension JSONValue {
    /// Why JSON text could not be parsed: what was wrong and at which byte (counted from 0).
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The offset, in bytes from the start of the text, where the problem was found.
        public var offset: Int
        /// What is wrong there.
        public var reason: String

        public init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }

        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    /// The deepest nesting of arrays and objects ``parse(_:)`` accepts.
    public static let maximumNestingDepth = 512
}

/// A JSON parser (RFC 8259) that keeps numbers exact: integers that fit `Int64` become
/// `.integer`, numbers whose shortest `Double` form is the same decimal number become `.number`,
/// every other number keeps its text in `.decimal`. Strings must be valid UTF-8 without unescaped
/// control characters, and `\u` escapes must pair their surrogates.
struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    static func parse(_ data: Data) throws(JSONValue.ParseError) -> JSONValue {
        let result: Result<JSONValue, JSONValue.ParseError> = data.withUnsafeBytes { raw in
            var parser = JSONParser(bytes: raw.bindMemory(to: UInt8.self))
            do throws(JSONValue.ParseError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private mutating func parseDocument() throws(JSONValue.ParseError) -> JSONValue {
        // A UTF-8 byte order mark may precede the text (RFC 8259 section 8.1).
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { index = 3 }
        skipWhitespace()
        guard index < bytes.count else { throw error("the text holds no JSON value") }
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw error("unexpected \(describeByte(at: index)) after the JSON value") }
        return value
    }

    // MARK: Values

    private mutating func parseValue() throws(JSONValue.ParseError) -> JSONValue {
        guard index < bytes.count else { throw error("the text ends where a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        default:
            throw error("\(describeByte(at: index)) cannot start a JSON value")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONValue.ParseError) {
        let start = index
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count,
            (0..<count).allSatisfy({ bytes[index + $0] == literal.utf8Start[$0] })
        else { throw error("expected '\(literal)'", at: start) }
        index += count
    }

    private mutating func enter() throws(JSONValue.ParseError) {
        depth += 1
        guard depth <= JSONValue.maximumNestingDepth else {
            throw error("arrays and objects are nested deeper than \(JSONValue.maximumNestingDepth) levels")
        }
    }

    private mutating func parseArray() throws(JSONValue.ParseError) -> JSONValue {
        try enter()
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw error("the text ends inside an array (expected ',' or ']')") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return .array(elements)
            default: throw error("expected ',' or ']' in an array, found \(describeByte(at: index))")
            }
        }
    }

    private mutating func parseObject() throws(JSONValue.ParseError) -> JSONValue {
        try enter()
        index += 1  // {
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error(
                    index < bytes.count
                        ? "expected a member name in quotes, found \(describeByte(at: index))"
                        : "the text ends inside an object (expected a member name)")
            }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after the member name \"\(key)\"")
            }
            index += 1
            skipWhitespace()
            // A repeated name keeps its last value, as most parsers do.
            members[key] = try parseValue()
            skipWhitespace()
            guard index < bytes.count else { throw error("the text ends inside an object (expected ',' or '}')") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return .object(members)
            default: throw error("expected ',' or '}' in an object, found \(describeByte(at: index))")
            }
        }
    }

    // MARK: Strings

    private mutating func parseString() throws(JSONValue.ParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes, so the bytes are the string.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let string = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("unescaped control character \(Self.unicodeName(UInt32(byte))) in a string") }
            if byte < 0x80 {
                index += 1
            } else {
                try skipUTF8Sequence()
            }
        }
        var utf8 = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &utf8)
            case 0..<0x20:
                throw error("unescaped control character \(Self.unicodeName(UInt32(byte))) in a string")
            case 0x20..<0x80:
                utf8.append(byte)
                index += 1
            default:
                let sequenceStart = index
                try skipUTF8Sequence()
                utf8.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[sequenceStart..<index]))
            }
        }
        throw error("the text ends inside a string that starts at byte \(start - 1)")
    }

    private mutating func parseEscape(into utf8: inout [UInt8]) throws(JSONValue.ParseError) {
        let escapeStart = index
        index += 1  // backslash
        guard index < bytes.count else { throw error("the text ends inside an escape sequence", at: escapeStart) }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try parseHex4(escapeStart: escapeStart))
            if (0xDC00...0xDFFF).contains(scalar) {
                throw error(
                    "lone surrogate \\u\(Self.hex(scalar)): a low surrogate must follow a high one "
                        + "(the text is not valid Unicode)", at: escapeStart)
            }
            if (0xD800...0xDBFF).contains(scalar) {
                guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"),
                    bytes[index + 1] == UInt8(ascii: "u")
                else {
                    throw error(
                        "lone surrogate \\u\(Self.hex(scalar)): a high surrogate must be followed by a low one "
                            + "(\\uDC00 to \\uDFFF; the text is not valid Unicode)", at: escapeStart)
                }
                let lowStart = index
                index += 2
                let low = UInt32(try parseHex4(escapeStart: lowStart))
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error(
                        "lone surrogate \\u\(Self.hex(scalar)): it is followed by \\u\(Self.hex(low)), "
                            + "not by a low surrogate (the text is not valid Unicode)", at: escapeStart)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            utf8.append(contentsOf: Unicode.Scalar(scalar)!.utf8)
        default:
            index -= 1
            throw error("invalid escape '\\\(describeCharacter(at: index))' in a string", at: escapeStart)
        }
    }

    private mutating func parseHex4(escapeStart: Int) throws(JSONValue.ParseError) -> UInt16 {
        guard bytes.count - index >= 4 else { throw error("the text ends inside a \\u escape", at: escapeStart) }
        var value: UInt16 = 0
        for offset in 0..<4 {
            let byte = bytes[index + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("a \\u escape needs four hexadecimal digits", at: escapeStart)
            }
            value = value << 4 | UInt16(digit)
        }
        index += 4
        return value
    }

    /// Steps over one multi-byte UTF-8 sequence starting at `index`, checking it is well formed
    /// (shortest form, no surrogates, at most U+10FFFF).
    private mutating func skipUTF8Sequence() throws(JSONValue.ParseError) {
        let lead = bytes[index]
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upperBound = 0x9F
        case 0xF0:
            length = 4
            lowerBound = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upperBound = 0x8F
        default: throw error("byte 0x\(Self.hex(UInt32(lead), width: 2)) is not valid UTF-8")
        }
        guard bytes.count - index >= length else { throw error("the text ends inside a UTF-8 sequence") }
        for offset in 1..<length {
            let byte = bytes[index + offset]
            let range = offset == 1 ? lowerBound...upperBound : 0x80...0xBF
            guard range.contains(byte) else {
                throw error(
                    "byte 0x\(Self.hex(UInt32(byte), width: 2)) is not valid UTF-8 "
                        + "(in the sequence that starts with 0x\(Self.hex(UInt32(lead), width: 2)))", at: index + offset
                )
            }
        }
        index += length
    }

    // MARK: Numbers

    private mutating func parseNumber() throws(JSONValue.ParseError) -> JSONValue {
        let start = index
        guard let end = JSONNumberText.scan(bytes, from: start) else {
            throw error("malformed number: \(JSONNumberText.problem(bytes, from: start))")
        }
        index = end
        return JSONNumberText.value(UnsafeBufferPointer(rebasing: bytes[start..<end]))
    }

    // MARK: Helpers

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): index += 1
            default: return
            }
        }
    }

    private func error(_ reason: String, at offset: Int? = nil) -> JSONValue.ParseError {
        JSONValue.ParseError(offset: offset ?? index, reason: reason)
    }

    private func describeByte(at offset: Int) -> String {
        guard offset < bytes.count else { return "the end of the text" }
        let byte = bytes[offset]
        if (0x21..<0x7F).contains(byte) { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(Self.hex(UInt32(byte), width: 2))"
    }

    private func describeCharacter(at offset: Int) -> String {
        let byte = bytes[offset]
        return (0x21..<0x7F).contains(byte)
            ? String(Character(Unicode.Scalar(byte))) : "\\x\(Self.hex(UInt32(byte), width: 2))"
    }

    static func hex(_ value: UInt32, width: Int = 4) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    static func unicodeName(_ scalar: UInt32) -> String { "U+\(hex(scalar))" }
}

/// JSON number text: scanning, classification into ``JSONValue`` cases, and exact comparison.
enum JSONNumberText {
    /// The end of the number that starts at `start`, or `nil` when the text there is not a JSON
    /// number (`-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`).
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        func isDigit(_ offset: Int) -> Bool {
            offset < bytes.count && bytes[offset] >= UInt8(ascii: "0") && bytes[offset] <= UInt8(ascii: "9")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { return nil }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if isDigit(index) { return nil }
        } else {
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { return nil }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard isDigit(index) else { return nil }
            while isDigit(index) { index += 1 }
        }
        return index
    }

    /// Why the text at `start` is not a JSON number.
    static func problem(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> String {
        var end = start
        while end < bytes.count, end - start < 40,
            !" \t\r\n,]}".utf8.contains(bytes[end])
        {
            end += 1
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        if text.hasPrefix("-") && !text.dropFirst().hasPrefix("0") && !(text.dropFirst().first?.isNumber ?? false) {
            return "'\(text)': a digit must follow '-'"
        }
        let unsigned = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        if unsigned.count > 1, unsigned.hasPrefix("0"), unsigned.dropFirst().first?.isNumber == true {
            return "'\(text)': leading zeros are not allowed"
        }
        if let dot = unsigned.firstIndex(of: "."),
            unsigned[unsigned.index(after: dot)...].first?.isNumber != true
        {
            return "'\(text)': a digit must follow the decimal point"
        }
        return "'\(text)': the exponent needs digits"
    }

    /// Whether `text` is exactly one JSON number.
    static func isNumber(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            !bytes.isEmpty && scan(bytes, from: 0) == bytes.count
        }
    }

    /// The value of a well-formed number: `.integer` for an integer that fits `Int64` (but `-0`,
    /// which is `-0.0`), `.number` when the nearest Double's shortest form is the same decimal
    /// number, `.decimal` with the text otherwise.
    static func value(_ bytes: UnsafeBufferPointer<UInt8>) -> JSONValue {
        let negative = bytes[0] == UInt8(ascii: "-")
        var isInteger = true
        for byte in bytes where byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            isInteger = false
            break
        }
        let text = String(decoding: bytes, as: UTF8.self)
        if isInteger {
            if let integer = Int64(text) {
                return integer == 0 && negative ? .number(-0.0) : .integer(integer)
            }
            return .decimal(text)
        }
        guard let double = Double(text), double.isFinite else { return .decimal(text) }
        let parts = DecimalParts(bytes)
        // Up to 15 significant digits in the normal range: the Double gives the same digits back.
        if parts.digits.count <= 15, double.magnitude >= Double.leastNormalMagnitude {
            return .number(double)
        }
        if double == 0 {
            return parts.digits.isEmpty ? .number(double) : .decimal(text)
        }
        var shortest = "\(double)"
        let same = shortest.withUTF8 { DecimalParts($0) } == parts
        return same ? .number(double) : .decimal(text)
    }
}

/// A decimal number as sign, significant digits (no leading or trailing zeros) and exponent:
/// equal parts mean equal values, whatever the notation (`1.50`, `15e-1`, `0.15E1`).
struct DecimalParts: Hashable {
    var negative: Bool
    /// ASCII digits, first and last not zero; empty for zero.
    var digits: [UInt8]
    /// The value is `digits × 10^exponent`; `Int.max` when the exponent is beyond any use.
    var exponent: Int

    /// Reads `-?digits(.digits)?([eE][+-]?digits)?` (JSON numbers and Swift's `Double` descriptions).
    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        var index = 0
        negative = bytes.first == UInt8(ascii: "-")
        if negative { index = 1 }
        var digits: [UInt8] = []
        var exponent = 0
        var seenPoint = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: ".") {
                seenPoint = true
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                if !(digits.isEmpty && byte == UInt8(ascii: "0")) { digits.append(byte) }
                if seenPoint { exponent -= 1 }
            } else {
                break
            }
            index += 1
        }
        if index < bytes.count {  // e or E
            index += 1
            var exponentNegative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                exponentNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            var written = 0
            var overflow = false
            while index < bytes.count {
                let (product, multiplyOverflow) = written.multipliedReportingOverflow(by: 10)
                let (sum, addOverflow) = product.addingReportingOverflow(Int(bytes[index] - UInt8(ascii: "0")))
                if multiplyOverflow || addOverflow || sum > 1 << 40 { overflow = true }
                written = sum
                index += 1
            }
            if overflow {
                exponent = Int.max
            } else {
                exponent += exponentNegative ? -written : written
            }
        }
        while let last = digits.last, last == UInt8(ascii: "0") {
            digits.removeLast()
            if exponent != Int.max { exponent += 1 }
        }
        if digits.isEmpty { exponent = 0 }
        self.digits = digits
        self.exponent = exponent
    }
}
