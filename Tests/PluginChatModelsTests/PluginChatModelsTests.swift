import Foundation
import ModelSync
import PluginChatModels
import Testing

@Suite struct PluginChatModelsTests {
    @Test func registryListsParentsBeforeChildrenAcrossFiles() {
        let names = GeneratedModels.all.map { $0.schema.name }
        #expect(names == ["Member", "Tag", "Room", "Post", "RoomTag", "Pin", "Sample"])
    }

    @Test func generatedRepositoriesSaveFindAndResolveRelationships() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let member = try await store.members.save(Member(displayName: "Ada", handle: "ada"))
        #expect(member.id.rawValue.hasPrefix("mem_"))
        #expect(member.level == .basic)
        let room = try await store.rooms.save(Room(creatorId: member.id))
        #expect(room.id.isTemporary)
        #expect(room.title == "Untitled")
        #expect(room.archived == false)
        let post = try await store.posts.save(Post(body: "hi", default: "d", roomId: room.id, authorId: member.id))
        let tag = try await store.tags.save(Tag(label: "news"))
        _ = try await store.roomTags.save(RoomTag(roomId: room.id, tagId: tag.id))

        #expect(try await store.members.find(member.id)?.handle == "ada")
        #expect(try await post.room(in: store)?.id == room.id)
        #expect(try await post.author(in: store)?.displayName == "Ada")
        #expect(try await room.creator(in: store)?.id == member.id)
        #expect(try await room.posts(in: store).map(\.body) == ["hi"])
        #expect(try await room.tags(in: store).map(\.label) == ["news"])
        #expect(try await tag.rooms(in: store).map(\.id) == [room.id])
        #expect(Post.schema.fields.map(\.name) == ["body", "default", "class", "roomId", "authorId"])
        #expect(post.class == .default)
        #expect(Room.schema.remote.path == "/rooms")
        #expect(Room.schema.remote.idType == .int)
        #expect(Room.schema.remote.fieldNaming == .snakeCase)
        #expect(Member.schema.remote.fieldNaming == .camelCase)
    }

    @Test func replacingATemporaryIDRewritesEveryReference() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let member = try await store.members.save(Member(displayName: "Bo", handle: "bo"))
        let room = try await store.rooms.save(Room(title: "Trip", creatorId: member.id))
        let post = try await store.posts.save(Post(body: "plan", roomId: room.id))
        let tag = try await store.tags.save(Tag(label: "travel"))
        _ = try await store.roomTags.save(RoomTag(roomId: room.id, tagId: tag.id))

        let serverID: Room.ID = "42"
        #expect(try await store.rooms.replaceTemporaryID(room.id, with: serverID))
        #expect(try await store.rooms.find(serverID)?.title == "Trip")
        #expect(try await store.rooms.find(room.id)?.id == serverID)
        #expect(try await store.posts.find(post.id)?.roomId == serverID)
        #expect(try await store.roomTags.all().map(\.roomId) == [serverID])
        #expect(try await tag.rooms(in: store).map(\.id) == [serverID])
    }

    @Test func anAssociationNamedLikeARequestMethodLeavesTheMethodUsable() async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        let member = try await store.members.save(Member(displayName: "Cy", handle: "cy"))
        let room = try await store.rooms.save(Room(creatorId: member.id))
        let post = try await store.posts.save(Post(body: "first", roomId: room.id))
        let pins = try await store.write { tx in
            [try tx.save(Pin(orderId: post.id)), try tx.save(Pin(orderId: post.id))]
        }
        // `Pin.order` is the relationship's association; `Pin.order(_:)` is still GRDB's ordering.
        let ordered = try await store.read { db in try Pin.order(Column("id").desc).fetchAll(db) }
        #expect(ordered.map(\.id) == pins.map(\.id).sorted { $0.rawValue > $1.rawValue })
        let joined = try await store.read { db in try Pin.joining(required: Pin.order).fetchCount(db) }
        #expect(joined == 2)
        #expect(try await pins[0].order(in: store)?.body == "first")
    }
}

@Suite("Every field type through generated code")
struct FieldTypeRoundTripTests {
    static let full = Sample(
        text: "tëxt \"quoted\"", count: -42, big: Int64.max, ratio: 0.1, flag: true,
        when: Date(timeIntervalSinceReferenceDate: 812_345_678.123_456), blob: Data([0, 1, 2, 255]),
        token: UUID(), link: URL(string: "https://example.com/a?b=c")!, amount: Decimal(string: "12345.6789")!,
        words: ["a", "b,c"], mood: .busy, maybeText: "x", maybeCount: 7,
        maybeWhen: Date(timeIntervalSinceReferenceDate: 1.5), maybeToken: UUID(),
        maybeLink: URL(string: "file:///tmp/x")!, maybeAmount: Decimal(string: "-0.001")!, maybeNumbers: [1, 2, 3],
        maybeMood: .down)
    static let empty = Sample(
        text: "", count: 0, big: 0, ratio: -1e300, flag: false, when: Date(timeIntervalSinceReferenceDate: 0),
        blob: Data(), token: UUID(), link: URL(string: "https://example.com")!, amount: 0, words: [], mood: .calm)

    @Test("a record with every field type reads back equal, set or nil", arguments: [full, empty])
    func roundTrip(sample: Sample) async throws {
        let store = try SyncStore(.inMemory, models: GeneratedModels.all)
        try await store.samples.save(sample)
        #expect(try await store.samples.find(sample.id) == sample)
        let payload = try #require(try await store.outbox.entries().first?.payload)
        #expect(try JSONDecoder().decode(Sample.self, from: Data(payload.utf8)) == sample)
    }
}
