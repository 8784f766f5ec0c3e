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

/// A lock-protected value, usable from any thread.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Makes time-ordered IDs that stay strictly increasing within the process, even when many are
/// made in the same millisecond.
final class IDClock: Sendable {
    static let shared = IDClock()

    private struct UUIDState {
        var milliseconds: UInt64 = 0
        var counter: UInt16 = 0
    }

    private struct ULIDState {
        var milliseconds: UInt64 = 0
        var randomHigh: UInt16 = 0
        var randomLow: UInt64 = 0
    }

    private let uuidState = Locked(UUIDState())
    private let ulidState = Locked(ULIDState())

    private static func nowMilliseconds() -> UInt64 {
        UInt64(Date().timeIntervalSince1970 * 1000)
    }

    /// A UUID version 7: 48 bits of Unix milliseconds, a 12-bit counter (RFC 9562 method 1,
    /// seeded randomly each millisecond), then 62 random bits.
    func uuidv7() -> String {
        var generator = SystemRandomNumberGenerator()
        let (milliseconds, counter) = uuidState.withLock { state -> (UInt64, UInt16) in
            let now = Self.nowMilliseconds()
            if now > state.milliseconds {
                state.milliseconds = now
                state.counter = UInt16.random(in: 0..<0x400, using: &generator)
            } else if state.counter >= 0xFFF {
                state.milliseconds += 1  // counter exhausted: borrow the next millisecond
                state.counter = 0
            } else {
                state.counter += 1
            }
            return (state.milliseconds, state.counter)
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 {
            bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * UInt64(index)))
        }
        bytes[6] = 0x70 | UInt8(truncatingIfNeeded: counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        let random = generator.next() as UInt64
        for index in 8..<16 {
            bytes[index] = UInt8(truncatingIfNeeded: random >> (8 * UInt64(15 - index)))
        }
        bytes[8] = 0x80 | (bytes[8] & 0x3F)
        return Self.hyphenatedHex(bytes)
    }

    /// A random UUID (version 4) in lowercase, from the system's random generator (`getrandom`):
    /// what `UUID().uuidString.lowercased()` gives, without opening `/dev/urandom` for each one as
    /// Foundation's `UUID()` does on Linux (an idempotency key is made for every queued change).
    static func randomUUID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(index)))
            bytes[index + 8] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(index)))
        }
        bytes[6] = 0x40 | (bytes[6] & 0x0F)
        bytes[8] = 0x80 | (bytes[8] & 0x3F)
        return hyphenatedHex(bytes)
    }

    /// A ULID: 48 bits of Unix milliseconds and 80 random bits; within one millisecond the random
    /// part is incremented, as the ULID spec's monotonic mode prescribes.
    func ulid() -> String {
        var generator = SystemRandomNumberGenerator()
        let state = ulidState.withLock { state -> ULIDState in
            let now = Self.nowMilliseconds()
            if now > state.milliseconds {
                state.milliseconds = now
                state.randomHigh = UInt16.random(in: 0...UInt16.max, using: &generator)
                state.randomLow = generator.next() >> 1  // keep headroom for increments
            } else {
                state.randomLow &+= 1
                if state.randomLow == 0 {
                    state.randomHigh &+= 1
                    if state.randomHigh == 0 { state.milliseconds += 1 }
                }
            }
            return state
        }
        // 128 bits: time (48) | randomHigh (16) | randomLow (64), written as 26 base-32 digits.
        let high = (state.milliseconds << 16) | UInt64(state.randomHigh)
        let low = state.randomLow
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
        var characters = [UInt8](repeating: 0, count: 26)
        for index in 0..<26 {
            let shift = 5 * (25 - index)  // the 128 bits are read as 26 digits of 5 bits, top first
            let value: UInt64
            if shift >= 64 {
                value = high >> UInt64(shift - 64)
            } else if shift + 5 <= 64 {
                value = low >> UInt64(shift)
            } else {
                value = (low >> UInt64(shift)) | (high << UInt64(64 - shift))
            }
            characters[index] = alphabet[Int(value & 0x1F)]
        }
        return String(decoding: characters, as: UTF8.self)
    }

    private static func hyphenatedHex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var output = [UInt8]()
        output.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { output.append(UInt8(ascii: "-")) }
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// CUID2 (github.com/paralleldrive/cuid2): a random letter, then the base-36 SHA3-512 hash of the
/// time, fresh entropy, a session counter and a host fingerprint.
final class CUID2: Sendable {
    static let shared = CUID2()
    static let length = 24

    private let counter: Locked<UInt64>
    private let fingerprint: String

    init() {
        var generator = SystemRandomNumberGenerator()
        counter = Locked(UInt64.random(in: 0..<476_782_367, using: &generator))
        let host = ProcessInfo.processInfo.hostName
        let seed = "\(ProcessInfo.processInfo.processIdentifier)\(host)\(CUID2.entropy(length: 32))"
        fingerprint = String(CUID2.hashBase36(seed).prefix(32))
    }

    func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let firstLetter = letters[Int.random(in: 0..<26, using: &generator)]
        let time = String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36)
        let count = counter.withLock { value -> UInt64 in
            value &+= 1
            return value
        }
        let input = time + CUID2.entropy(length: CUID2.length) + String(count, radix: 36) + fingerprint
        let hash = CUID2.hashBase36(input)
        return String(firstLetter) + String(hash.dropFirst().prefix(CUID2.length - 1))
    }

    private static func entropy(length: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")
        return String((0..<length).map { _ in alphabet[Int.random(in: 0..<36, using: &generator)] })
    }

    /// SHA3-512 of `input`, as a base-36 number without its first digit (as CUID2 does).
    static func hashBase36(_ input: String) -> String {
        let digest = SHA3_512.hash(Array(input.utf8))
        // Big-endian 512-bit number as 32-bit limbs, repeatedly divided by 36.
        var limbs = stride(from: 0, to: digest.count, by: 4).map { offset in
            digest[offset..<offset + 4].reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
        }
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        var digits = [UInt8]()
        while limbs.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for index in limbs.indices {
                let value = (remainder << 32) | UInt64(limbs[index])
                limbs[index] = UInt32(value / 36)
                remainder = value % 36
            }
            digits.append(alphabet[Int(remainder)])
        }
        return String(decoding: digits.reversed().dropFirst(), as: UTF8.self)
    }
}

/// SHA3-512 (FIPS 202), used by CUID2.
enum SHA3_512 {
    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]

    /// Rotation offsets, indexed by x + 5 * y.
    private static let rotations: [UInt64] = [
        0, 1, 62, 28, 27,
        36, 44, 6, 55, 20,
        3, 10, 43, 25, 39,
        41, 45, 15, 21, 8,
        18, 2, 61, 56, 14,
    ]

    private static let rate = 72  // bytes: (1600 - 2 * 512) / 8

    static func hash(_ message: [UInt8]) -> [UInt8] {
        var padded = message
        padded.append(0x06)
        while padded.count % rate != 0 { padded.append(0) }
        padded[padded.count - 1] |= 0x80

        var state = [UInt64](repeating: 0, count: 25)
        for blockStart in stride(from: 0, to: padded.count, by: rate) {
            for lane in 0..<(rate / 8) {
                var value: UInt64 = 0
                for byte in 0..<8 {
                    value |= UInt64(padded[blockStart + lane * 8 + byte]) << (8 * UInt64(byte))
                }
                state[lane] ^= value
            }
            permute(&state)
        }
        var output = [UInt8]()
        output.reserveCapacity(64)
        for lane in 0..<8 {
            for byte in 0..<8 {
                output.append(UInt8(truncatingIfNeeded: state[lane] >> (8 * UInt64(byte))))
            }
        }
        return output
    }

    private static func rotate(_ value: UInt64, _ count: UInt64) -> UInt64 {
        count == 0 ? value : (value << count) | (value >> (64 - count))
    }

    private static func permute(_ state: inout [UInt64]) {
        var columns = [UInt64](repeating: 0, count: 5)
        var rotated = [UInt64](repeating: 0, count: 25)
        for round in 0..<24 {
            for x in 0..<5 {
                columns[x] = state[x] ^ state[x + 5] ^ state[x + 10] ^ state[x + 15] ^ state[x + 20]
            }
            for x in 0..<5 {
                let mix = columns[(x + 4) % 5] ^ rotate(columns[(x + 1) % 5], 1)
                for y in 0..<5 { state[x + 5 * y] ^= mix }
            }
            for x in 0..<5 {
                for y in 0..<5 {
                    rotated[y + 5 * ((2 * x + 3 * y) % 5)] = rotate(state[x + 5 * y], rotations[x + 5 * y])
                }
            }
            for x in 0..<5 {
                for y in 0..<5 {
                    state[x + 5 * y] =
                        rotated[x + 5 * y] ^ (~rotated[(x + 1) % 5 + 5 * y] & rotated[(x + 2) % 5 + 5 * y])
                }
            }
            state[0] ^= roundConstants[round]
        }
    }
}
