import Foundation
import ModelSync
import PluginChatModels
import Testing

@Suite struct PluginChatModelsTests {
    @Test func registryListsParentsBeforeChildrenAcrossFiles() {
        let names = GeneratedModels.all.map { $0.schema.name }
        #expect(names == ["Member", "Tag", "Room", "Post", "RoomTag"])
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
}
