import Foundation

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
