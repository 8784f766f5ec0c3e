import Foundation

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
