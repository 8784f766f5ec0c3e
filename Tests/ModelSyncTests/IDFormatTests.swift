import ChatModels
import Foundation
import Testing

@testable import ModelSync

@Suite("ID formats and temporary IDs")
struct IDFormatTests {
    @Test("uuid4 IDs are lowercase version-4 UUIDs and unique")
    func uuid4() {
        let ids = (0..<1000).map { _ in IDFormat.uuid4.generate() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(20) {
            #expect(UUID(uuidString: id) != nil)
            #expect(id == id.lowercased())
            #expect(Array(id)[14] == "4")
        }
    }

    @Test("idempotency keys are lowercase version-4 UUIDs, unique across many refills of the random pool")
    func idempotencyKeys() {
        // 20,000 keys draw 40,000 words: 78 refills of the 512-word pool.
        let keys = (0..<20_000).map { _ in IDClock.randomUUID() }
        #expect(Set(keys).count == keys.count)
        for key in keys {
            let characters = Array(key)
            guard characters.count == 36, let uuid = UUID(uuidString: key) else {
                Issue.record("not a UUID: \(key)")
                return
            }
            #expect(key == key.lowercased() && uuid.uuidString.lowercased() == key)
            #expect(characters[14] == "4", "version 4: \(key)")
            #expect("89ab".contains(characters[19]), "variant 10: \(key)")
        }
    }

    @Test("uuidv7 IDs carry version 7, the RFC 9562 variant and the current time, and sort in creation order")
    func uuidv7() {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let ids = (0..<10_000).map { _ in IDFormat.uuidv7.generate() }
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        let first = Array(ids[0])
        #expect(UUID(uuidString: ids[0]) != nil)
        #expect(first[14] == "7")
        #expect("89ab".contains(first[19]))
        let hex = ids[0].replacingOccurrences(of: "-", with: "")
        let milliseconds = UInt64(hex.prefix(12), radix: 16)!
        #expect(milliseconds >= before && milliseconds <= after + 1)
    }

    @Test("ULIDs are 26 Crockford base-32 characters, unique and monotonic within a millisecond")
    func ulid() {
        let ids = (0..<10_000).map { _ in IDFormat.ulid.generate() }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        for id in ids.prefix(50) {
            #expect(id.count == 26)
            #expect(id.allSatisfy(alphabet.contains))
        }
        // The first 10 characters encode the Unix time in milliseconds.
        let timePart = ids[0].prefix(10).reduce(UInt64(0)) { value, character in
            value * 32 + UInt64(Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ").firstIndex(of: character)!)
        }
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        #expect(timePart <= now && now - timePart < 60_000)
    }

    @Test("CUID2 IDs are 24 lowercase base-36 characters starting with a letter")
    func cuid2() {
        let ids = (0..<2000).map { _ in IDFormat.cuid2.generate() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.count == 24)
            #expect(id.first!.isLetter)
            #expect(id.allSatisfy { "0123456789abcdefghijklmnopqrstuvwxyz".contains($0) })
        }
    }

    @Test("SHA3-512 matches the FIPS 202 test vectors")
    func sha3() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(
            hex(SHA3_512.hash([]))
                == "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a6"
                + "15b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26")
        #expect(
            hex(SHA3_512.hash(Array("abc".utf8)))
                == "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
                + "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0")
        // 200 bytes: more than two 72-byte blocks.
        #expect(
            hex(SHA3_512.hash([UInt8](repeating: 0xA3, count: 200)))
                == "e76dfad22084a8b1467fcf2ffa58361bec7628edf5f3fdc0e4805dc48caeeca8"
                + "1b7c13c30adf52a3659584739a2df46be589c51ca1a4a8416df6545a1ce8ba00")
    }

    @Test("client IDs use the model's format and prefix; server-ID models start with a temporary ID")
    func modelIDs() {
        let user = User(name: "Ada", email: "ada@example.com")
        #expect(user.id.rawValue.hasPrefix("usr_"))
        #expect(!user.id.isTemporary)
        #expect(UUID(uuidString: String(user.id.rawValue.dropFirst(4))) != nil)

        let draft = Draft.newID()
        #expect(draft.rawValue.count == 26)
        #expect(!draft.isTemporary)

        let message = Message(role: .user, body: "hi", threadId: "42")
        #expect(message.id.isTemporary)
        #expect(message.id.rawValue.hasPrefix(TemporaryID.prefix))
        #expect(!Message.ID("42").isTemporary)
    }
}
