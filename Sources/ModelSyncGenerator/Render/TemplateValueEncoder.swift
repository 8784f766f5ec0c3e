import Mustache

/// Encodes a ``TemplateContext`` into what swift-mustache reads: ``TemplateValues`` objects for
/// structures, arrays for lists, and strings, Booleans and integers as themselves. An optional that is
/// `nil` leaves its key out (a section over it renders nothing).
enum TemplateValueEncoder {
    static func encode(_ value: some Encodable) throws -> Any {
        try TreeEncoder.tree(of: value, codingPath: [])
    }
}

/// The values of one context object. A class conforming to `MustacheParent` is looked up faster by
/// the template engine than a dictionary (whose conformance is conditional) or a struct (read by
/// reflection).
final class TemplateValues: MustacheParent {
    fileprivate(set) var values: [String: Any] = [:]

    func child(named name: String) -> Any? { values[name] }
}

/// An encoder whose output is one tree value: a ``TemplateValues``, an array, or a scalar.
private final class TreeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    private var object: TemplateValues?
    private var array: ArrayBox?
    fileprivate var scalar: Any?

    init(codingPath: [any CodingKey]) {
        self.codingPath = codingPath
    }

    /// Encodes `value` on its own encoder and returns its tree. Scalars skip the container dance.
    static func tree(of value: some Encodable, codingPath: [any CodingKey]) throws -> Any {
        switch value {
        case let string as String: return string
        case let flag as Bool: return flag
        case let number as Int: return number
        default:
            let encoder = TreeEncoder(codingPath: codingPath)
            try value.encode(to: encoder)
            return encoder.result
        }
    }

    var result: Any {
        if let object { return object }
        if let array { return array.elements }
        return scalar ?? TemplateValues()
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let object = self.object ?? TemplateValues()
        self.object = object
        return KeyedEncodingContainer(KeyedContainer<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let array = self.array ?? ArrayBox()
        self.array = array
        return UnkeyedContainer(array: array, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleContainer(encoder: self)
    }
}

private final class ArrayBox {
    var elements: [Any] = []
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let object: TemplateValues
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws {}

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        object.values[key.stringValue] = try TreeEncoder.tree(of: value, codingPath: codingPath + [key])
    }

    mutating func encode(_ value: Bool, forKey key: Key) throws { object.values[key.stringValue] = value }
    mutating func encode(_ value: String, forKey key: Key) throws { object.values[key.stringValue] = value }
    mutating func encode(_ value: Int, forKey key: Key) throws { object.values[key.stringValue] = value }
    mutating func encode(_ value: Double, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try encode(Box(value), forKey: key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try encode(Box(value), forKey: key) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = TemplateValues()
        object.values[key.stringValue] = nested
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(object: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        // An array is a value type: the finished list is stored when the container is done with, which
        // a `Codable` synthesis never needs (it encodes arrays through `encode(_:forKey:)`).
        let nested = ArrayBox()
        let values = object
        let name = key.stringValue
        values.values[name] = [Any]()
        return UnkeyedContainer(array: nested, codingPath: codingPath + [key]) { values.values[name] = $0 }
    }

    mutating func superEncoder() -> any Encoder { TreeEncoder(codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { TreeEncoder(codingPath: codingPath + [key]) }
}

/// Numbers other than `Int` are written as their text (templates only place text).
private struct Box<Number: LosslessStringConvertible>: Encodable {
    let number: Number
    init(_ number: Number) { self.number = number }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(number))
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let array: ArrayBox
    let codingPath: [any CodingKey]
    var onChange: (([Any]) -> Void)?
    var count: Int { array.elements.count }

    init(array: ArrayBox, codingPath: [any CodingKey], onChange: (([Any]) -> Void)? = nil) {
        self.array = array
        self.codingPath = codingPath
        self.onChange = onChange
    }

    private func appended(_ element: Any) {
        array.elements.append(element)
        onChange?(array.elements)
    }

    mutating func encodeNil() throws {}

    mutating func encode<T: Encodable>(_ value: T) throws {
        appended(try TreeEncoder.tree(of: value, codingPath: codingPath + [IndexKey(intValue: count)]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
        -> KeyedEncodingContainer<NestedKey>
    {
        let nested = TemplateValues()
        appended(nested)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(object: nested, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = ArrayBox()
        let index = count
        appended([Any]())
        let parent = array
        let report = onChange
        return UnkeyedContainer(array: nested, codingPath: codingPath) { elements in
            parent.elements[index] = elements
            report?(parent.elements)
        }
    }

    mutating func superEncoder() -> any Encoder { TreeEncoder(codingPath: codingPath) }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws {}

    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.scalar = try TreeEncoder.tree(of: value, codingPath: codingPath)
    }
}

private struct IndexKey: CodingKey {
    var stringValue: String { String(intValue ?? 0) }
    var intValue: Int?
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}
