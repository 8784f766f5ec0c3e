import Foundation

/// How client-side IDs (and the random part of temporary IDs) are made.
///
/// Chosen per model with `idFormat:` in the spec. Every format is safe to generate offline on any
/// number of devices at once.
public enum IDFormat: String, Sendable, Hashable, CaseIterable, Codable {
    /// A random UUID (version 4), lowercased: `0f8fad5b-d9cb-469f-a165-70867728950e`.
    case uuid4
    /// A time-ordered UUID (version 7, RFC 9562), lowercased; IDs made later sort later.
    case uuidv7
    /// A ULID: 26 Crockford base-32 characters, time-ordered: `01HGW2N7EHJVKZ5Q3D0X8M4T6B`.
    case ulid
    /// A CUID2: 24 lowercase base-36 characters starting with a letter, not guessable.
    case cuid2

    /// Makes a new ID string in this format.
    public func generate() -> String {
        switch self {
        case .uuid4: return UUID().uuidString.lowercased()
        case .uuidv7: return IDClock.shared.uuidv7()
        case .ulid: return IDClock.shared.ulid()
        case .cuid2: return CUID2.shared.make()
        }
    }
}
