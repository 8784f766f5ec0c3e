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

    /// A random UUID (version 4) in lowercase, from the system's random generator: what
    /// `UUID().uuidString.lowercased()` gives, without opening `/dev/urandom` for each one as
    /// Foundation's `UUID()` does on Linux (an idempotency key is made for every queued change).
    ///
    /// The bits come from ``RandomPool``, which asks the system for 4 KiB at a time.
    static func randomUUID() -> String {
        var (high, low) = randomPool.withLock { pool in (pool.next(), pool.next()) }
        high = (high & ~0xF000) | 0x4000  // version 4
        low = (low & ~(0xC0 << 56)) | (0x80 << 56)  // variant 10
        return String(unsafeUninitializedCapacity: 36) { output in
            var position = 0
            func append(_ word: UInt64, bytes: Range<Int>) {
                for index in bytes {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        output[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    let byte = UInt8(truncatingIfNeeded: word >> (56 - 8 * UInt64(index % 8)))
                    output[position] = hexDigit(byte >> 4)
                    output[position + 1] = hexDigit(byte & 0x0F)
                    position += 2
                }
            }
            append(high, bytes: 0..<8)
            append(low, bytes: 8..<16)
            return position
        }
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

    private static let randomPool = Locked(RandomPool())

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

/// Random 64-bit words from the system's cryptographic generator (`getentropy` on Linux,
/// `arc4random_buf` on Apple platforms), drawn 4 KiB at a time: a system call per 16 random UUIDs on
/// Linux instead of two per UUID. Use it under a lock.
struct RandomPool {
    private var words = [UInt64](repeating: 0, count: 512)
    private var index = 512

    mutating func next() -> UInt64 {
        if index == words.count {
            refill()
            index = 0
        }
        defer { index += 1 }
        return words[index]
    }

    private mutating func refill() {
        words.withUnsafeMutableBytes { buffer in
            #if canImport(Darwin)
                arc4random_buf(buffer.baseAddress!, buffer.count)
            #else
                // `getentropy` gives at most 256 bytes a call (glibc's `getrandom` is not visible from
                // Swift): 16 keys per system call.
                for offset in stride(from: 0, to: buffer.count, by: 256) {
                    if getentropy(buffer.baseAddress! + offset, min(256, buffer.count - offset)) != 0 {
                        var generator = SystemRandomNumberGenerator()
                        for index in offset..<buffer.count { buffer[index] = generator.next() }
                        return
                    }
                }
            #endif
        }
    }
}
