/// SHA3-512 (FIPS 202), used by CUID2.
///
/// Written here rather than taken from swift-crypto (`Crypto.SHA3_512`) for two reasons, checked
/// against swift-crypto 4.5.2: on Apple platforms swift-crypto re-exports CryptoKit, whose `SHA3_512`
/// needs iOS 26 and macOS 26 while ModelSync supports iOS 17 and macOS 14; and every app would build
/// swift-crypto (about a minute on two cores) for one hash that CUID2 uses to mix its inputs, not to
/// protect a secret. `IDFormatTests` checks it against the FIPS 202 test vectors, including inputs
/// longer than one block.
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
